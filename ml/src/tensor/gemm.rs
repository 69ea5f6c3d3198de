//! Single-precision matrix multiply on the CPU: the one GEMM entry point every layer uses.
//!
//! Two kernels are compiled in and one is picked at run time:
//! - [`GemmKernel::MatrixMultiply`], `matrixmultiply` (ndarray's own kernel; it has AVX-512
//!   micro-kernels, selected at run time), made parallel here by splitting the output into row or
//!   column blocks, one per thread;
//! - [`GemmKernel::Gemm`], the `gemm` crate (runtime-dispatched FMA kernels, parallel through
//!   rayon; on stable Rust it uses AVX2 kernels).
//!
//! The default was chosen by measurement (`cargo run --release -p ember-ml --example gemm_bench`,
//! figures in `ml/README.md`) on the target machine (2-core AMD EPYC, Zen 5, AVX-512) with the
//! shapes of the MNIST MLP and LeNet: `matrixmultiply` ran 1.4x to 1.8x faster on every shape
//! except a small output with a long inner dimension (a convolution's weight gradient, 20x25 over
//! 2048 columns), where the `gemm` crate ran about 2x faster; the default uses `gemm` for exactly
//! those shapes (`m*n <= 4096`, `k >= 1024`) when the inner dimension is a batch (weight
//! gradients, [`sgemm_over_batch`]), never in a forward pass, so that batching never changes an
//! example's output. OpenBLAS was not chosen: it needs a system library
//! (libopenblas-dev) on every machine that builds Ember, and its threads clash with ours.
//!
//! `EMBER_ML_GEMM=gemm|matrixmultiply` forces one kernel for every shape; `EMBER_ML_THREADS=N`
//! sets the number of threads a large multiply may use (default: the available parallelism).
//! Products below about a million multiply-adds always run on one thread (splitting costs more).

use std::sync::OnceLock;

/// Which GEMM implementation runs [`sgemm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// The `gemm` crate.
    Gemm,
    /// The `matrixmultiply` crate.
    MatrixMultiply,
}

/// Multiplies below this many multiply-adds run on one thread: splitting them costs more than
/// it saves (measured; see the module docs).
const PARALLEL_MIN_MACS: usize = 1 << 20;

struct Settings {
    kernel: GemmKernel,
    /// No kernel forced by the environment: pick per shape.
    auto: bool,
    threads: usize,
}

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let forced = std::env::var("EMBER_ML_GEMM")
            .ok()
            .filter(|v| !v.is_empty());
        let auto = forced.is_none();
        let kernel = match forced.as_deref() {
            Some("gemm") => GemmKernel::Gemm,
            Some("matrixmultiply") | None => GemmKernel::MatrixMultiply,
            Some(other) => {
                tracing::warn!(
                    "EMBER_ML_GEMM={other} is not gemm or matrixmultiply; using matrixmultiply"
                );
                GemmKernel::MatrixMultiply
            }
        };
        let threads = std::env::var("EMBER_ML_THREADS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Settings {
            kernel,
            auto,
            threads,
        }
    })
}

/// The kernel [`sgemm`] uses in this process.
pub fn kernel() -> GemmKernel {
    settings().kernel
}

/// The number of threads a large multiply (and the layers that split work by example) may use:
/// the pool of this worker thread (see [`use_worker_pool`]), or [`pool()`]'s.
pub fn threads() -> usize {
    if rayon::current_thread_index().is_some() {
        return rayon::current_num_threads();
    }
    WORKER_POOL
        .with(|p| p.get())
        .map_or(settings().threads, |p| p.current_num_threads())
}

/// The threads the ML core may use in this process (`EMBER_ML_THREADS`, default the available
/// parallelism), whatever pool this thread has.
pub fn process_threads() -> usize {
    settings().threads
}

/// The thread pool of the ML core: [`threads()`] threads, separate from rayon's global pool so
/// `EMBER_ML_THREADS` bounds everything the layers run in parallel (an engine running one model
/// per worker sets it to 1).
pub fn pool() -> &'static rayon::ThreadPool {
    if let Some(p) = WORKER_POOL.with(|p| p.get()) {
        return p;
    }
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(settings().threads)
            .thread_name(|i| format!("ember-ml-{i}"))
            .build()
            .expect("spawning the ML thread pool")
    })
}

thread_local! {
    static WORKER_POOL: std::cell::Cell<Option<&'static rayon::ThreadPool>> =
        const { std::cell::Cell::new(None) };
}

