//! Merging result records into the comparison table, checking that answers agree.
//!
//! For each workload the table shows Ember's and Spark's seconds, the ratio Spark / Ember, the
//! timely baseline where there is one, the target and whether it was met, and whether the
//! answers of all systems (and the sequential reference, when computed) agree. Answers must be
//! equal, except logistic-regression weights, which agree when every component differs by at
//! most `1e-6` times the largest absolute component.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::record::{workloads as w, Record};

/// The relative tolerance for logistic-regression weights.
pub const LR_TOLERANCE: f64 = 1e-6;

/// The speed target of a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Target {
    /// Spark / Ember at least this ratio, and (if given) Ember / timely at most this ratio.
    Faster {
        /// Minimum Spark / Ember ratio.
        spark_ratio: f64,
        /// Maximum Ember / timely ratio.
        timely_ratio: Option<f64>,
    },
    /// Ember's whole process faster than Spark's JVM start-up alone.
    StartupBelowJvm,
}

impl Target {
    /// The target as table text.
    pub fn describe(&self) -> String {
        match self {
            Target::Faster {
                spark_ratio,
                timely_ratio: None,
            } => format!(">= {spark_ratio}x Spark"),
            Target::Faster {
                spark_ratio,
                timely_ratio: Some(t),
            } => format!(">= {spark_ratio}x Spark, <= {t}x timely"),
            Target::StartupBelowJvm => "Ember process < Spark JVM start-up".to_owned(),
        }
    }
}

/// One line of the comparison table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// Ember seconds.
    pub ember: Option<f64>,
    /// Spark seconds.
    pub spark: Option<f64>,
    /// Spark / Ember.
    pub ratio: Option<f64>,
    /// Timely seconds (word count only).
    pub timely: Option<f64>,
    /// The target.
    pub target: Target,
    /// Whether the target was met (`None` when a figure is missing).
    pub met: Option<bool>,
    /// Whether the answers agree: `agree`, `DIFFER: ...`, or which are missing.
    pub answers: String,
}

/// The rows of the table, in order: the workload whose timings they compare and the target.
pub fn targets() -> Vec<(&'static str, Target)> {
    let five = Target::Faster {
        spark_ratio: 5.0,
        timely_ratio: None,
    };
    vec![
        (
            w::WORD_COUNT,
            Target::Faster {
                spark_ratio: 5.0,
                timely_ratio: Some(1.2),
            },
        ),
        (
            w::LOGISTIC_REGRESSION,
            Target::Faster {
                spark_ratio: 15.0,
                timely_ratio: None,
            },
        ),
        (w::REDUCE_BY_KEY, five),
        (w::GROUP_BY_KEY, five),
        (w::JOIN, five),
        (w::SORT_BY_KEY, five),
        ("startup", Target::StartupBelowJvm),
    ]
}

/// Whether answers `a` and `b` of `workload` agree; the error says how they differ.
pub fn answers_agree(workload: &str, a: &Value, b: &Value) -> Result<(), String> {
    if workload == w::LOGISTIC_REGRESSION {
        let weights = |v: &Value| -> Option<Vec<f64>> {
            v.get("w")?.as_array()?.iter().map(Value::as_f64).collect()
        };
        let (Some(wa), Some(wb)) = (weights(a), weights(b)) else {
            return Err(format!("no weight vector in {a} or {b}"));
        };
        if wa.len() != wb.len() {
            return Err(format!("{} weights vs {}", wa.len(), wb.len()));
        }
        let scale = wa
            .iter()
            .chain(&wb)
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        for (j, (x, y)) in wa.iter().zip(&wb).enumerate() {
            let diff = (x - y).abs();
            if diff.is_nan() || diff > LR_TOLERANCE * scale {
                return Err(format!("w[{j}]: {x} vs {y}"));
            }
        }
        Ok(())
    } else if a == b {
        Ok(())
    } else {
        Err(format!("{a} vs {b}"))
    }
}

/// The latest record of `system` for `workload`.
fn find<'a>(records: &'a [Record], system: &str, workload: &str) -> Option<&'a Record> {
    records
        .iter()
        .rev()
        .find(|r| r.system == system && r.workload == workload)
}

