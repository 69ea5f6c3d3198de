//! Tests of the configuration: keys, values, files, environment and redaction.

use super::*;

#[test]
fn defaults_and_overrides() {
    let mut c = Conf::new();
    assert_eq!(c.master().unwrap(), Master::Local(2));
    assert_eq!(c.get_usize("ember.task.maxFailures"), Some(4));
    c.apply_overrides(["ember.master=local[4]", "ember.task.maxFailures = 2"])
        .unwrap();
    assert_eq!(c.master().unwrap(), Master::Local(4));
    assert_eq!(c.get_usize("ember.task.maxFailures"), Some(2));
    assert_eq!(c.get("ember.default.parallelism"), None);
}

#[test]
fn unknown_key_names_key_and_suggests() {
    let err = Conf::new().set("ember.task.maxFailure", "3").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ember.task.maxFailure"), "{msg}");
    assert!(
        msg.contains("did you mean `ember.task.maxFailures`"),
        "{msg}"
    );
}

#[test]
fn malformed_values_name_key() {
    for (k, v) in [
        ("ember.master", "local[0]"),
        ("ember.master", "yarn"),
        ("ember.task.maxFailures", "0"),
        ("ember.task.maxFailures", "-1"),
        ("ember.memory.storage", "lots"),
        ("ember.locality.wait", "-3s"),
        ("ember.text.invalidUtf8", "ignore"),
    ] {
        match Conf::new().set(k, v) {
            Err(EngineError::InvalidConfigValue { key, value, .. }) => {
                assert_eq!(key, k);
                assert_eq!(value, v);
            }
            other => panic!("{k}={v}: expected InvalidConfigValue, got {other:?}"),
        }
    }
}

#[test]
fn file_and_env_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ember-defaults.conf");
    std::fs::write(
        &path,
        "# comment\nember.master local[3]\nember.task.maxFailures=7\n\n",
    )
    .unwrap();
    let mut c = Conf::new();
    c.load_file(&path).unwrap();
    assert_eq!(c.master().unwrap(), Master::Local(3));
    c.load_env_vars([
        ("EMBER_TASK_MAXFAILURES".to_string(), "5".to_string()),
        ("PATH".into(), "/bin".into()),
    ])
    .unwrap();
    assert_eq!(c.get_usize("ember.task.maxFailures"), Some(5));
    assert_eq!(c.master().unwrap(), Master::Local(3));

    std::fs::write(&path, "ember.master\n").unwrap();
    let err = Conf::new().load_file(&path).unwrap_err();
    assert!(
        matches!(err, EngineError::MalformedConfigLine { line: 1, .. }),
        "{err:?}"
    );
    let err = Conf::new()
        .load_file(&dir.path().join("missing.conf"))
        .unwrap_err();
    assert!(err.to_string().contains("missing.conf"));
}

#[test]
fn sizes_and_durations() {
    assert_eq!(parse_bytes("512m"), Some(512 << 20));
    assert_eq!(parse_bytes("2g"), Some(2 << 30));
    assert_eq!(parse_bytes("100"), Some(100));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
    assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
    assert_eq!(parse_duration("-1s"), None);
}

#[test]
fn extreme_durations_are_typed_errors_not_panics() {
    for v in [
        "1e30s",
        "1e30",
        "-1s",
        "-0.5m",
        "NaN",
        "inf",
        "18446744073709551615s",
    ] {
        match Conf::new().set("ember.locality.wait", v) {
            Err(EngineError::InvalidConfigValue { key, value, .. }) => {
                assert_eq!(key, "ember.locality.wait");
                assert_eq!(value, v);
            }
            other => panic!("{v}: expected InvalidConfigValue, got {other:?}"),
        }
    }
    let msg = Conf::new()
        .set("ember.locality.wait", "1e30s")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("100 years"), "{msg}");
    assert_eq!(parse_duration("1e30s"), None);
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_bytes("1t"), Some(1 << 40));
    assert_eq!(parse_bytes("99999999t"), None);
}

