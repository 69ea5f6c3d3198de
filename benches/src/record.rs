//! The result line every system prints, one JSON object per line.
//!
//! ```text
//! {"system":"spark","workload":"reduce_by_key","seconds":3.21,"answer":{"keys":999955,"checksum":123}}
//! ```
//!
//! `system` is `spark`, `ember` or `timely`; `workload` one of the names in [`workloads`];
//! `seconds` the measured wall time; `answer` the workload's answer object (see
//! [`crate::answer`]); any further fields are kept as they are (e.g. `total_seconds`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// The workload names used in result lines.
pub mod workloads {
    /// Word count on the generated text file.
    pub const WORD_COUNT: &str = "word_count";
    /// One cached logistic-regression iteration (`seconds` is the mean over the iterations).
    pub const LOGISTIC_REGRESSION: &str = "logistic_regression";
    /// `reduce_by_key(+)` on the generated pairs.
    pub const REDUCE_BY_KEY: &str = "reduce_by_key";
    /// `group_by_key` on the generated pairs.
    pub const GROUP_BY_KEY: &str = "group_by_key";
    /// `join` of the generated pairs with the right side.
    pub const JOIN: &str = "join";
    /// `sort_by_key` on the generated pairs.
    pub const SORT_BY_KEY: &str = "sort_by_key";
    /// Spark: JVM launch to a ready `SparkContext`.
    pub const JVM_STARTUP: &str = "jvm_startup";
    /// Ember: a whole `word_count` example process, start to answer.
    pub const WORD_COUNT_PROCESS: &str = "word_count_process";
}

/// One measured result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The system measured: `spark`, `ember` or `timely`.
    pub system: String,
    /// The workload name.
    pub workload: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The workload's answer, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<serde_json::Value>,
    /// Any other fields of the line.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    /// A record with an answer and no extra fields.
    pub fn new(system: &str, workload: &str, seconds: f64, answer: impl Serialize) -> Record {
        Record {
            system: system.to_owned(),
            workload: workload.to_owned(),
            seconds,
            answer: Some(serde_json::to_value(answer).expect("answers serialize")),
            extra: Default::default(),
        }
    }

    /// The record as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("records serialize")
    }
}

/// Parses the result lines of `text`: every line starting with `{` must be a record; other
/// lines (logs) are skipped. `path` names the source in errors.
pub fn parse_records(path: &Path, text: &str) -> Result<Vec<Record>, BenchError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let record = serde_json::from_str(line).map_err(|e| BenchError::Record {
            path: path.to_owned(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Reads and parses the result lines of the file at `path`.
pub fn read_records(path: &Path) -> Result<Vec<Record>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io(path, e))?;
    parse_records(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_logs_are_skipped() {
        let text = "INFO starting\n\
            {\"system\":\"spark\",\"workload\":\"join\",\"seconds\":1.5,\"answer\":{\"rows\":3,\"checksum\":18446744073709551615}}\n\
            {\"workload\":\"jvm_startup\",\"system\":\"spark\",\"seconds\":2.0,\"context_seconds\":1.2}\n";
        let records = parse_records(Path::new("x"), text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].answer.as_ref().unwrap()["checksum"], u64::MAX);
        assert_eq!(records[1].extra["context_seconds"], 1.2);
        let again = parse_records(Path::new("x"), &records[1].to_line()).unwrap();
        assert_eq!(again[0], records[1]);
    }

    #[test]
    fn a_broken_record_names_its_line() {
        let err = parse_records(Path::new("r.jsonl"), "log\n{\"system\":1}\n").unwrap_err();
        assert!(err.to_string().starts_with("r.jsonl:2:"), "{err}");
    }
}
