use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::distributed::stats::{read_json_lines, write_json_lines};
use crate::MlError;

fn info(workers: usize) -> RunInfo {
    RunInfo {
        title: "mnist_distributed mlp".into(),
        master: "dense data parallel, local[2]".into(),
        workers,
        params: 535_818,
    }
}

fn rec(worker: usize, step: u64, start_us: u64, phases: [u64; 5], loss: f32) -> StepRecord {
    StepRecord {
        worker,
        epoch: (step / 100) as usize,
        step,
        start_us,
        data_wait_us: phases[0],
        compute_us: phases[1],
        optimizer_us: phases[2],
        comm_us: phases[3],
        peer_wait_us: phases[4],
        examples: 64,
        loss,
        bytes_sent: 1 << 20,
        bytes_received: (1 << 20) + 17,
        sharing: None,
    }
}

/// A plausible data-parallel run: every step starts together on all workers (after the
/// all-reduce of the previous one); the faster workers wait for the slowest.
fn synthetic(workers: usize, steps: u64, seed: u64) -> Vec<StepRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = 1_700_000_000_000_000u64; // aligned clocks need not start at 0
    for step in 0..steps {
        let epoch = (step / 300) as usize;
        let data: Vec<u64> = (0..workers)
            .map(|_| {
                // Prefetch keeps up, except at epoch starts and now and then.
                if step % 300 == 0 {
                    rng.gen_range(25_000..40_000)
                } else if rng.gen_bool(0.03) {
                    rng.gen_range(3_000..9_000)
                } else {
                    rng.gen_range(80..400)
                }
            })
            .collect();
        let compute: Vec<u64> = (0..workers)
            .map(|w| rng.gen_range(16_000..21_000) + w as u64 * 900)
            .collect();
        let opt: Vec<u64> = (0..workers).map(|_| rng.gen_range(1_200..1_700)).collect();
        let ready: Vec<u64> = (0..workers)
            .map(|w| data[w] + compute[w] + opt[w])
            .collect();
        let slowest = *ready.iter().max().unwrap();
        let comm = rng.gen_range(5_500..7_500);
        let progress = step as f32 / steps as f32;
        for w in 0..workers {
            let noise: f32 = rng.gen_range(-0.08..0.08);
            let loss = 2.3 * (-(step as f32) / 160.0).exp() + 0.12 + noise * (1.0 - progress);
            let bytes = 2_143_272 + rng.gen_range(0..64);
            out.push(StepRecord {
                worker: w,
                epoch,
                step,
                start_us: t + rng.gen_range(0..40),
                data_wait_us: data[w],
                compute_us: compute[w],
                optimizer_us: opt[w],
                comm_us: comm,
                peer_wait_us: slowest - ready[w] + rng.gen_range(50..400),
                examples: 64,
                loss,
                bytes_sent: bytes,
                bytes_received: bytes,
                sharing: None,
            });
        }
        t += slowest + comm + 400 + rng.gen_range(0..300);
    }
    out
}

fn lanes(html: &str) -> usize {
    html.matches("<g class=\"lane\" data-worker=").count()
}

