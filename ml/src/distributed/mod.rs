//! Distributed training on the engine (work in progress).

pub mod report;
pub mod stats;