/// Gives the calling thread (an engine worker training its own replica) a pool of its own with
/// `threads` threads, used by [`pool()`] and [`threads()`] on this thread from now on. With one
/// shared pool, the workers of a process queue behind each other for it (a LeNet epoch on two
/// workers ran slower than on one); with a pool each, they run side by side. Pools are kept per
/// (worker, size) for the life of the process, so restarting an application reuses them.
pub fn use_worker_pool(worker: usize, threads: usize) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static POOLS: OnceLock<Mutex<HashMap<(usize, usize), &'static rayon::ThreadPool>>> =
        OnceLock::new();
    let threads = threads.max(1);
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let made = pools.get(&(worker, threads)).copied().or_else(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("ember-ml-w{worker}-{i}"))
            .build();
        match built {
            Ok(p) => {
                let p: &'static rayon::ThreadPool = Box::leak(Box::new(p));
                pools.insert((worker, threads), p);
                Some(p)
            }
            Err(e) => {
                tracing::warn!(worker, threads, error = %e, "no worker thread pool; sharing the ML pool");
                None
            }
        }
    });
    WORKER_POOL.with(|p| p.set(made));
}

/// `c = alpha * op(a) * op(b) + beta * c` for row-major matrices, where `op(a)` is `m x k` and
/// `op(b)` is `k x n`.
///
/// `a` is stored `m x k` (or `k x m` when `trans_a`), `b` is stored `k x n` (or `n x k` when
/// `trans_b`), `c` is `m x n`; all densely packed. When `beta == 0`, `c` is only written (its old
/// contents, even NaN, do not matter). `parallel` allows a second thread for large products.
///
/// The kernel is the process's ([`kernel()`]) whatever the shape, so that a forward pass gives
/// an example the same output in a batch of 1 as in a batch of 512: the default kernel,
/// `matrixmultiply`, accumulates each output value over `k` in blocks that do not depend on `m`
/// or `n`, and splitting over threads never splits `k` (checked bit for bit by
/// `ml/tests/distributed_inference.rs`; the `gemm` crate, when `EMBER_ML_GEMM` forces it, picks
/// kernels by shape and is not). Products whose inner dimension runs over a batch use
/// [`sgemm_over_batch`].
///
/// # Panics
/// If a slice is shorter than its shape needs (a programming error inside this crate; public
/// entry points check shapes first).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    parallel: bool,
) {
    let threads = if parallel { threads() } else { 1 };
    sgemm_with(
        settings().kernel,
        threads,
        trans_a,
        trans_b,
        m,
        n,
        k,
        alpha,
        a,
        b,
        beta,
        c,
    )
}

/// [`sgemm`] for a product whose inner dimension `k` runs over the examples of a batch (a
/// weight gradient: `dz^T x` of a dense layer, `dz cols^T` of a convolution). Measured exception
/// (see the module docs): a small output with a long inner dimension (e.g. 20x25 over 2048
/// columns) runs about twice as fast in the `gemm` crate, so unless `EMBER_ML_GEMM` forces a
/// kernel, those shapes (`m*n <= 4096`, `k >= 1024`) use it. Gradients sum over the batch
/// anyway, so the kernel switching with the batch size changes no per-example result.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_over_batch(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    parallel: bool,
) {
    let s = settings();
    let threads = if parallel { threads() } else { 1 };
    let kernel = if s.auto && m * n <= 4096 && k >= 1024 {
        GemmKernel::Gemm
    } else {
        s.kernel
    };
    sgemm_with(
        kernel, threads, trans_a, trans_b, m, n, k, alpha, a, b, beta, c,
    )
}

