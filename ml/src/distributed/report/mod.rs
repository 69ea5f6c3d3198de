//! The training report: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
//! fetched) that shows a distributed training run from its [`StepRecord`]s.
//!
//! The page has a header with the run's totals and the communication share of step time, a
//! timeline with one lane per worker (each step as consecutive phase segments; long runs merge
//! consecutive steps so the page stays small, and a close-up shows a few steps exactly), the loss
//! and throughput per step, where step time goes per worker, and the bytes moved; for gradient
//! sharing also the threshold, the values sent, the residual and warnings of a mis-set threshold.
//!
//! [`render_html`] builds the page; [`write_report`] writes it to any storage URL. The records
//! themselves travel as JSON lines ([`super::stats::write_json_lines`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ember_storage::StorageConfig;

use super::stats::{RunInfo, StepRecord};

mod encoding;
mod format;
mod svg;
#[cfg(test)]
mod tests;

/// A phase of a step, as drawn.
struct Phase {
    name: &'static str,
    color: &'static str,
    /// Text colour on top of `color`.
    text: &'static str,
}

/// The phases in step order: data wait, compute, optimizer, communication, peer wait.
const PHASES: [Phase; 5] = [
    Phase {
        name: "data wait",
        color: "#e9b949",
        text: "#3a2e05",
    },
    Phase {
        name: "compute (forward + backward)",
        color: "#3d6fb6",
        text: "#ffffff",
    },
    Phase {
        name: "optimizer",
        color: "#4ea66d",
        text: "#ffffff",
    },
    Phase {
        name: "communication",
        color: "#c0392b",
        text: "#ffffff",
    },
    Phase {
        name: "waiting for peers",
        color: "#f0a49b",
        text: "#4a1510",
    },
];

/// A step's phase times in µs, in [`PHASES`] order.
fn phase_us(r: &StepRecord) -> [f64; 5] {
    [
        r.data_wait_us as f64,
        r.compute_us as f64,
        r.optimizer_us as f64,
        r.comm_us as f64,
        r.peer_wait_us as f64,
    ]
}

/// Totals over a set of records (one worker's, or all).
#[derive(Default)]
struct Totals {
    records: usize,
    phase_us: [f64; 5],
    examples: u128,
    sent: f64,
    received: f64,
    max_sent: u64,
    max_received: u64,
}

impl Totals {
    fn add(&mut self, r: &StepRecord) {
        self.records += 1;
        for (s, v) in self.phase_us.iter_mut().zip(phase_us(r)) {
            *s += v;
        }
        self.examples += r.examples as u128;
        self.sent += r.bytes_sent as f64;
        self.received += r.bytes_received as f64;
        self.max_sent = self.max_sent.max(r.bytes_sent);
        self.max_received = self.max_received.max(r.bytes_received);
    }

    fn total_us(&self) -> f64 {
        self.phase_us.iter().sum()
    }

    /// Each phase's fraction of the total (all 0 when no time was recorded).
    fn shares(&self) -> [f64; 5] {
        let t = self.total_us();
        self.phase_us.map(|v| if t > 0.0 { v / t } else { 0.0 })
    }

    /// (communication + waiting for peers) / total step time.
    fn comm_share(&self) -> f64 {
        let s = self.shares();
        s[3] + s[4]
    }

    fn per_record(&self, v: f64) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            v / self.records as f64
        }
    }
}

/// One step over all workers.
struct StepSum {
    loss_sum: f64,
    loss_n: usize,
    examples: u128,
    /// The slowest worker's step time: a synchronous step lasts that long.
    max_total_us: f64,
}

/// Lanes for `0..info.workers` are drawn even without records up to this many workers.
const MAX_EMPTY_LANES: usize = 1024;

/// Everything the page shows, computed once.
struct Summary<'a> {
    origin: u64,
    wall_us: f64,
    overall: Totals,
    workers: BTreeMap<usize, Totals>,
    lanes: Vec<(usize, Vec<&'a StepRecord>)>,
    steps: BTreeMap<u64, StepSum>,
    epochs: usize,
}

