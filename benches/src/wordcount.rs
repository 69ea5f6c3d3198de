//! Tokenising and counting words.
//!
//! A word is a maximal non-empty run of bytes other than `' '` and `'\n'`; this equals splitting
//! each line on single spaces and dropping empty pieces, which is what the Spark job does
//! (`textFile(...).flatMap(_.split(" ")).filter(_.nonEmpty)`).

use rustc_hash::FxHashMap;

/// Counts the words of `text` into `counts`, allocating a `String` only for new words.
pub fn count_words(text: &str, counts: &mut FxHashMap<String, u64>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for end in memchr::memchr2_iter(b' ', b'\n', bytes).chain(std::iter::once(bytes.len())) {
        if end > start {
            // ' ' and '\n' are ASCII, so both ends are char boundaries.
            let word = &text[start..end];
            match counts.get_mut(word) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(word.to_owned(), 1);
                }
            }
        }
        start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn counts_match_split_on_spaces_per_line() {
        let text = "the cat  the\nhat the\n\n cat\nend";
        let mut counts = FxHashMap::default();
        count_words(text, &mut counts);
        let mut expect: BTreeMap<&str, u64> = BTreeMap::new();
        for line in text.lines() {
            for w in line.split(' ').filter(|w| !w.is_empty()) {
                *expect.entry(w).or_default() += 1;
            }
        }
        let got: BTreeMap<&str, u64> = counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
        assert_eq!(got, expect);
    }
}
