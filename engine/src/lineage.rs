//! Rendering the lineage graph, in the style of Spark's `toDebugString`: one line per RDD with
//! its partition count, operation, id, call site and storage level; `+-` starts a new stage
//! (a shuffle dependency) and indents its ancestry.

use std::fmt::Write;
use std::rc::Rc;

use crate::rdd::{Dependency, RddBase};

pub(crate) fn render(rdd: &Rc<dyn RddBase>) -> String {
    let mut out = String::new();
    line(&mut out, rdd, "", true);
    out
}

fn describe(rdd: &Rc<dyn RddBase>) -> String {
    let site = rdd.call_site();
    let storage = rdd
        .storage_level()
        .map(|l| format!(" [{l}]"))
        .unwrap_or_default();
    format!(
        "{} [{}] at {}:{}{}",
        rdd.op(),
        rdd.id(),
        site.file(),
        site.line(),
        storage
    )
}

fn line(out: &mut String, rdd: &Rc<dyn RddBase>, prefix: &str, stage_start: bool) {
    if stage_start {
        let _ = writeln!(out, "{prefix}({}) {}", rdd.num_partitions(), describe(rdd));
    } else {
        let _ = writeln!(out, "{prefix} |  {}", describe(rdd));
    }
    let base = if stage_start && !prefix.is_empty() {
        format!("{prefix}   ")
    } else {
        prefix.to_string()
    };
    for dep in rdd.dependencies() {
        match dep {
            Dependency::Shuffle(s) => {
                let _ = write!(out, "{base} +-");
                let mut nested = String::new();
                line(&mut nested, &s.parent(), "", true);
                let indent = format!("{base}   ");
                let mut lines = nested.lines();
                if let Some(first) = lines.next() {
                    let _ = writeln!(out, "{first}");
                }
                for l in lines {
                    let _ = writeln!(out, "{indent}{l}");
                }
            }
            Dependency::OneToOne(p)
            | Dependency::Range { parent: p, .. }
            | Dependency::Groups { parent: p, .. } => line(out, &p, &base, false),
        }
    }
}