#[test]
fn debug_and_explicit_hide_secrets() {
    let c = Conf::new()
        .with("ember.s3.secretKey", "wJalrXUtnFEMI")
        .unwrap()
        .with("ember.s3.accessKey", "AKIDEXAMPLE")
        .unwrap()
        .with("ember.s3.endpoint", "http://user:hunter2@127.0.0.1:9000")
        .unwrap()
        .with("ember.master", "local[3]")
        .unwrap();
    let dbg = format!("{c:?} {c:#?}");
    let listed: Vec<String> = c.explicit().map(|(k, v)| format!("{k}={v}")).collect();
    let listed = listed.join(" ");
    for text in [&dbg, &listed] {
        for secret in ["wJalrXUtnFEMI", "AKIDEXAMPLE", "hunter2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("local[3]") && text.contains("http://***@127.0.0.1:9000"));
    }
    // The values themselves are intact for the storage layer.
    assert_eq!(c.get("ember.s3.secretKey"), Some("wJalrXUtnFEMI"));
}

#[test]
fn misspelt_env_vars_get_a_suggestion_and_are_ignored() {
    assert_eq!(
        env_var_suggestion("EMBER_TASK_MAXFAILURE"),
        Some("ember.task.maxFailures")
    );
    assert_eq!(env_var_suggestion("EMBER_MASTR"), Some("ember.master"));
    assert_eq!(
        env_var_suggestion("EMBER_DEFAULT_PARALELISM"),
        Some("ember.default.parallelism")
    );
    // Variables of applications and tools are far from every key: no warning.
    for name in [
        "EMBER_DEMO_DIR",
        "EMBER_ML_THREADS",
        "EMBER_ML_GEMM",
        "EMBER_TOOLS_DIR",
    ] {
        assert_eq!(env_var_suggestion(name), None, "{name}");
    }
    let mut c = Conf::new();
    c.load_env_vars([("EMBER_TASK_MAXFAILURE".to_string(), "9".to_string())])
        .unwrap();
    assert_eq!(c.get_usize("ember.task.maxFailures"), Some(4));
}

#[test]
fn conf_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ember-defaults.conf");
    std::fs::write(
        &path,
        "# comment\nember.master local[3]\nember.locality.wait 1e30s\n",
    )
    .unwrap();
    let err = Conf::new().load_file(&path).unwrap_err();
    assert!(
        matches!(&err, EngineError::InvalidConfigValue { key, .. } if key == "ember.locality.wait"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("line 3"),
        "{msg}"
    );
    std::fs::write(&path, "ember.mastr local[3]\n").unwrap();
    let msg = Conf::new().load_file(&path).unwrap_err().to_string();
    assert!(
        msg.contains("did you mean `ember.master`")
            && msg.contains(&path.display().to_string())
            && msg.contains("line 1"),
        "{msg}"
    );
    // A malformed line never echoes URL credentials.
    std::fs::write(&path, "ember.s3.endpoint:http://u:hunter2@h\n").unwrap();
    let msg = Conf::new().load_file(&path).unwrap_err().to_string();
    assert!(!msg.contains("hunter2") && msg.contains("line 1"), "{msg}");
}

#[test]
fn cluster_master_needs_hosts() {
    let c = Conf::new().with("ember.master", "cluster").unwrap();
    assert!(
        matches!(c.master(), Err(EngineError::InvalidConfigValue { key, .. }) if key == "ember.cluster.hosts")
    );
    let c = c
        .with("ember.cluster.hosts", "127.0.0.1:7000,127.0.0.1:7001")
        .unwrap()
        .with("ember.cluster.process", "1")
        .unwrap();
    assert_eq!(c.total_workers().unwrap(), 4);
}

/// A valid value of each kind, different from every default.
fn sample(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Master => "local[3]",
        ValueKind::PositiveInt => "7",
        ValueKind::NonNegativeInt => "5",
        ValueKind::Bool => "true",
        ValueKind::Bytes => "3m",
        ValueKind::Duration => "1234ms",
        ValueKind::Text => "some text",
        ValueKind::OneOf(words) => words[words.len() - 1],
    }
}

#[test]
fn every_key_reaches_the_configuration_through_its_environment_variable() {
    // What ember-submit does with `--conf k=v`: the variable of each key, and the keys' names.
    let mut keys: Vec<(&str, &str)> = KEYS.iter().map(|s| (s.key, sample(s.kind))).collect();
    keys.extend(
        ember_storage::config::DOCUMENTED_KEYS
            .iter()
            .map(|k| (*k, "http://127.0.0.1:9000")),
    );
    keys.push(("ember.s3.skip_signature", "true"));
    keys.push(("ember.gs.service_account_path", "/tmp/sa.json"));
    keys.push(("ember.hdfs.dfs.ha.namenodes.ns", "nn1,nn2"));
    for (key, value) in keys {
        let vars = vec![
            (env_var_for(key), value.to_string()),
            ("EMBER_CONF_NAMES".to_string(), key.to_string()),
        ];
        let mut conf = Conf::new();
        conf.load_env_vars(vars).unwrap();
        assert_eq!(conf.get(key), Some(value), "{key}");
        assert!(
            conf.storage_config().get(key).is_some(),
            "{key} reaches the storage configuration"
        );
    }
    // Documented storage keys need no listing.
    let mut conf = Conf::new();
    conf.load_env_vars([("EMBER_S3_ENDPOINT".to_string(), "http://h:1".to_string())])
        .unwrap();
    assert_eq!(conf.get("ember.s3.endpoint"), Some("http://h:1"));
    // A listed key that Ember does not accept is an error naming it.
    let err = Conf::new()
        .load_env_vars([("EMBER_CONF_NAMES".to_string(), "ember.nonsense".to_string())])
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("ember.nonsense"), "{err}");
}

#[test]
fn the_driver_process_is_the_local_one_or_cluster_process_0() {
    assert!(Conf::new().is_driver_process(), "local mode");
    let cluster = |process: &str| {
        Conf::new()
            .with("ember.master", "cluster")
            .unwrap()
            .with("ember.cluster.hosts", "127.0.0.1:7001,127.0.0.1:7002")
            .unwrap()
            .with("ember.cluster.process", process)
            .unwrap()
    };
    assert!(cluster("0").is_driver_process());
    assert!(!cluster("1").is_driver_process());
    let drivers = crate::run_all(
        Conf::new().with("ember.master", "local[3]").unwrap(),
        |ctx| ctx.is_driver(),
    )
    .unwrap();
    assert_eq!(drivers, vec![true, false, false]);
}

#[test]
fn an_error_debug_prints_its_message_as_main_shows_it() {
    let err = Conf::new().with("ember.master", "local[0]").unwrap_err();
    assert_eq!(format!("{err:?}"), err.to_string());
    assert!(format!("{err:?}").contains("ember.master"), "{err:?}");
    let storage =
        ember_storage::Location::resolve("gopher://x/y", &Default::default()).unwrap_err();
    assert_eq!(format!("{storage:?}"), storage.to_string());
}
