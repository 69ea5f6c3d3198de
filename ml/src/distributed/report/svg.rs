//! Inline SVG for the report: axes, line charts, the per-worker timeline and stacked share bars.
//! Everything is drawn in viewBox units close to CSS pixels at the page's width.

use std::fmt::Write as _;

use super::format;
use super::{phase_us, PHASES};
use crate::distributed::stats::StepRecord;

/// A value axis: linear, or log10 when the values span many decades.
pub(super) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    step: f64,
}

impl Axis {
    /// An axis over `[lo, hi]` rounded out to tick steps. `include_zero` pins 0 into the range;
    /// `allow_log` switches to log10 when all values are positive and span over two decades.
    pub(super) fn new(lo: f64, hi: f64, include_zero: bool, allow_log: bool, ticks: usize) -> Axis {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if allow_log && lo > 0.0 && hi / lo > 100.0 {
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf(hi.log10().ceil());
            let decades = (hi / lo).log10().round().max(1.0);
            let step = (decades / ticks as f64).ceil().max(1.0);
            return Axis {
                lo,
                hi,
                log: true,
                step,
            };
        }
        if include_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if hi - lo <= hi.abs().max(lo.abs()) * 1e-12 {
            let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
            lo -= pad;
            hi += pad;
            if include_zero && lo < 0.0 && hi > 0.0 && (hi - pad) >= 0.0 {
                lo = 0.0;
            }
        }
        let step = nice_step(hi - lo, ticks);
        let lo2 = (lo / step).floor() * step;
        let hi2 = (hi / step).ceil() * step;
        let (lo, hi) = if lo2.is_finite() && hi2.is_finite() && hi2 > lo2 {
            (lo2, hi2)
        } else {
            (lo, hi)
        };
        Axis {
            lo,
            hi,
            log: false,
            step,
        }
    }

    /// A linear axis over exactly `[lo, hi]` (widened when empty), ticks inside it.
    pub(super) fn exact(lo: f64, hi: f64, ticks: usize) -> Axis {
        let rounded = Axis::new(lo, hi, false, false, ticks);
        if lo.is_finite() && hi.is_finite() && hi > lo {
            Axis { lo, hi, ..rounded }
        } else {
            rounded
        }
    }

    /// Where `v` lies on the axis, 0 at `lo` and 1 at `hi` (clamped).
    pub(super) fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Tick values and their labels.
    pub(super) fn ticks(&self) -> Vec<(f64, String)> {
        let mut out = Vec::new();
        if self.log {
            let mut e = self.lo.log10().round();
            while e <= self.hi.log10().round() + 1e-9 && out.len() < 40 {
                let v = 10f64.powf(e);
                let label = if (-3.0..=3.0).contains(&e) {
                    format::tick(v, v, v)
                } else {
                    format!("1e{e}")
                };
                out.push((v, label));
                e += self.step;
            }
            return out;
        }
        let mag = self.lo.abs().max(self.hi.abs());
        let first = (self.lo / self.step - 1e-9).ceil();
        for i in 0..=40 {
            let v = (first + i as f64) * self.step;
            if v > self.hi + self.step * 1e-6 {
                break;
            }
            out.push((v, format::tick(v, self.step, mag)));
        }
        out
    }
}

/// A 1, 2 or 5 times a power of ten near `span / target`.
pub(super) fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// One line of a chart.
pub(super) struct Series<'a> {
    /// Points in data units, sorted by x.
    pub points: &'a [(f64, f64)],
    /// Stroke colour.
    pub color: &'a str,
    /// Stroke width.
    pub width: f64,
    /// Dash pattern, if any.
    pub dash: Option<&'a str>,
}

/// A line chart with axes, grid and axis titles.
pub(super) struct LineChart<'a> {
    /// The accessible name of the chart.
    pub label: &'a str,
    /// The x axis title (with unit).
    pub x_title: &'a str,
    /// The y axis title (with unit).
    pub y_title: &'a str,
    /// Pin 0 into the y range.
    pub y_zero: bool,
    /// Allow a log y axis for values spanning many decades.
    pub y_log: bool,
}

const CHART_W: f64 = 620.0;
const CHART_H: f64 = 300.0;

