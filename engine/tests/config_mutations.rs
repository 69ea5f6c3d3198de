//! Mutation tests of the configuration-file parser (issue 12): seeded truncations, bit flips and
//! byte overwrites of a valid defaults file load as a configuration whose every value is valid,
//! or fail with a typed error naming the file; none panics.

#[path = "../../storage/tests/common/mutate.rs"]
mod mutate;

use ember_engine::config::{Conf, KEYS};

const VALID: &str = "\
# Ember defaults
ember.master local[4]
ember.app.name = mutation test
ember.task.maxFailures 3
ember.task.timeout=90s
ember.memory.storage 512m
ember.locality.wait = 1500ms
ember.text.invalidUtf8 lossy
ember.rdd.compress true
ember.s3.endpoint http://127.0.0.1:9000
ember.storage.maxRetries=2
";

#[test]
fn configuration_file_mutants_are_errors_or_valid_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ember-defaults.conf");
    std::fs::write(&path, VALID).unwrap();
    Conf::new().load_file(&path).expect("the valid file loads");
    let (mut ok, mut failed) = (0, 0);
    for (i, m) in mutate::mutants(VALID.as_bytes(), 8, 2000)
        .into_iter()
        .enumerate()
    {
        std::fs::write(&path, &m).unwrap();
        let mut conf = Conf::new();
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conf.load_file(&path).map(|_| ())
        }))
        .unwrap_or_else(|_| panic!("mutant {i} (seed 8) panicked"));
        match loaded {
            Ok(()) => {
                ok += 1;
                // Every value that loaded is usable.
                conf.master().unwrap_or_else(|e| panic!("mutant {i}: {e}"));
                for spec in KEYS {
                    let _ = (conf.get_duration(spec.key), conf.get_bytes(spec.key));
                }
            }
            Err(e) => {
                failed += 1;
                let msg = e.to_string();
                assert!(
                    msg.contains("ember-defaults.conf") || msg.contains("ember."),
                    "mutant {i}: {msg}"
                );
            }
        }
    }
    assert!(ok > 0 && failed > 0, "{ok} loaded, {failed} failed");
}
