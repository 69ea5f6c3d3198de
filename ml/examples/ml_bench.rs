//! Training throughput of the MNIST benchmark networks, for `benches/ml_bench.sh` (which runs
//! PyTorch on the same work beside it). Not a test: figures depend on the machine.
//!
//! ```text
//! cargo run --release -p ember-ml --example ml_bench -- [MNIST_DIR] [--model mlp|lenet|all]
//!     [--epochs N] [--batches N]
//! ```
//! Each model trains `--epochs` full epochs (default 1) over the 60,000 training images, batch 128,
//! SGD with momentum 0.9 (lr 0.01), timing only the training loop (data already in memory, one
//! shuffle per epoch included). `--batches` stops early (for profiling). Prints one JSON object per
//! model: samples/s, seconds per epoch, the analytic FLOPs of an epoch and GFLOP/s.

use std::time::Instant;

use ember_ml::data::{mnist, Split};
use ember_ml::nn::{Activation, Loss, Network, NetworkConfig};
use ember_ml::optim::{Method, Optimizer, OptimizerConfig};
use ember_ml::train::network_input;

/// Multiply-adds of a forward pass of one example, per layer kind, and whether the first layer
/// needs no input gradient (never computed for the input).
fn flops_per_example(model: &str) -> f64 {
    match model {
        // forward 2*(784*256 + 256*10); backward: weight gradients (same), input gradient of the
        // second layer only (2*256*10).
        "mlp" => {
            let fwd = 2.0 * (784.0 * 256.0 + 256.0 * 10.0);
            2.0 * fwd + 2.0 * 256.0 * 10.0
        }
        // conv1 20x(1*5*5) over 24x24, conv2 50x(20*5*5) over 8x8, dense 800x500, 500x10.
        "lenet" => {
            let conv1 = 2.0 * 20.0 * 25.0 * 576.0;
            let conv2 = 2.0 * 50.0 * 500.0 * 64.0;
            let d1 = 2.0 * 800.0 * 500.0;
            let d2 = 2.0 * 500.0 * 10.0;
            let fwd = conv1 + conv2 + d1 + d2;
            // backward: weight gradients of all, input gradients of all but conv1.
            fwd + fwd + (conv2 + d1 + d2)
        }
        _ => unreachable!(),
    }
}

fn network(model: &str) -> ember_ml::Result<Network> {
    let b = match model {
        "mlp" => NetworkConfig::builder(&[784]).dense(256, Activation::Relu),
        _ => NetworkConfig::builder(&[1, 28, 28])
            .conv2d(20, 5, 0, Activation::Relu)
            .max_pool(2, 2)
            .conv2d(50, 5, 0, Activation::Relu)
            .max_pool(2, 2)
            .flatten()
            .dense(500, Activation::Relu),
    };
    b.dense(10, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(1)
        .build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = "data/mnist".to_string();
    let (mut model, mut epochs, mut max_batches) = ("all".to_string(), 1usize, usize::MAX);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--model" => model = it.next().ok_or("--model needs mlp, lenet or all")?,
            "--epochs" => epochs = it.next().and_then(|v| v.parse().ok()).ok_or("--epochs N")?,
            "--batches" => {
                max_batches = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--batches N")?
            }
            _ => dir = a,
        }
    }
    let train = mnist(&dir, Split::Train)?;
    let models: Vec<&str> = match model.as_str() {
        "all" => vec!["mlp", "lenet"],
        "mlp" => vec!["mlp"],
        "lenet" => vec!["lenet"],
        other => return Err(format!("unknown model {other}").into()),
    };
    for m in models {
        let mut net = network(m)?;
        let cfg = OptimizerConfig::new(
            Method::Momentum {
                momentum: 0.9,
                nesterov: false,
            },
            0.01,
        );
        let mut opt = Optimizer::new(cfg, net.num_params())?;
        let mut best = f64::INFINITY;
        let (mut examples, mut last_loss) = (0usize, 0f32);
        for epoch in 0..epochs {
            let start = Instant::now();
            examples = 0;
            for b in train.shuffled_batches(128, epoch as u64)?.take(max_batches) {
                last_loss = net.fit_batch(
                    network_input(&net, &b)?,
                    b.labels().view().into_dyn(),
                    &mut opt,
                )?;
                examples += b.len();
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        let flops = flops_per_example(m) * examples as f64;
        println!(
            "{}",
            serde_json::json!({
                "framework": "ember",
                "model": m,
                "threads": ember_ml::tensor::gemm::threads(),
                "gemm": format!("{:?}", ember_ml::tensor::gemm::kernel()),
                "examples": examples,
                "seconds": best,
                "samples_per_s": examples as f64 / best,
                "gflop_per_epoch": flops / 1e9,
                "gflops": flops / best / 1e9,
                "final_loss": last_loss,
            })
        );
    }
    Ok(())
}