/// Checks the answers of every system (and the reference) for `workload` against each other.
fn check_answers(
    records: &[Record],
    references: &BTreeMap<String, Value>,
    workload: &str,
) -> String {
    let mut answers: Vec<(&str, &Value)> = Vec::new();
    let mut missing = Vec::new();
    for system in ["ember", "spark", "timely"] {
        match find(records, system, workload).and_then(|r| r.answer.as_ref()) {
            Some(a) => answers.push((system, a)),
            None if system == "timely" && workload != w::WORD_COUNT => {}
            None => missing.push(system),
        }
    }
    if let Some(r) = references.get(workload) {
        answers.push(("reference", r));
    }
    let mut problems = Vec::new();
    for i in 1..answers.len() {
        if let Err(e) = answers_agree(workload, answers[0].1, answers[i].1) {
            problems.push(format!("{} vs {}: {e}", answers[0].0, answers[i].0));
        }
    }
    let names: Vec<&str> = answers.iter().map(|(s, _)| *s).collect();
    let mut text = if !problems.is_empty() {
        format!("DIFFER: {}", problems.join("; "))
    } else if answers.len() >= 2 {
        format!("agree ({})", names.join(", "))
    } else if answers.len() == 1 {
        format!("only {}", names[0])
    } else {
        "none".to_owned()
    };
    if !missing.is_empty() {
        text.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    text
}

/// Builds the comparison table from all records and the reference answers.
pub fn build_rows(records: &[Record], references: &BTreeMap<String, Value>) -> Vec<Row> {
    let seconds = |system: &str, workload: &str| find(records, system, workload).map(|r| r.seconds);
    targets()
        .into_iter()
        .map(|(workload, target)| {
            let (ember, spark, timely, answers) = if let Target::StartupBelowJvm = target {
                (
                    seconds("ember", w::WORD_COUNT_PROCESS),
                    seconds("spark", w::JVM_STARTUP),
                    None,
                    "-".to_owned(),
                )
            } else {
                (
                    seconds("ember", workload),
                    seconds("spark", workload),
                    seconds("timely", workload),
                    check_answers(records, references, workload),
                )
            };
            let ratio = match (ember, spark) {
                (Some(e), Some(s)) if e > 0.0 => Some(s / e),
                _ => None,
            };
            let met = match target {
                Target::StartupBelowJvm => ember.zip(spark).map(|(e, s)| e < s),
                Target::Faster {
                    spark_ratio,
                    timely_ratio,
                } => ratio
                    .map(|r| r >= spark_ratio)
                    .and_then(|ok| match timely_ratio {
                        None => Some(ok),
                        Some(t) => ember.zip(timely).map(|(e, tm)| ok && e <= t * tm),
                    }),
            };
            Row {
                workload: workload.to_owned(),
                ember,
                spark,
                ratio,
                timely,
                target,
                met,
                answers,
            }
        })
        .collect()
}

/// The table in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let secs = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{s:.3}"));
    let mut out = String::from(
        "| workload | Ember s | Spark s | Spark/Ember | timely s | target | met? | answers |\n\
         |---|---:|---:|---:|---:|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.workload,
            secs(r.ember),
            secs(r.spark),
            r.ratio.map_or("-".to_owned(), |x| format!("{x:.1}x")),
            secs(r.timely),
            r.target.describe(),
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            },
            r.answers.replace('|', "\\|"),
        ));
    }
    out
}

/// Replaces the text between the `<!-- results:start -->` and `<!-- results:end -->` markers
/// of `document` with `table`; `None` if the markers are absent.
pub fn splice_results(document: &str, table: &str) -> Option<String> {
    const START: &str = "<!-- results:start -->";
    const END: &str = "<!-- results:end -->";
    let s = document.find(START)? + START.len();
    let e = s + document[s..].find(END)?;
    Some(format!("{}\n{}{}", &document[..s], table, &document[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(system: &str, workload: &str, seconds: f64, answer: Value) -> Record {
        Record::new(system, workload, seconds, answer)
    }

    #[test]
    fn exact_answers_must_be_equal() {
        let a = json!({"keys": 3, "checksum": 10});
        assert!(answers_agree("reduce_by_key", &a, &a.clone()).is_ok());
        let b = json!({"keys": 3, "checksum": 11});
        assert!(answers_agree("reduce_by_key", &a, &b).is_err());
    }

    #[test]
    fn lr_weights_agree_within_relative_tolerance() {
        let a = json!({"w": [1.0, -2.0, 0.0]});
        let close = json!({"w": [1.0000015, -2.0, 0.0000015]});
        let far = json!({"w": [1.00001, -2.0, 0.0]});
        assert!(answers_agree("logistic_regression", &a, &close).is_ok());
        assert!(answers_agree("logistic_regression", &a, &far).is_err());
        assert!(answers_agree("logistic_regression", &a, &json!({"w": [1.0]})).is_err());
    }

    #[test]
    fn rows_compute_ratios_targets_and_answer_checks() {
        let wc = json!({"distinct": 5, "total": 9, "max_count": 4, "checksum": 1});
        let records = vec![
            rec("spark", "word_count", 10.0, wc.clone()),
            rec("ember", "word_count", 1.0, wc.clone()),
            rec("timely", "word_count", 0.9, wc),
            rec("spark", "join", 6.0, json!({"rows": 2, "checksum": 3})),
            rec("ember", "join", 2.0, json!({"rows": 2, "checksum": 4})),
            rec("spark", "sort_by_key", 6.0, json!({"rows": 1})),
            rec("spark", "jvm_startup", 3.0, Value::Null),
            rec("ember", "word_count_process", 1.5, Value::Null),
        ];
        let rows = build_rows(&records, &BTreeMap::new());
        let row = |name: &str| rows.iter().find(|r| r.workload == name).unwrap();
        assert_eq!(row("word_count").ratio, Some(10.0));
        assert_eq!(row("word_count").met, Some(true));
        assert!(row("word_count").answers.starts_with("agree"));
        assert_eq!(row("join").met, Some(false));
        assert!(row("join").answers.starts_with("DIFFER"));
        assert_eq!(row("sort_by_key").met, None);
        assert!(row("sort_by_key").answers.contains("missing: ember"));
        assert_eq!(row("startup").met, Some(true));
        let table = markdown(&rows);
        assert_eq!(table.lines().count(), 2 + targets().len());
    }

    #[test]
    fn word_count_misses_its_target_when_too_far_behind_timely() {
        let wc = json!({"distinct": 1});
        let records = vec![
            rec("spark", "word_count", 10.0, wc.clone()),
            rec("ember", "word_count", 1.0, wc.clone()),
            rec("timely", "word_count", 0.5, wc),
        ];
        let rows = build_rows(&records, &BTreeMap::new());
        assert_eq!(rows[0].met, Some(false));
    }

    #[test]
    fn results_are_spliced_between_markers() {
        let doc = "a\n<!-- results:start -->\nold\n<!-- results:end -->\nb\n";
        let out = splice_results(doc, "new\n").unwrap();
        assert_eq!(
            out,
            "a\n<!-- results:start -->\nnew\n<!-- results:end -->\nb\n"
        );
        assert!(splice_results("no markers", "x").is_none());
    }
}