impl<'a> Summary<'a> {
    fn new(info: &RunInfo, records: &'a [StepRecord]) -> Summary<'a> {
        let origin = records.iter().map(|r| r.start_us).min().unwrap_or(0);
        // Workers without records get an empty lane, up to a sane number.
        let expected = info.workers.min(MAX_EMPTY_LANES);
        let mut s = Summary {
            origin,
            wall_us: 0.0,
            overall: Totals::default(),
            workers: (0..expected).map(|w| (w, Totals::default())).collect(),
            lanes: Vec::new(),
            steps: BTreeMap::new(),
            epochs: 0,
        };
        let mut lanes: BTreeMap<usize, Vec<&StepRecord>> =
            (0..expected).map(|w| (w, Vec::new())).collect();
        let mut epochs = std::collections::BTreeSet::new();
        for r in records {
            let total: f64 = phase_us(r).iter().sum();
            s.wall_us = s.wall_us.max((r.start_us - origin) as f64 + total);
            s.overall.add(r);
            s.workers.entry(r.worker).or_default().add(r);
            lanes.entry(r.worker).or_default().push(r);
            epochs.insert(r.epoch);
            let st = s.steps.entry(r.step).or_insert(StepSum {
                loss_sum: 0.0,
                loss_n: 0,
                examples: 0,
                max_total_us: 0.0,
            });
            if r.loss.is_finite() {
                st.loss_sum += r.loss as f64;
                st.loss_n += 1;
            }
            st.examples += r.examples as u128;
            st.max_total_us = st.max_total_us.max(total);
        }
        for recs in lanes.values_mut() {
            recs.sort_by_key(|r| (r.start_us, r.step));
        }
        s.lanes = lanes.into_iter().collect();
        s.epochs = epochs.len();
        s
    }

    /// Examples per second of wall time over the whole run.
    fn samples_per_s(&self) -> f64 {
        if self.wall_us > 0.0 {
            self.overall.examples as f64 / (self.wall_us / 1e6)
        } else {
            f64::NAN
        }
    }
}

/// Renders the report of a run as one self-contained HTML page.
///
/// `records` may come in any order and from any number of workers (lanes are the union of
/// `0..info.workers`, up to 1024, and the workers in `records`). Non-finite losses are left out of the loss
/// chart; with no records the page says that no steps were recorded.
pub fn render_html(info: &RunInfo, records: &[StepRecord]) -> String {
    let s = Summary::new(info, records);
    let mut h = String::with_capacity(64 * 1024);
    let title = format::escape(&info.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · training report</title><style>{CSS}</style></head><body><main>"
    );
    header(&mut h, info, &s);
    if records.is_empty() {
        h.push_str(
            "<section class=\"empty\"><h2>No steps were recorded</h2><p class=\"note\">The run \
             produced no step records, so there is no timeline, loss or throughput to show.</p>\
             </section>",
        );
    } else {
        timeline_section(&mut h, &s);
        charts_section(&mut h, &s);
        share_section(&mut h, &s);
        traffic_section(&mut h, &s);
        encoding::section(&mut h, records, info.params);
    }
    let _ = writeln!(
        h,
        "<footer>ember-ml training report · {} step records · times on the engine's aligned \
         clock</footer></main></body></html>",
        format::int(records.len() as u128)
    );
    h
}

/// Renders the report ([`render_html`]) and writes it to a storage URL (`file://`, a bare path,
/// `memory://`, `s3://`...) in one PUT.
pub fn write_report(
    url: &str,
    info: &RunInfo,
    records: &[StepRecord],
    config: &StorageConfig,
) -> crate::Result<()> {
    let html = render_html(info, records);
    ember_storage::Location::resolve(url, config)?.put(html.into_bytes())?;
    Ok(())
}

/// The page's style sheet, inlined.
const CSS: &str = include_str!("style.css");

fn card(h: &mut String, key: &str, value: &str) {
    let _ = write!(
        h,
        "<div class=\"card\"><div class=\"k\">{key}</div><div class=\"v\">{value}</div></div>"
    );
}

fn header(h: &mut String, info: &RunInfo, s: &Summary) {
    let _ = write!(
        h,
        "<header><h1>{}</h1><p class=\"sub\">{}</p><div class=\"cards\">",
        format::escape(&info.title),
        format::escape(&info.master)
    );
    let empty = s.overall.records == 0;
    let comm = s.overall.comm_share();
    let _ = write!(
        h,
        "<div class=\"card comm\"><div class=\"k\">communication share of step time</div>\
         <div class=\"v\" id=\"comm-share\" data-value=\"{comm}\">{}</div></div>",
        if empty {
            "–".into()
        } else {
            format::pct(comm)
        }
    );
    card(h, "workers", &format::int(info.workers as u128));
    card(h, "parameters", &format::int(info.params as u128));
    card(h, "steps", &format::int(s.steps.len() as u128));
    card(h, "epochs", &format::int(s.epochs as u128));
    card(h, "examples", &format::int(s.overall.examples));
    let wall = if empty {
        "–".into()
    } else {
        format::duration_us(s.wall_us)
    };
    card(h, "wall time", &wall);
    card(h, "samples / s", &format::si(s.samples_per_s()));
    h.push_str("</div></header>");
}

fn legend(h: &mut String) {
    h.push_str("<div class=\"legend\">");
    for p in &PHASES {
        let _ = write!(
            h,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            p.color, p.name
        );
    }
    h.push_str("</div>");
}

/// A lane with more steps than this is drawn as this many time slices (5 rectangles each).
const MAX_STEPS: usize = 400;
/// Steps in the close-up.
const CLOSE_UP: usize = 6;

fn timeline_section(h: &mut String, s: &Summary) {
    let win = svg::Window {
        lo_us: 0.0,
        hi_us: s.wall_us,
        max_steps: MAX_STEPS,
        detail: false,
    };
    let max_lane = s.lanes.iter().map(|l| l.1.len()).max().unwrap_or(0);
    let sliced = svg::sliced(max_lane, &win);
    let note = if sliced {
        format!(
            "One lane per worker. Too many steps to draw one by one: the run is cut into {} \
             slices of {}, each a column split top to bottom by the share of its time spent in \
             each phase (blank: between steps). The close-up below shows single steps.",
            MAX_STEPS,
            format::duration_us(svg::slice_us(&win))
        )
    } else {
        "One lane per worker; each step is drawn as its phases end to end (blank: between \
         steps)."
            .to_string()
    };
    let _ = write!(h, "<section><h2>Timeline</h2><p class=\"note\">{note}</p>");
    legend(h);
    svg::timeline(h, &s.lanes, s.origin, &win);
    h.push_str("</section>");
    if s.steps.len() <= CLOSE_UP && !sliced {
        return;
    }
    // A close-up of a few steps from the middle of the run, drawn exactly.
    let keys: Vec<u64> = s.steps.keys().copied().collect();
    let first = (keys.len() - CLOSE_UP.min(keys.len())) / 2;
    let chosen = &keys[first..(first + CLOSE_UP).min(keys.len())];
    let (lo, hi) = (chosen[0], chosen[chosen.len() - 1]);
    let lanes: Vec<(usize, Vec<&StepRecord>)> = s
        .lanes
        .iter()
        .map(|(w, recs)| {
            let recs = recs
                .iter()
                .copied()
                .filter(|r| (lo..=hi).contains(&r.step))
                .collect();
            (*w, recs)
        })
        .collect();
    let rel = |r: &StepRecord| r.start_us.saturating_sub(s.origin) as f64;
    let all = lanes.iter().flat_map(|l| l.1.iter());
    let t_lo = all.clone().map(|r| rel(r)).fold(f64::INFINITY, f64::min);
    let t_hi = all
        .map(|r| rel(r) + phase_us(r).iter().sum::<f64>())
        .fold(0.0, f64::max);
    let pad = (t_hi - t_lo) * 0.01;
    let _ = write!(
        h,
        "<section><h2>Close-up: steps {lo}–{hi}</h2><p class=\"note\">The same lanes over {}, \
         every step drawn exactly (hover a step for its times).</p>",
        format::duration_us(t_hi - t_lo)
    );
    legend(h);
    svg::timeline(
        h,
        &lanes,
        s.origin,
        &svg::Window {
            lo_us: (t_lo - pad).max(0.0),
            hi_us: t_hi + pad,
            max_steps: usize::MAX,
            detail: true,
        },
    );
    h.push_str("</section>");
}

/// Points kept per line; longer series are averaged down to this many.
const MAX_POINTS: usize = 1500;

fn charts_section(h: &mut String, s: &Summary) {
    let loss: Vec<(f64, f64)> = s
        .steps
        .iter()
        .filter(|(_, st)| st.loss_n > 0)
        .map(|(k, st)| (*k as f64, st.loss_sum / st.loss_n as f64))
        .filter(|p| p.1.is_finite())
        .collect();
    let rate: Vec<(f64, f64)> = s
        .steps
        .iter()
        .filter(|(_, st)| st.max_total_us > 0.0)
        .map(|(k, st)| (*k as f64, st.examples as f64 / (st.max_total_us / 1e6)))
        .filter(|p| p.1.is_finite())
        .collect();
    let skipped = s.steps.values().filter(|st| st.loss_n == 0).count();
    h.push_str("<div class=\"grid2\"><section><h2>Training loss</h2>");
    let mut note = String::from("Mean over workers per step, and a moving average.");
    if skipped > 0 {
        let (noun, verb) = if skipped == 1 {
            ("step", "is")
        } else {
            ("steps", "are")
        };
        let _ = write!(
            note,
            " {} {noun} with no finite loss {verb} left out.",
            format::int(skipped as u128)
        );
    }
    line_chart(
        h,
        &note,
        &loss,
        "loss",
        "#9db8dd",
        "#1f4e8c",
        None,
        svg::LineChart {
            label: "training loss per step",
            x_title: "step",
            y_title: "loss (mean over workers)",
            y_zero: false,
            y_log: true,
        },
    );
    h.push_str("</section><section><h2>Throughput</h2>");
    let overall = s.samples_per_s();
    line_chart(
        h,
        "Examples per second per step, all workers: the step's examples over its slowest \
         worker's step time.",
        &rate,
        "examples/s",
        "#b7dcc3",
        "#2e7d4f",
        overall.is_finite().then_some(overall),
        svg::LineChart {
            label: "throughput per step",
            x_title: "step",
            y_title: "examples / s (all workers)",
            y_zero: true,
            y_log: false,
        },
    );
    h.push_str("</section></div>");
}

#[allow(clippy::too_many_arguments)]
fn line_chart(
    h: &mut String,
    note: &str,
    points: &[(f64, f64)],
    what: &str,
    raw_color: &str,
    smooth_color: &str,
    reference: Option<f64>,
    chart: svg::LineChart,
) {
    let _ = write!(h, "<p class=\"note\">{note}</p>");
    if points.is_empty() {
        let _ = write!(h, "<p>No finite {what} values to plot.</p>");
        return;
    }
    // Smooth over about 1/20 of the run (at most ~100 steps), on the points drawn.
    let raw = svg::downsample(points, MAX_POINTS);
    let per = points.len().div_ceil(raw.len());
    let half = ((points.len() / 40).clamp(1, 50) / per).max(1);
    let smoothed = svg::smooth(&raw, half);
    let _ = write!(
        h,
        "<div class=\"legend\"><span><i class=\"ln\" style=\"border-color:{raw_color}\"></i>\
         {what} per step</span><span><i class=\"ln\" style=\"border-color:{smooth_color}\"></i>\
         moving average ({} steps)</span>",
        (2 * half + 1) * per
    );
    let mut reference_line = Vec::new();
    if let Some(v) = reference {
        let _ = write!(
            h,
            "<span><i class=\"ln dash\" style=\"border-color:#555\"></i>whole run: {} {what} \
             (wall time)</span>",
            format::si(v)
        );
        reference_line = vec![(points[0].0, v), (points[points.len() - 1].0, v)];
    }
    h.push_str("</div>");
    let mut series = vec![
        svg::Series {
            points: &raw,
            color: raw_color,
            width: 1.2,
            dash: None,
        },
        svg::Series {
            points: &smoothed,
            color: smooth_color,
            width: 2.2,
            dash: None,
        },
    ];
    if !reference_line.is_empty() {
        series.push(svg::Series {
            points: &reference_line,
            color: "#555",
            width: 1.2,
            dash: Some("5 4"),
        });
    }
    chart.render(h, &series, (points[0].0, points[points.len() - 1].0));
}

fn share_section(h: &mut String, s: &Summary) {
    h.push_str(
        "<section><h2>Where step time goes</h2><p class=\"note\">Share of each worker's summed \
         step time per phase. Communication share = (communication + waiting for peers) / step \
         time.</p>",
    );
    legend(h);
    let mut rows: Vec<(String, [f64; 5])> = s
        .workers
        .iter()
        .map(|(w, t)| (format!("worker {w}"), t.shares()))
        .collect();
    rows.push(("all workers".into(), s.overall.shares()));
    svg::share_bars(h, &rows);
    h.push_str("<table><thead><tr><th>worker</th><th>steps</th><th>mean step</th>");
    for p in &PHASES {
        let _ = write!(h, "<th>{}</th>", p.name);
    }
    h.push_str("<th>communication share</th></tr></thead><tbody>");
    let row = |h: &mut String, label: &str, t: &Totals, class: &str| {
        let _ = write!(
            h,
            "<tr{class}><td>{label}</td><td>{}</td><td>{}</td>",
            format::int(t.records as u128),
            format::duration_us(t.per_record(t.total_us()))
        );
        for (share, us) in t.shares().iter().zip(t.phase_us) {
            let _ = write!(
                h,
                "<td>{}<span class=\"ms\">{} / step</span></td>",
                format::pct(*share),
                format::duration_us(t.per_record(us))
            );
        }
        let _ = write!(
            h,
            "<td class=\"comm\">{}</td></tr>",
            format::pct(t.comm_share())
        );
    };
    for (w, t) in &s.workers {
        row(h, &format!("worker {w}"), t, "");
    }
    row(h, "all workers", &s.overall, " class=\"all\"");
    h.push_str("</tbody></table></section>");
}

fn traffic_section(h: &mut String, s: &Summary) {
    h.push_str(
        "<section><h2>Bytes moved</h2><p class=\"note\">What each worker sent and received per \
         step (mean and largest) and over the run.</p><table><thead><tr><th>worker</th>\
         <th>sent / step</th><th>received / step</th><th>most sent in a step</th>\
         <th>most received in a step</th><th>total sent</th><th>total received</th></tr>\
         </thead><tbody>",
    );
    let row = |h: &mut String, label: &str, t: &Totals, class: &str| {
        let _ = write!(
            h,
            "<tr{class}><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            format::bytes(t.per_record(t.sent)),
            format::bytes(t.per_record(t.received)),
            format::bytes(t.max_sent as f64),
            format::bytes(t.max_received as f64),
            format::bytes(t.sent),
            format::bytes(t.received)
        );
    };
    for (w, t) in &s.workers {
        row(h, &format!("worker {w}"), t, "");
    }
    row(h, "all workers", &s.overall, " class=\"all\"");
    h.push_str("</tbody></table></section>");
}
