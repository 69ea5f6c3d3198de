//! A misspelt `EMBER_*` environment variable is not ignored silently: `Conf::load_env_vars` (and so
//! `Conf::from_env`) logs a warning naming it and the variable it probably meant.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ember::engine::Conf;
use tracing_subscriber::util::SubscriberInitExt;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_of(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let guard = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    f();
    drop(guard);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_misspelt_env_var_warns_with_a_suggestion() {
    let mut conf = Conf::new();
    let logs = logs_of(|| {
        conf.load_env_vars([
            ("EMBER_TASK_MAXFAILURE".to_string(), "9".to_string()),
            ("EMBER_LOCALITY_WAIT".to_string(), "1s".to_string()),
            ("EMBER_DEMO_DIR".to_string(), "/tmp/x".to_string()),
            ("EMBER_CONF_FILE".to_string(), "/tmp/none".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ])
        .unwrap();
    });
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        logs.contains("EMBER_TASK_MAXFAILURE")
            && logs.contains("did you mean EMBER_TASK_MAXFAILURES for `ember.task.maxFailures`?"),
        "{logs}"
    );
    // One warning: the known variable is applied, application and tool variables are left alone.
    assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
    assert_eq!(
        conf.get_duration("ember.locality.wait"),
        Some(std::time::Duration::from_secs(1))
    );
    assert_eq!(conf.get_usize("ember.task.maxFailures"), Some(4));
}
