//! Cutting a text file into line-aligned byte ranges, one per worker.
//!
//! Worker `p` of `P` is nominally given bytes `[p*len/P, (p+1)*len/P)`, like a Hadoop
//! `TextInputFormat` split. Each nominal boundary `b` (other than 0 and `len`) is moved forward
//! to the start of the first line that begins at or after `b`, i.e. just past the first `'\n'`
//! at or after byte `b - 1`. Every line therefore belongs to exactly one worker: the one whose
//! nominal range holds the line's first byte.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// The start of the first line beginning at or after `boundary` in a stream of `len` bytes.
pub fn align_to_line<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    boundary: u64,
) -> std::io::Result<u64> {
    if boundary == 0 || boundary >= len {
        return Ok(boundary.min(len));
    }
    let mut pos = boundary - 1;
    reader.seek(SeekFrom::Start(pos))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(len);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok((pos + i as u64 + 1).min(len));
        }
        pos += n as u64;
    }
}

/// The line-aligned byte range of worker `part` out of `parts` in a stream of `len` bytes.
pub fn line_aligned_range<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    part: usize,
    parts: usize,
) -> std::io::Result<Range<u64>> {
    let nominal = |p: usize| (p as u128 * len as u128 / parts as u128) as u64;
    let start = align_to_line(reader, len, nominal(part))?;
    let end = align_to_line(reader, len, nominal(part + 1))?;
    Ok(start..end.max(start))
}

/// Reads bytes `range` of `reader`.
pub fn read_range<R: Read + Seek>(reader: &mut R, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    reader.seek(SeekFrom::Start(range.start))?;
    reader.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn check(text: &str, parts: usize) {
        let bytes = text.as_bytes();
        let mut cur = Cursor::new(bytes);
        let len = bytes.len() as u64;
        let mut lines = Vec::new();
        let mut next = 0;
        for p in 0..parts {
            let r = line_aligned_range(&mut cur, len, p, parts).unwrap();
            assert_eq!(r.start, next, "parts {parts} p {p}");
            next = r.end;
            let chunk = read_range(&mut cur, r).unwrap();
            if !chunk.is_empty() {
                assert!(chunk.ends_with(b"\n") || next == len);
            }
            lines.extend(
                std::str::from_utf8(&chunk)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
        assert_eq!(next, len);
        let expect: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(lines, expect, "parts {parts}");
    }

    #[test]
    fn every_line_goes_to_exactly_one_worker() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&"x".repeat(i % 17));
            text.push_str(&format!(" line {i}\n"));
        }
        for parts in 1..=9 {
            check(&text, parts);
            check(text.trim_end(), parts);
        }
        for parts in 1..=4 {
            check("", parts);
            check("a", parts);
            check("\n\n\n", parts);
            check("one long line without an end", parts);
        }
    }
}
