//! Ember's benchmark harness: the same workloads on Ember and on its peers, side by side.
//!
//! This crate holds everything the peers and the Ember side must agree on:
//!
//! * [`mix`]: the splitmix64 mixing function and generator every data set is derived from;
//! * [`protocol`]: the deterministic formulas for the pair, join and logistic-regression data,
//!   generated identically in every system without files;
//! * [`text`]: the word-count text generator (10k-word vocabulary, Zipf(1.1) ranks, fixed seed);
//! * [`split`]: cutting a text file into line-aligned byte ranges, one per worker;
//! * [`lr`]: the cached logistic-regression loop on Ember;
//! * [`wordcount`]: tokenising and counting words, shared by the timely baseline;
//! * [`baseline`]: the hand-written timely word count;
//! * [`graphs`]: edge lists (Debian's dependency graph, R-MAT) and single-thread graph baselines;
//! * [`answer`]: the small answers each system prints, and sequential references for them;
//! * [`record`] and [`report`]: the JSON result lines and the merged comparison table.
//!
//! The binaries are `ember-datagen` (writes the text file), `timely-wordcount` (the hand-written
//! timely floor for word count) and `ember-bench-report` (merges result lines, checks answers).
//! `benches/README.md` documents the protocol and the commands.

#![forbid(missing_docs)]

pub mod answer;
pub mod baseline;
pub mod error;
pub mod graphs;
pub mod lr;
pub mod mix;
pub mod protocol;
pub mod record;
pub mod report;
pub mod split;
pub mod text;
pub mod wordcount;

pub use error::BenchError;
