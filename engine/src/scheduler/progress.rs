//! A progress bar per running stage on worker 0 (tasks done of total, and the locality mix so
//! far), shown only when stderr is a terminal and `ember.ui.showProgress` is on.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Conf;

use super::locality::Locality;

/// The bar of one stage.
pub(crate) struct StageProgress {
    bar: ProgressBar,
    mix: BTreeMap<Locality, usize>,
}

impl StageProgress {
    /// A bar for a stage, or `None` when nobody is watching.
    pub(crate) fn start(conf: &Conf, stage: usize, name: &str, tasks: usize) -> Option<Self> {
        let wanted = conf.get_bool("ember.ui.showProgress").unwrap_or(true);
        if !wanted || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(tasks as u64);
        let style = ProgressStyle::with_template(
            "[stage {prefix}] {bar:30} {pos}/{len} tasks {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(format!("{stage} {name}"));
        Some(StageProgress {
            bar,
            mix: BTreeMap::new(),
        })
    }

    /// Counts a finished task at `level`.
    pub(crate) fn task_done(&mut self, level: Locality) {
        *self.mix.entry(level).or_insert(0) += 1;
        let mix: Vec<String> = self.mix.iter().map(|(l, n)| format!("{l} {n}")).collect();
        self.bar.set_message(mix.join(", "));
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}
