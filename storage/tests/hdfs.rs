//! HDFS integration test. No HDFS server can be installed on CI machines, so this runs only when
//! `EMBER_TEST_HDFS_URL` (e.g. `hdfs://namenode:8020/tmp`) is set and the crate is built with the
//! `hdfs` feature; otherwise it reports itself skipped.

mod common;

#[test]
fn hdfs_roundtrip_when_a_cluster_is_configured() {
    let Ok(base) = std::env::var("EMBER_TEST_HDFS_URL") else {
        eprintln!(
            "SKIPPED hdfs_roundtrip_when_a_cluster_is_configured: EMBER_TEST_HDFS_URL is not set"
        );
        return;
    };
    run(&base);
}

#[cfg(feature = "hdfs")]
fn run(base: &str) {
    use ember_storage::{
        list_inputs, text_splits, JobCommitter, LineReader, Location, SaveMode, StorageConfig,
        Utf8Mode,
    };
    let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", "4096");
    let dir = format!(
        "{}/ember-test-{}",
        base.trim_end_matches('/'),
        JobCommitter::new_job_id()
    );
    let text = common::sample_text(2000, 1);
    let job = JobCommitter::new(&dir, "hdfsjob", SaveMode::ErrorIfExists, &cfg).unwrap();
    job.setup_job().unwrap();
    let mut t = job.task(0, 0);
    let mut w = t.text_writer().unwrap();
    for l in text.lines() {
        w.write_line(l).unwrap();
    }
    w.finish().unwrap();
    job.commit_job(&[t.commit()]).unwrap();
    assert_eq!(list_inputs(&dir, &cfg).unwrap().len(), 1);
    let got: Vec<String> = text_splits(&dir, 1, &cfg)
        .unwrap()
        .iter()
        .flat_map(|s| {
            LineReader::open(s, &cfg, Utf8Mode::Strict)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        })
        .collect();
    assert_eq!(got, text.lines().map(str::to_string).collect::<Vec<_>>());
    Location::resolve(&dir, &cfg)
        .unwrap()
        .delete_recursive()
        .unwrap();
}

#[cfg(not(feature = "hdfs"))]
fn run(base: &str) {
    panic!(
        "EMBER_TEST_HDFS_URL={base} is set but ember-storage was built without the `hdfs` feature"
    );
}
