//! Following the quoting of a CSV stream as the parser reads it: the `csv` crate accepts a file
//! that ends inside a quoted field (the rest of the file becomes one field), so the reader
//! watches for that itself.

use super::csv::CsvOptions;

/// Where a byte leaves the field state machine (the `csv` crate's rules: a quote opens a quoted
/// field only at the start of a field; inside one, a doubled quote or the escape character
/// yields a literal quote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
    /// The escape character inside a quoted field: the next byte is literal.
    Escaped,
}

/// A pass-through reader that follows the quoting of the bytes the CSV parser reads, so that a
/// file ending inside a quoted field can be reported (the parser itself accepts it silently).
pub(crate) struct QuoteTracker<R> {
    inner: R,
    quote: u8,
    delimiter: u8,
    escape: Option<u8>,
    state: QuoteState,
    /// Bytes read so far.
    pos: u64,
    /// Offset of the quote that opened the current quoted field.
    opened_at: u64,
    eof: bool,
}

impl<R> QuoteTracker<R> {
    pub(crate) fn new(inner: R, opts: &CsvOptions) -> Self {
        QuoteTracker {
            inner,
            quote: opts.quote,
            delimiter: opts.delimiter,
            escape: opts.escape,
            state: QuoteState::FieldStart,
            pos: 0,
            opened_at: 0,
            eof: false,
        }
    }

    /// The offset of the opening quote, when the input ended inside a quoted field.
    pub(crate) fn unterminated_quote(&self) -> Option<u64> {
        (self.eof && matches!(self.state, QuoteState::Quoted | QuoteState::Escaped))
            .then_some(self.opened_at)
    }

    fn track(&mut self, buf: &[u8]) {
        use QuoteState::*;
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                Quoted => {
                    let rest = &buf[i..];
                    let hit = match self.escape {
                        Some(e) => memchr::memchr2(self.quote, e, rest),
                        None => memchr::memchr(self.quote, rest),
                    };
                    match hit {
                        Some(j) => {
                            i += j;
                            self.state = if buf[i] == self.quote {
                                QuoteInQuoted
                            } else {
                                Escaped
                            };
                        }
                        None => i = buf.len(),
                    }
                }
                Unquoted => match memchr::memchr3(self.delimiter, b'\n', b'\r', &buf[i..]) {
                    Some(j) => {
                        i += j;
                        self.state = FieldStart;
                    }
                    None => i = buf.len(),
                },
                Escaped => self.state = Quoted,
                FieldStart => {
                    let c = buf[i];
                    if c == self.quote {
                        self.state = Quoted;
                        self.opened_at = self.pos + i as u64;
                    } else if c != self.delimiter && c != b'\n' && c != b'\r' {
                        self.state = Unquoted;
                    }
                }
                QuoteInQuoted => {
                    let c = buf[i];
                    self.state = if c == self.quote {
                        Quoted
                    } else if c == self.delimiter || c == b'\n' || c == b'\r' {
                        FieldStart
                    } else {
                        Unquoted
                    };
                }
            }
            i += 1;
        }
        self.pos += buf.len() as u64;
    }
}

impl<R: std::io::Read> std::io::Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        self.track(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Where the quote left open at the end is, reading `text` in chunks of `chunk` bytes.
    fn open_quote(text: &str, opts: &CsvOptions, chunk: usize) -> Option<u64> {
        let mut t = QuoteTracker::new(text.as_bytes(), opts);
        let mut buf = vec![0u8; chunk];
        while t.read(&mut buf).unwrap() > 0 {}
        t.unterminated_quote()
    }

    #[test]
    fn open_quotes_at_the_end_are_found_whatever_the_chunking() {
        let opts = CsvOptions::default();
        let escaped = CsvOptions {
            escape: Some(b'\\'),
            ..CsvOptions::default()
        };
        let cases: &[(&str, &CsvOptions, Option<u64>)] = &[
            ("a,b\n1,2\n", &opts, None),
            ("a,b\n\"x,y\",2\n", &opts, None),
            ("a,b\n\"multi\nline\",2\n", &opts, None),
            ("a,b\n\"doubled \"\" quote\",2", &opts, None),
            ("a,b\n5\" pipe,2\n", &opts, None),
            ("a,b\n\"x\"tail,2\n", &opts, None),
            ("a,b\n\"never closed,2\n3,4\n", &opts, Some(4)),
            ("a,b\n1,\"open at the end", &opts, Some(6)),
            ("a,b\n1,\"ends on a doubled quote\"\"", &opts, Some(6)),
            ("a\n\"esc \\\" inside\"\n", &escaped, None),
            ("a\n\"esc at end \\", &escaped, Some(2)),
            ("a\n\"esc \\\" open\n", &escaped, Some(2)),
        ];
        for &(text, o, want) in cases {
            for chunk in [1, 2, 3, 7, 4096] {
                assert_eq!(
                    open_quote(text, o, chunk),
                    want,
                    "{text:?} in chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn nothing_is_reported_before_the_end() {
        let mut t = QuoteTracker::new(&b"a\n\"open"[..], &CsvOptions::default());
        let mut buf = [0u8; 16];
        assert_eq!(t.read(&mut buf).unwrap(), 7);
        assert_eq!(t.unterminated_quote(), None, "not at the end yet");
        assert_eq!(t.read(&mut buf).unwrap(), 0);
        assert_eq!(t.unterminated_quote(), Some(2));
    }
}
