//! The hand-written timely word count: the floor for Ember's own layering.
//!
//! Each worker reads its line-aligned share of the file's bytes ([`crate::split`]), counts the
//! words locally into an `FxHashMap<String, u64>`, then sends its `(word, count)` pairs through
//! timely's `exchange`, routed by `fnv1a64(word)`; the receiving worker sums them. Each worker
//! returns the answer of the words it owns, and the answers are merged.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Exchange, Operator, ToStream};

use crate::answer::{fnv1a64, WordCountAnswer};
use crate::split::{line_aligned_range, read_range};
use crate::wordcount::count_words;
use crate::BenchError;

/// Counts the words of the file at `path` with `workers` timely worker threads.
pub fn timely_word_count(path: &Path, workers: usize) -> Result<WordCountAnswer, BenchError> {
    let path: PathBuf = path.to_owned();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        count_share(worker, &path)
    })
    .map_err(BenchError::Timely)?;
    let mut answer = WordCountAnswer::default();
    for result in guards.join() {
        answer = answer.merge(result.map_err(BenchError::Timely)??);
    }
    Ok(answer)
}

/// One worker: count its share locally, exchange the counts, sum the words it owns.
fn count_share(
    worker: &mut timely::worker::Worker,
    path: &Path,
) -> Result<WordCountAnswer, BenchError> {
    let io = |e| BenchError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let range = line_aligned_range(&mut file, len, worker.index(), worker.peers()).map_err(io)?;
    let offset = range.start;
    let bytes = read_range(&mut file, range).map_err(io)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| BenchError::Utf8 {
        path: path.to_owned(),
        offset: offset + e.valid_up_to() as u64,
    })?;
    let mut local = FxHashMap::default();
    count_words(text, &mut local);

    let sums: Rc<RefCell<FxHashMap<String, u64>>> = Rc::default();
    let sink = Rc::clone(&sums);
    worker.dataflow::<u64, _, _>(|scope| {
        local
            .to_stream(scope)
            .container::<Vec<_>>()
            .exchange(|(word, _): &(String, u64)| fnv1a64(word.as_bytes()))
            .sink(Pipeline, "Sum", move |(input, _frontier)| {
                let mut sums = sink.borrow_mut();
                input.for_each(|_time, data| {
                    for (word, count) in data.drain(..) {
                        *sums.entry(word).or_insert(0) += count;
                    }
                });
            });
    });
    while worker.step_or_park(None) {}
    let sums = sums.borrow();
    Ok(WordCountAnswer::of(
        sums.iter().map(|(w, c)| (w.as_str(), *c)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    /// The timely count of a generated text equals a sequential count, for several worker
    /// counts (each cutting the file at different line boundaries).
    #[test]
    fn timely_count_matches_a_sequential_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words.txt");
        let mut bytes = Vec::new();
        text::generate(3, 300_000, &mut bytes, |_| {}).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let mut counts = FxHashMap::default();
        count_words(std::str::from_utf8(&bytes).unwrap(), &mut counts);
        let expect = WordCountAnswer::of(counts.iter().map(|(w, c)| (w.as_str(), *c)));
        for workers in 1..=3 {
            assert_eq!(
                timely_word_count(&path, workers).unwrap(),
                expect,
                "{workers}"
            );
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.txt");
        let err = timely_word_count(&missing, 2).unwrap_err();
        assert!(matches!(err, BenchError::Io { .. }), "{err}");
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"good words\nbad \xff byte\n").unwrap();
        match timely_word_count(&bad, 1).unwrap_err() {
            BenchError::Utf8 { offset, .. } => assert_eq!(offset, 15),
            other => panic!("{other}"),
        }
    }
}
