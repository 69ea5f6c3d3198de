//! Measures the two GEMM kernels on the matrix shapes of the MNIST benchmark networks (the
//! measurement behind the default in `ember_ml::tensor::gemm`). Not a test.
//!
//! ```text
//! cargo run --release -p ember-ml --example gemm_bench
//! ```
//! Each kernel is measured on 1 and 2 threads (the `gemm` crate splits work itself through rayon;
//! for `matrixmultiply`, Ember splits the output into row or column blocks, one per thread). Each
//! figure is the best of 5 timings.

use std::time::Instant;

use ember_ml::tensor::gemm::{sgemm_with, GemmKernel};

fn main() {
    // (what, trans_a, trans_b, m, n, k)
    let shapes = [
        ("mlp dense1 forward  x.W^T", false, true, 128, 256, 784),
        ("mlp dense1 dW       dz^T.x", true, false, 256, 784, 128),
        ("lenet conv1 forward W.cols", false, false, 20, 2048, 25),
        ("lenet conv1 dW  dz.cols^T", false, true, 20, 25, 2048),
        ("lenet conv2 forward W.cols", false, false, 50, 2048, 500),
        ("lenet conv2 dW  dz.cols^T", false, true, 50, 500, 2048),
        ("lenet conv2 dcols W^T.dz", true, false, 500, 2048, 50),
        ("lenet dense1 forward", false, true, 128, 500, 800),
    ];
    println!(
        "{:<30} {:>12} {:>12} {:>12} {:>12}   GFLOP/s",
        "shape", "gemm 1t", "gemm 2t", "mmul 1t", "mmul 2t"
    );
    for (what, ta, tb, m, n, k) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.01).collect();
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((3e8 / flops) as usize).max(5);
        let mut rates = Vec::new();
        for (kernel, threads) in [
            (GemmKernel::Gemm, 1),
            (GemmKernel::Gemm, 2),
            (GemmKernel::MatrixMultiply, 1),
            (GemmKernel::MatrixMultiply, 2),
        ] {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    sgemm_with(kernel, threads, ta, tb, m, n, k, 1.0, &a, &b, 0.0, &mut c);
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            rates.push(flops * reps as f64 / best / 1e9);
        }
        println!(
            "{:<30} {:>12.1} {:>12.1} {:>12.1} {:>12.1}   [{m}x{n}x{k}]",
            what, rates[0], rates[1], rates[2], rates[3]
        );
    }
}