#[test]
fn json_lines_round_trip_through_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.jsonl");
    let url = path.to_str().unwrap();
    let mut records = synthetic(3, 20, 1);
    records[4].loss = f32::NAN;
    records[5].loss = f32::INFINITY;
    records[6].loss = f32::NEG_INFINITY;
    records[7].bytes_sent = u64::MAX;
    let config = StorageConfig::default();
    write_json_lines(url, &records, &config).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), records.len());
    let back = read_json_lines(url, &config).unwrap();
    assert_eq!(back.len(), records.len());
    assert!(back[4].loss.is_nan());
    assert_eq!(back[5].loss, f32::INFINITY);
    assert_eq!(back[6].loss, f32::NEG_INFINITY);
    let finite = |v: &[StepRecord]| -> Vec<StepRecord> {
        v.iter().filter(|r| r.loss.is_finite()).cloned().collect()
    };
    assert_eq!(finite(&back), finite(&records));

    // A `null` loss (plain serde_json's NaN) reads as NaN; a bad line names its number.
    let mut text = serde_json::to_string(&records[4]).unwrap();
    assert!(text.contains("\"loss\":null"));
    text.push_str("\n\n{\"worker\": 1}\n");
    std::fs::write(&path, text).unwrap();
    match read_json_lines(url, &config) {
        Err(MlError::Json { what, .. }) => assert!(what.ends_with("line 3"), "{what}"),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn json_lines_round_trip_through_memory_and_missing_objects_are_storage_errors() {
    let config = StorageConfig::default();
    let url = "memory://report-tests/run-1/stats.jsonl";
    let records = synthetic(2, 50, 2);
    write_json_lines(url, &records, &config).unwrap();
    assert_eq!(read_json_lines(url, &config).unwrap(), records);
    write_json_lines(url, &[], &config).unwrap();
    assert!(read_json_lines(url, &config).unwrap().is_empty());
    assert!(matches!(
        read_json_lines("memory://report-tests/nothing-here.jsonl", &config),
        Err(MlError::Storage(_))
    ));

    write_report(
        "memory://report-tests/run-1/report.html",
        &info(2),
        &records,
        &config,
    )
    .unwrap();
    let loc = ember_storage::Location::resolve("memory://report-tests/run-1/report.html", &config)
        .unwrap();
    let html = String::from_utf8(loc.read_all().unwrap().to_vec()).unwrap();
    assert_eq!(html, render_html(&info(2), &records));
}

#[test]
fn one_lane_per_worker_and_the_title_is_escaped() {
    let mut i = info(3);
    i.title = "<script>alert('x')</script> & co".into();
    i.master = "<b>bold</b>".into();
    let records = synthetic(3, 5, 3);
    let html = render_html(&i, &records);
    assert_eq!(lanes(&html), 3, "five steps need no close-up");
    for w in 0..3 {
        assert!(html.contains(&format!("data-worker=\"{w}\"")));
    }
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>bold"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));

    // One worker; and a worker without records still gets its (empty) lane.
    let one = synthetic(1, 5, 4);
    assert_eq!(lanes(&render_html(&info(1), &one)), 1);
    assert_eq!(lanes(&render_html(&info(2), &one)), 2);
}

#[test]
fn long_runs_stay_small() {
    let records = synthetic(2, 5_000, 5);
    let html = render_html(&info(2), &records);
    // The overview and the close-up: two lanes each.
    assert_eq!(lanes(&html), 4);
    let overview = &html[..html.find("Close-up").unwrap()];
    // At most MAX_STEPS slices of five rectangles per lane.
    let rects: usize = overview
        .split("<path fill=")
        .skip(1)
        .map(|p| {
            let d = &p[p.find(" d=\"").unwrap() + 4..];
            d[..d.find('"').unwrap()].matches('M').count()
        })
        .sum();
    assert!(rects <= 2 * 5 * MAX_STEPS, "{rects}");
    assert!(rects > 2 * 3 * MAX_STEPS, "{rects}");
    assert!(html.len() < 400_000, "{} bytes", html.len());
    assert!(html.contains("the run is cut into 400 slices"));
}

#[test]
fn empty_input_says_so() {
    let html = render_html(&info(2), &[]);
    assert!(html.contains("No steps were recorded"));
    assert!(html.contains("mnist_distributed mlp"));
    assert_eq!(lanes(&html), 0);
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn communication_share_matches_a_hand_made_run() {
    // Worker 0: 10+50+5+20+15 = 100 µs, comm share 35%; worker 1: 0+60+5+25+10 = 100 µs, 35%...
    let records = vec![
        rec(0, 0, 1000, [10, 50, 5, 20, 15], 1.0),
        rec(1, 0, 1000, [0, 60, 5, 25, 10], 1.2),
        rec(0, 1, 1100, [0, 40, 5, 30, 25], 0.9),
        rec(1, 1, 1100, [0, 70, 5, 20, 5], 0.8),
    ];
    // ...over both steps: worker 0 (35 + 55) / 200 = 45%, worker 1 (35 + 25) / 200 = 30%.
    let comm: u64 = records.iter().map(|r| r.comm_us + r.peer_wait_us).sum();
    let total: u64 = records.iter().map(|r| r.total_us()).sum();
    let share = comm as f64 / total as f64;
    assert_eq!(format::pct(share), "37.5%");
    let html = render_html(&info(2), &records);
    assert!(html.contains("<div class=\"v\" id=\"comm-share\" data-value=\"0.375\">37.5%</div>"));
    assert!(html.contains("communication share of step time"));
    assert!(html.contains("<td class=\"comm\">45.0%</td>"));
    assert!(html.contains("<td class=\"comm\">30.0%</td>"));
    assert!(html.contains("<td class=\"comm\">37.5%</td>"));
    // 4 × 64 examples over 1000..1200 µs.
    assert!(html.contains("1.28M"), "samples/s");
}

#[test]
fn odd_values_do_not_break_the_page() {
    let mut records = synthetic(2, 40, 6);
    records[0].loss = f32::NAN;
    records[1].loss = f32::NAN; // step 0 has no finite loss at all
    records[3].loss = f32::INFINITY;
    records[10].loss = f32::MAX;
    records[11].bytes_received = u64::MAX;
    records[12].compute_us = u64::MAX / 4;
    records[13].examples = usize::MAX;
    let html = render_html(&info(2), &records);
    assert!(!html.contains("NaN"));
    assert!(!html.to_lowercase().contains("inf"));
    assert!(html.contains("1 step with no finite loss is left out"));
    assert!(html.contains("16.0 EiB"));
    assert_eq!(lanes(&html), 4);

    // Every worker's records at the same instant, with no time at all.
    let zero = vec![rec(0, 0, 5, [0; 5], 0.5), rec(1, 0, 5, [0; 5], 0.5)];
    let html = render_html(&info(2), &zero);
    assert!(!html.contains("NaN"));
    assert_eq!(lanes(&html), 2);
}

/// Writes a realistic run's report to `/tmp/report.html` (and harder cases to
/// `/tmp/report-{big,odd,empty}.html`), to look at in a browser.
#[test]
#[ignore]
fn write_sample_report() {
    let records = synthetic(2, 900, 7);
    let mut i = info(2);
    i.title = "mnist_distributed mlp 784-512-256-10".into();
    let html = render_html(&i, &records);
    std::fs::write("/tmp/report.html", &html).unwrap();
    write_json_lines("/tmp/report.jsonl", &records, &StorageConfig::default()).unwrap();
    println!("/tmp/report.html: {} bytes", html.len());

    // Harder cases, to look at too: many workers and steps, odd values, nothing at all.
    let big = synthetic(8, 20_000, 8);
    std::fs::write("/tmp/report-big.html", render_html(&info(8), &big)).unwrap();
    let mut odd = synthetic(1, 60, 9);
    odd[5].loss = f32::NAN;
    odd[6].loss = 3e38;
    odd[7].bytes_sent = u64::MAX;
    std::fs::write("/tmp/report-odd.html", render_html(&info(1), &odd)).unwrap();
    std::fs::write("/tmp/report-empty.html", render_html(&info(2), &[])).unwrap();
}

/// Sharing records of `steps` steps on two workers: threshold `tau`, `sparsity` of the values
/// sent, and a residual whose median is `p50` thresholds.
fn sharing_run(steps: u64, tau: f32, sparsity: f64, p50: f64) -> Vec<StepRecord> {
    use crate::distributed::sharing::{Encoding, ResidualStats, SharingRecord};
    let mut out = synthetic(2, steps, 12);
    for r in &mut out {
        r.sharing = Some(SharingRecord {
            threshold: tau * (1.0 + r.step as f32 / 1000.0),
            encoding: Some(Encoding::Sparse),
            entries: (sparsity * 535_818.0) as u64,
            sparsity,
            message_bytes: 36 + 4 * (sparsity * 535_818.0) as u64,
            staleness_max: r.step % 3,
            applied: 1,
            duplicates: 0,
            residual: Some(ResidualStats {
                mean: p50 * 0.8,
                max: p50 * 4.0,
                p50,
                p95: p50 * 2.0,
                p99: p50 * 3.0,
                p999: p50 * 3.5,
            }),
            params_checksum: None,
        });
    }
    out
}

#[test]
fn the_sharing_section_shows_thresholds_and_warns_of_a_mis_set_one() {
    // A dense run has no sharing section.
    assert!(!render_html(&info(2), &synthetic(2, 40, 3)).contains("id=\"sharing\""));
    let good = render_html(&info(2), &sharing_run(200, 1e-3, 2e-3, 0.4));
    assert!(good.contains("id=\"sharing\"") && good.contains("Threshold τ"));
    assert!(good.contains("Residual in thresholds"));
    assert!(good.contains("no sign of a mis-set threshold"));
    assert!(good.contains("largest staleness"));
    // Too high (almost nothing sent) and too low (residual far above τ): both called out.
    let high = render_html(&info(2), &sharing_run(200, 1.0, 1e-6, 0.1));
    assert!(high.contains("class=\"warn\"") && high.contains("threshold is too high"));
    let low = render_html(&info(2), &sharing_run(200, 1e-7, 5e-3, 40.0));
    assert!(low.contains("threshold is too low"));
}