/// [`sgemm`] with an explicit kernel and thread limit (for measuring the kernels against each
/// other). Products below about a million multiply-adds always run on one thread.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_with(
    kernel: GemmKernel,
    threads: usize,
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.len() >= m * k,
        "sgemm: a has {} values, needs {}",
        a.len(),
        m * k
    );
    assert!(
        b.len() >= k * n,
        "sgemm: b has {} values, needs {}",
        b.len(),
        k * n
    );
    assert!(
        c.len() >= m * n,
        "sgemm: c has {} values, needs {}",
        c.len(),
        m * n
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for v in &mut c[..m * n] {
            *v = if beta == 0.0 { 0.0 } else { *v * beta };
        }
        return;
    }
    // Row and column strides of the stored matrices, as op() sees them.
    let (a_rs, a_cs) = if trans_a {
        (1isize, m as isize)
    } else {
        (k as isize, 1isize)
    };
    let (b_rs, b_cs) = if trans_b {
        (1isize, k as isize)
    } else {
        (n as isize, 1isize)
    };
    match kernel {
        GemmKernel::Gemm => {
            let par = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            // SAFETY: the asserts above guarantee every index the strides reach is in bounds,
            // and `c` does not alias `a` or `b` (it is borrowed mutably).
            let mut call = || unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    beta != 0.0,
                    a.as_ptr(),
                    a_cs,
                    a_rs,
                    b.as_ptr(),
                    b_cs,
                    b_rs,
                    beta,
                    alpha,
                    false,
                    false,
                    false,
                    par,
                );
            };
            if matches!(par, gemm::Parallelism::None) {
                call()
            } else {
                pool().install(call)
            }
        }
        GemmKernel::MatrixMultiply => {
            // With beta == 0 matrixmultiply never reads `c`, so stale values (even NaN) vanish.
            let parts = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
                threads
            } else {
                1
            };
            // Split the output along its longer side into `parts` blocks, one thread each
            // (columns measured at least as fast as rows for the MLP's shapes): every output value
            // is computed by one thread in the same order, so the result does not depend on the
            // thread count.
            let split_rows = m > n;
            let len = if split_rows { m } else { n };
            let chunk = len.div_ceil(parts);
            let (a_ptr, b_ptr, c_ptr) = (
                SendPtr(a.as_ptr() as *mut f32),
                SendPtr(b.as_ptr() as *mut f32),
                SendPtr(c.as_mut_ptr()),
            );
            let run = |start: usize| {
                let cnt = chunk.min(len - start);
                let (a_ptr, b_ptr, c_ptr) = (&a_ptr, &b_ptr, &c_ptr);
                // SAFETY: the asserts above bound every index the strides reach; the blocks of
                // `c` written by different calls are disjoint, and `a`/`b` are only read.
                unsafe {
                    if split_rows {
                        matrixmultiply::sgemm(
                            cnt,
                            k,
                            n,
                            alpha,
                            a_ptr.0.offset(start as isize * a_rs),
                            a_rs,
                            a_cs,
                            b_ptr.0,
                            b_rs,
                            b_cs,
                            if beta == 0.0 { 0.0 } else { beta },
                            c_ptr.0.add(start * n),
                            n as isize,
                            1,
                        );
                    } else {
                        matrixmultiply::sgemm(
                            m,
                            k,
                            cnt,
                            alpha,
                            a_ptr.0,
                            a_rs,
                            a_cs,
                            b_ptr.0.offset(start as isize * b_cs),
                            b_rs,
                            b_cs,
                            beta,
                            c_ptr.0.add(start),
                            n as isize,
                            1,
                        );
                    }
                }
            };
            if parts == 1 {
                run(0);
            } else {
                pool().scope(|s| {
                    for start in (chunk..len).step_by(chunk) {
                        let run = &run;
                        s.spawn(move |_| run(start));
                    }
                    run(0);
                });
            }
        }
    }
}

/// A raw pointer that may cross threads (blocks written through it are disjoint).
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes and shared reads inside `sgemm_with`.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    #[test]
    fn a_worker_pool_is_the_threads_own_and_reused() {
        let shared = super::pool() as *const rayon::ThreadPool;
        let (a, b, n) = std::thread::spawn(|| {
            super::use_worker_pool(7, 3);
            let a = super::pool() as *const rayon::ThreadPool as usize;
            super::use_worker_pool(7, 3);
            let b = super::pool() as *const rayon::ThreadPool as usize;
            (a, b, super::threads())
        })
        .join()
        .unwrap();
        assert_eq!(a, b, "the same (worker, size) reuses its pool");
        assert_ne!(a, shared as usize, "not the process-wide pool");
        assert_eq!(n, 3);
        // Other threads keep the process-wide pool.
        assert_eq!(super::pool() as *const rayon::ThreadPool, shared);
    }

    use super::*;

    fn naive(ta: bool, tb: bool, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn sgemm_matches_naive_for_all_transposes() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 17 % 13) as f32 - 6.0) * 0.2)
            .collect();
        for ta in [false, true] {
            for tb in [false, true] {
                let want = naive(ta, tb, m, n, k, &a, &b);
                let mut c = vec![f32::NAN; m * n];
                sgemm(ta, tb, m, n, k, 1.0, &a, &b, 0.0, &mut c, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "ta={ta} tb={tb}: {x} vs {y}");
                }
                // Accumulate: c = 2*op(a)op(b) + 0.5*c
                let mut c2 = c.clone();
                sgemm(ta, tb, m, n, k, 2.0, &a, &b, 0.5, &mut c2, false);
                for (x, y) in c2.iter().zip(&want) {
                    assert!((x - 2.5 * y).abs() < 1e-3, "accumulate ta={ta} tb={tb}");
                }
            }
        }
    }

    #[test]
    fn threaded_split_matches_one_thread() {
        // Large enough to be split (rows for the first shape, columns for the second).
        for (ta, tb, m, n, k) in [(false, true, 130, 70, 150), (true, false, 9, 1500, 90)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 17 % 13) as f32 - 6.0) * 0.1)
                .collect();
            for kernel in [GemmKernel::MatrixMultiply, GemmKernel::Gemm] {
                let mut one = vec![0f32; m * n];
                let mut two = vec![f32::NAN; m * n];
                sgemm_with(kernel, 1, ta, tb, m, n, k, 1.0, &a, &b, 0.0, &mut one);
                sgemm_with(kernel, 2, ta, tb, m, n, k, 1.0, &a, &b, 0.0, &mut two);
                assert_eq!(one, two, "{kernel:?} {m}x{n}x{k}");
                let want = naive(ta, tb, m, n, k, &a, &b);
                for (x, y) in one.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()));
                }
            }
        }
    }
}
