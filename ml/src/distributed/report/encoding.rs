//! The report's gradient-sharing section, for runs whose records carry
//! [`SharingRecord`]s: the warnings [`diagnose`] gives, the threshold and the fraction of values
//! sent per step, the residual's percentiles in thresholds (encoding debug mode), the message
//! size against a dense exchange, and the staleness seen.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{format, svg, MAX_POINTS};
use crate::distributed::sharing::{diagnose, SharingRecord};
use crate::distributed::stats::StepRecord;

/// Per-step means over the workers that trained in the step.
#[derive(Default)]
struct StepMeans {
    n: usize,
    threshold: f64,
    sparsity: f64,
    bytes: f64,
    p50: f64,
    p99: f64,
    max: f64,
    debug: usize,
    staleness: u64,
}

/// Writes the section, or nothing when no record is of gradient sharing.
pub(super) fn section(h: &mut String, records: &[StepRecord], params: usize) {
    let shared: Vec<(&StepRecord, &SharingRecord)> = records
        .iter()
        .filter_map(|r| r.sharing.as_ref().map(|s| (r, s)))
        .filter(|(r, _)| r.examples > 0)
        .collect();
    if shared.is_empty() {
        return;
    }
    let mut steps: BTreeMap<u64, StepMeans> = BTreeMap::new();
    for (r, s) in &shared {
        let m = steps.entry(r.step).or_default();
        m.n += 1;
        m.threshold += s.threshold as f64;
        m.sparsity += s.sparsity;
        m.bytes += s.message_bytes as f64;
        m.staleness = m.staleness.max(s.staleness_max);
        if let Some(res) = s.residual {
            m.debug += 1;
            m.p50 += res.p50;
            m.p99 += res.p99;
            m.max += res.max;
        }
    }
    let n_shared = shared.len() as f64;
    let mean_bytes = shared
        .iter()
        .map(|(_, s)| s.message_bytes as f64)
        .sum::<f64>()
        / n_shared;
    let mean_sparsity = shared.iter().map(|(_, s)| s.sparsity).sum::<f64>() / n_shared;
    let staleness = shared
        .iter()
        .map(|(_, s)| s.staleness_max)
        .max()
        .unwrap_or(0);
    let dense = 4.0 * params as f64;
    h.push_str("<section id=\"sharing\"><h2>Gradient sharing</h2>");
    let warnings = diagnose(records);
    if warnings.is_empty() {
        h.push_str(
            "<p class=\"note\">The encoding statistics show no sign of a mis-set threshold.</p>",
        );
    } else {
        h.push_str("<div class=\"warnings\">");
        for w in &warnings {
            let _ = write!(h, "<p class=\"warn\">⚠ {}</p>", format::escape(w));
        }
        h.push_str("</div>");
    }
    h.push_str("<div class=\"cards\">");
    super::card(
        h,
        "values sent per step",
        &format!("{:.3}%", 100.0 * mean_sparsity),
    );
    super::card(h, "message per step", &format::bytes(mean_bytes));
    super::card(
        h,
        "smaller than dense",
        &format!("{}×", format::si(dense / mean_bytes.max(1.0))),
    );
    super::card(h, "largest staleness", &format::int(staleness as u128));
    h.push_str("</div>");
    let series = |f: &dyn Fn(&StepMeans) -> Option<f64>| -> Vec<(f64, f64)> {
        let pts: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|(k, m)| f(m).map(|v| (*k as f64, v)))
            .filter(|p| p.1.is_finite())
            .collect();
        svg::downsample(&pts, MAX_POINTS)
    };
    let range = (
        *steps.keys().next().expect("non-empty") as f64,
        *steps.keys().last().expect("non-empty") as f64,
    );
    let threshold = series(&|m| Some(m.threshold / m.n as f64));
    let sparsity = series(&|m| Some(100.0 * m.sparsity / m.n as f64));
    h.push_str("<div class=\"grid2\"><section><h3>Threshold τ</h3>");
    chart(
        h,
        &[(&threshold, "#1f4e8c", "τ (mean over workers)")],
        range,
        "threshold",
        "τ",
        true,
    );
    h.push_str("</section><section><h3>Values sent</h3>");
    chart(
        h,
        &[(&sparsity, "#2e7d4f", "% of values sent (mean over workers)")],
        range,
        "sparsity",
        "% of values sent",
        true,
    );
    h.push_str("</section></div>");
    let bytes = series(&|m| Some(m.bytes / m.n as f64));
    h.push_str("<div class=\"grid2\"><section><h3>Message size</h3>");
    chart(
        h,
        &[(
            &bytes,
            "#6a3d9a",
            "bytes of a worker's message (mean over workers)",
        )],
        range,
        "message bytes",
        "bytes",
        true,
    );
    let _ = write!(
        h,
        "<p class=\"note\">A dense exchange of the update is {} a worker and step.</p>",
        format::bytes(dense)
    );
    h.push_str("</section><section><h3>Residual in thresholds</h3>");
    if steps.values().any(|m| m.debug > 0) {
        let at = |f: fn(&StepMeans) -> f64| {
            move |m: &StepMeans| (m.debug > 0).then(|| f(m) / m.debug as f64)
        };
        let p50 = series(&at(|m| m.p50));
        let p99 = series(&at(|m| m.p99));
        let max = series(&at(|m| m.max));
        chart(
            h,
            &[
                (&p50, "#9db8dd", "median"),
                (&p99, "#1f4e8c", "99th percentile"),
                (&max, "#b3261e", "largest"),
            ],
            range,
            "residual percentiles",
            "|r| / τ",
            false,
        );
        h.push_str(
            "<p class=\"note\">|r| / τ after each step, mean over workers. A median near or \
             above 10 means updates outrun what ±τ a step can send.</p>",
        );
    } else {
        h.push_str(
            "<p class=\"note\">Recorded in encoding debug mode only \
             (<code>SharedGradients::with_debug(true)</code>, <code>--debug-encoding</code>).</p>",
        );
    }
    h.push_str("</section></div>");
    h.push_str("</section>");
}

fn chart(
    h: &mut String,
    lines: &[(&Vec<(f64, f64)>, &str, &str)],
    range: (f64, f64),
    label: &str,
    y_title: &str,
    y_log: bool,
) {
    h.push_str("<div class=\"legend\">");
    for (_, color, name) in lines {
        let _ = write!(
            h,
            "<span><i class=\"ln\" style=\"border-color:{color}\"></i>{}</span>",
            format::escape(name)
        );
    }
    h.push_str("</div>");
    let series: Vec<svg::Series> = lines
        .iter()
        .map(|(points, color, _)| svg::Series {
            points,
            color,
            width: 1.6,
            dash: None,
        })
        .collect();
    svg::LineChart {
        label,
        x_title: "step",
        y_title,
        y_zero: !y_log,
        y_log,
    }
    .render(h, &series, range);
}
