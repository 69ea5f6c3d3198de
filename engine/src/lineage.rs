//! Rendering the lineage graph, in the style of Spark's `toDebugString`: one line per RDD with
//! its partition count, operation, id, call site and storage level; `+-` starts a new stage
//! (a shuffle dependency) and indents its ancestry.

use std::fmt::Write;
use std::rc::Rc;

use crate::rdd::{Dependency, RddBase};

/// One node being rendered: the prefix of its children's lines, the dependencies left to
/// render, and, for the first node of a stage reached through a shuffle, the prefix of the
/// line that started it (its lines go to a buffer of their own, indented under that line).
struct Frame {
    base: String,
    deps: std::vec::IntoIter<Dependency>,
    nested_under: Option<String>,
}

pub(crate) fn render(rdd: &Rc<dyn RddBase>) -> String {
    // An explicit stack, not recursion: lineages can be thousands of steps deep.
    let mut bufs = vec![String::new()];
    let mut stack = Vec::new();
    enter(&mut bufs, &mut stack, rdd, "", true, None);
    while let Some(frame) = stack.last_mut() {
        match frame.deps.next() {
            Some(Dependency::Shuffle(s)) => {
                let base = frame.base.clone();
                let out = bufs.last_mut().expect("a buffer");
                let _ = write!(out, "{base} +-");
                bufs.push(String::new());
                enter(&mut bufs, &mut stack, &s.parent(), "", true, Some(base));
            }
            Some(
                Dependency::OneToOne(p)
                | Dependency::Range { parent: p, .. }
                | Dependency::Groups { parent: p, .. },
            ) => {
                let base = frame.base.clone();
                enter(&mut bufs, &mut stack, &p, &base, false, None);
            }
            None => {
                let done = stack.pop().expect("a frame");
                if let Some(base) = done.nested_under {
                    let nested = bufs.pop().expect("the stage's buffer");
                    let out = bufs.last_mut().expect("a buffer");
                    let indent = format!("{base}   ");
                    let mut lines = nested.lines();
                    if let Some(first) = lines.next() {
                        let _ = writeln!(out, "{first}");
                    }
                    for l in lines {
                        let _ = writeln!(out, "{indent}{l}");
                    }
                }
            }
        }
    }
    bufs.pop().unwrap_or_default()
}

/// Writes `rdd`'s line and pushes its frame.
fn enter(
    bufs: &mut [String],
    stack: &mut Vec<Frame>,
    rdd: &Rc<dyn RddBase>,
    prefix: &str,
    stage_start: bool,
    nested_under: Option<String>,
) {
    let out = bufs.last_mut().expect("a buffer");
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
    stack.push(Frame {
        base,
        deps: rdd.dependencies().into_iter(),
        nested_under,
    });
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
