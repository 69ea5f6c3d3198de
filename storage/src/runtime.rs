//! The storage layer's shared tokio runtime, so that plain engine threads can call blocking
//! functions while `object_store` does its I/O asynchronously.

use std::future::Future;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The shared runtime (two I/O worker threads, created on first use).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        install_crypto_provider();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ember-storage-io")
            .enable_all()
            .build()
            .expect("cannot start the storage I/O runtime")
    })
}

/// Installs rustls' ring provider as the process default (TLS for https endpoints). Idempotent;
/// keeps whatever provider the application installed first.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs `fut` to completion from synchronous code.
///
/// Engine worker threads are plain threads, so this is a `block_on` on the shared runtime. Called
/// from inside some other tokio runtime (where `block_on` would panic), the future runs on a scoped
/// helper thread instead.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| runtime().block_on(fut))
                .join()
                .expect("storage helper thread panicked")
        })
    } else {
        runtime().block_on(fut)
    }
}