impl LineChart<'_> {
    /// Draws the chart over `x_range` (the data's, before any downsampling); the y axis covers
    /// every series' points.
    pub(super) fn render(&self, out: &mut String, series: &[Series], x_range: (f64, f64)) {
        let (ml, mr, mt, mb) = (64.0, 14.0, 12.0, 46.0);
        let (pw, ph) = (CHART_W - ml - mr, CHART_H - mt - mb);
        let pts = || series.iter().flat_map(|s| s.points.iter());
        let (x_lo, x_hi) = x_range;
        let (y_lo, y_hi) = min_max(pts().map(|p| p.1));
        let xa = Axis::exact(x_lo, x_hi, 8);
        let ya = Axis::new(y_lo, y_hi, self.y_zero, self.y_log, 5);
        let _ = write!(
            out,
            r#"<svg viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="{}">"#,
            format::escape(self.label)
        );
        let x = |v: f64| ml + xa.frac(v) * pw;
        let y = |v: f64| mt + (1.0 - ya.frac(v)) * ph;
        for (v, label) in ya.ticks() {
            let yy = y(v);
            let _ = write!(
                out,
                r##"<line x1="{ml}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e6e9ee"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{label}</text>"##,
                ml + pw,
                ml - 6.0,
                yy + 4.0
            );
        }
        for (v, label) in xa.ticks() {
            let xx = x(v);
            let _ = write!(
                out,
                r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{mt}" y2="{:.1}" stroke="#f0f2f5"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text>"##,
                mt + ph,
                mt + ph + 15.0
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#c9ced6"/>"##
        );
        for s in series {
            if s.points.is_empty() {
                continue;
            }
            out.push_str(r#"<polyline fill="none" stroke-linejoin="round" points=""#);
            for &(px, py) in s.points {
                let _ = write!(out, "{:.1},{:.1} ", x(px), y(py));
            }
            let dash = s
                .dash
                .map(|d| format!(r#" stroke-dasharray="{d}""#))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"" stroke="{}" stroke-width="{}"{dash}/>"#,
                s.color, s.width
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" class="at">{}</text>"#,
            ml + pw / 2.0,
            CHART_H - 8.0,
            format::escape(self.x_title)
        );
        let _ = write!(
            out,
            r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" font-size="12" class="at">{}{}</text>"#,
            mt + ph / 2.0,
            format::escape(self.y_title),
            if ya.log { ", log scale" } else { "" }
        );
        out.push_str("</svg>");
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// At most `max` points: consecutive points averaged in equal-count buckets.
pub(super) fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            let (sx, sy) = c.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
            (sx / n, sy / n)
        })
        .collect()
}

/// A centred moving average with up to `half` points on each side: fewer near the ends, so that
/// the first and last points are the data's own. Summed directly (no running sums), so a huge
/// value does not wash out its neighbours' precision.
pub(super) fn smooth(points: &[(f64, f64)], half: usize) -> Vec<(f64, f64)> {
    let n = points.len();
    (0..n)
        .map(|i| {
            let h = half.min(i).min(n - 1 - i);
            let window = &points[i - h..=i + h];
            let sum: f64 = window.iter().map(|p| p.1).sum();
            (points[i].0, sum / window.len() as f64)
        })
        .collect()
}

/// The timeline's time window and level of detail.
pub(super) struct Window {
    /// Left edge, µs after the run's origin.
    pub lo_us: f64,
    /// Right edge, µs after the run's origin.
    pub hi_us: f64,
    /// A lane with more steps than this is drawn as this many time slices instead, each a
    /// column stacked by the share of the slice spent in each phase (at most 5 rectangles a
    /// slice); a lane with fewer draws every step as its phases end to end.
    pub max_steps: usize,
    /// Mark each step's start and give it a tooltip (for a close-up of a few steps).
    pub detail: bool,
}

/// Whether a lane of `steps` steps is drawn as time slices in `win`.
pub(super) fn sliced(steps: usize, win: &Window) -> bool {
    steps > win.max_steps
}

const TL_W: f64 = 1280.0;
const TL_ML: f64 = 84.0;
const TL_MR: f64 = 16.0;

/// The width of one time slice, in µs, when lanes are sliced.
pub(super) fn slice_us(win: &Window) -> f64 {
    (win.hi_us - win.lo_us).max(1.0) / win.max_steps.max(1) as f64
}

/// One lane per worker. `lanes` holds each worker's records sorted by start; times are relative
/// to `origin` µs.
pub(super) fn timeline(
    out: &mut String,
    lanes: &[(usize, Vec<&StepRecord>)],
    origin: u64,
    win: &Window,
) {
    let mt = if win.detail { 22.0 } else { 6.0 };
    let (lane_h, gap, axis_h) = (if win.detail { 26.0 } else { 34.0 }, 8.0, 40.0);
    let pw = TL_W - TL_ML - TL_MR;
    let lanes_h = lanes.len() as f64 * (lane_h + gap) - gap;
    let h = mt + lanes_h + axis_h;
    let span = (win.hi_us - win.lo_us).max(1.0);
    let scale = pw / span;
    let x = |t: f64| TL_ML + (t - win.lo_us) * scale;
    // Every lane in the same mode, so that lanes compare.
    let any_sliced = lanes.iter().any(|l| sliced(l.1.len(), win));
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {TL_W} {h:.0}" role="img" aria-label="timeline, one lane per worker">"#
    );
    // Time axis, in a unit that suits the values (seconds at most for a short window).
    let (div, unit) = time_unit(win.hi_us, span);
    let step = nice_step(span / div, 10);
    let first = (win.lo_us / div / step).ceil();
    let axis_y = mt + lanes_h + 6.0;
    for i in 0..=40 {
        let v = (first + i as f64) * step;
        if v * div > win.hi_us + 1e-6 * span {
            break;
        }
        let xx = x(v * div);
        let _ = write!(
            out,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{mt}" y2="{axis_y:.1}" stroke="#e3e6eb"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            axis_y + 12.0,
            format::tick(v, step, win.hi_us / div)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" class="at">time since start of training ({unit})</text>"#,
        TL_ML + pw / 2.0,
        h - 4.0
    );
    for (li, (worker, recs)) in lanes.iter().enumerate() {
        let y0 = mt + li as f64 * (lane_h + gap);
        let _ = write!(
            out,
            r##"<g class="lane" data-worker="{worker}"><rect x="{TL_ML}" y="{y0:.1}" width="{pw}" height="{lane_h}" fill="#f1f3f6"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12">worker {worker}</text>"##,
            TL_ML - 8.0,
            y0 + lane_h / 2.0 + 4.0
        );
        let mut paths: [String; 5] = Default::default();
        let mut marks = String::new();
        if any_sliced {
            slices(&mut paths, recs, origin, win, y0, lane_h);
        } else {
            for r in recs {
                let start = r.start_us.saturating_sub(origin) as f64;
                let mut cursor = x(start);
                for (p, us) in phase_us(r).iter().enumerate() {
                    let w = us * scale;
                    if w > 0.0 && w.is_finite() {
                        let _ = write!(paths[p], "M{cursor:.2} {y0:.1}h{w:.2}v{lane_h}h-{w:.2}z");
                        cursor += w;
                    }
                }
                if win.detail {
                    let xs = x(start);
                    let _ = write!(
                        marks,
                        r##"<rect x="{xs:.2}" y="{y0:.1}" width="{:.2}" height="{lane_h}" fill="none" stroke="#fff" stroke-width="1.5"><title>{}</title></rect>"##,
                        (cursor - xs).max(0.0),
                        step_tooltip(r)
                    );
                    if li == 0 {
                        let _ = write!(
                            marks,
                            r#"<text x="{xs:.1}" y="{:.1}" font-size="11">step {}</text>"#,
                            y0 - 6.0,
                            r.step
                        );
                    }
                }
            }
        }
        for (p, d) in paths.iter().enumerate() {
            if !d.is_empty() {
                let _ = write!(out, r#"<path fill="{}" d="{d}"/>"#, PHASES[p].color);
            }
        }
        out.push_str(&marks);
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

/// A lane as `win.max_steps` equal time slices: each phase's time (phases laid end to end from
/// each step's start) is split over the slices it covers, and each slice is drawn as a column
/// stacked top to bottom in phase order, each phase as tall as its share of the slice. Time
/// between steps is left blank.
fn slices(
    paths: &mut [String; 5],
    recs: &[&StepRecord],
    origin: u64,
    win: &Window,
    y0: f64,
    lane_h: f64,
) {
    let n = win.max_steps.max(1);
    let bw = slice_us(win);
    let mut bins = vec![[0.0f64; 5]; n];
    for r in recs {
        let mut t = r.start_us.saturating_sub(origin) as f64 - win.lo_us;
        for (p, d) in phase_us(r).iter().enumerate() {
            let (a, b) = (t.max(0.0), (t + d).min(bw * n as f64));
            t += d;
            if b <= a {
                continue;
            }
            let (i0, i1) = ((a / bw) as usize, ((b / bw).ceil() as usize).min(n));
            for (i, bin) in bins.iter_mut().enumerate().take(i1).skip(i0) {
                let (lo, hi) = (i as f64 * bw, (i + 1) as f64 * bw);
                bin[p] += (b.min(hi) - a.max(lo)).max(0.0);
            }
        }
    }
    let pw = TL_W - TL_ML - TL_MR;
    let w = pw / n as f64;
    for (i, bin) in bins.iter().enumerate() {
        // Busy time over the slice, or over the busy time where steps overlap.
        let denom = bin.iter().sum::<f64>().max(bw);
        // A hair wider than the slice so that neighbours leave no seam.
        let xl = TL_ML + i as f64 * w;
        let ww = if i + 1 < n { w + 0.4 } else { w };
        let mut y = y0;
        for (p, us) in bin.iter().enumerate() {
            let hh = us / denom * lane_h;
            if hh > 0.01 {
                let _ = write!(paths[p], "M{xl:.2} {y:.2}h{ww:.2}v{hh:.2}h-{ww:.2}z");
                y += hh;
            }
        }
    }
}

/// A divisor from µs and its unit name for an axis up to `hi_us` spanning `span_us`.
fn time_unit(hi_us: f64, span_us: f64) -> (f64, &'static str) {
    if hi_us < 2e3 {
        (1.0, "µs")
    } else if hi_us < 2e6 {
        (1e3, "ms")
    } else if hi_us < 1200e6 || span_us < 60e6 {
        (1e6, "s")
    } else if span_us < 72_000e6 {
        (60e6, "min")
    } else {
        (3600e6, "h")
    }
}

fn step_tooltip(r: &StepRecord) -> String {
    let t = phase_us(r);
    let mut s = format!(
        "worker {} · step {} · {}",
        r.worker,
        r.step,
        format::duration_us(t.iter().sum())
    );
    for (p, v) in PHASES.iter().zip(t) {
        let _ = write!(s, "\n{}: {}", p.name, format::duration_us(v));
    }
    s
}

/// Horizontal 100% bars, one per row, split by phase share; segments wide enough are labelled.
pub(super) fn share_bars(out: &mut String, rows: &[(String, [f64; 5])]) {
    let (ml, mr, mt) = (110.0, 16.0, 4.0);
    let (bar_h, gap, axis_h) = (24.0, 8.0, 24.0);
    let pw = TL_W - ml - mr;
    let h = mt + rows.len() as f64 * (bar_h + gap) - gap + axis_h;
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {TL_W} {h:.0}" role="img" aria-label="share of step time per phase">"#
    );
    let axis_y = mt + rows.len() as f64 * (bar_h + gap) - gap;
    for i in 0..=10 {
        let xx = ml + pw * i as f64 / 10.0;
        let _ = write!(
            out,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{mt}" y2="{:.1}" stroke="#e3e6eb"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}%</text>"##,
            axis_y + 4.0,
            axis_y + 17.0,
            i * 10
        );
    }
    for (ri, (label, shares)) in rows.iter().enumerate() {
        let y0 = mt + ri as f64 * (bar_h + gap);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12">{}</text>"#,
            ml - 8.0,
            y0 + bar_h / 2.0 + 4.0,
            format::escape(label)
        );
        let mut cursor = ml;
        for (p, share) in shares.iter().enumerate() {
            let w = share * pw;
            if !(w > 0.0 && w.is_finite()) {
                continue;
            }
            let _ = write!(
                out,
                r#"<rect x="{cursor:.2}" y="{y0:.1}" width="{w:.2}" height="{bar_h}" fill="{}"><title>{}: {}</title></rect>"#,
                PHASES[p].color,
                PHASES[p].name,
                format::pct(*share)
            );
            if w >= 40.0 {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="{}" class="in">{}</text>"#,
                    cursor + w / 2.0,
                    y0 + bar_h / 2.0 + 4.0,
                    PHASES[p].text,
                    format::pct(*share)
                );
            }
            cursor += w;
        }
    }
    out.push_str("</svg>");
}
