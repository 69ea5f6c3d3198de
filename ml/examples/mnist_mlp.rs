//! MNIST with a 784-256-10 multilayer perceptron (ReLU, softmax cross-entropy, Nesterov SGD).
//!
//! ```text
//! cargo run --release -p ember-ml --example mnist_mlp -- [MNIST_DIR] [--epochs N] [--save FILE]
//! ```
//! `MNIST_DIR` holds the four original IDX files (`train-images-idx3-ubyte.gz`, ...); it defaults
//! to `../shared/data/mnist`, the development data folder relative to the repository root (run
//! from there). Shows a progress bar with the running loss and prints a final evaluation.

use ember_ml::data::{mnist, Split};
use ember_ml::nn::{Activation, Loss, NetworkConfig};
use ember_ml::optim::{Method, Optimizer, OptimizerConfig, Schedule};
use ember_ml::train::{evaluate, fit_epoch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(20)?;
    let train = mnist(&args.dir, Split::Train)?;
    let test = mnist(&args.dir, Split::Test)?;
    let mut net = NetworkConfig::builder(&[784])
        .dense(256, Activation::Relu)
        .dense(10, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(42)
        .build()?;
    let batch = 128;
    let steps = args.epochs as u64 * train.len().div_ceil(batch) as u64;
    let cfg = OptimizerConfig::new(
        Method::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        0.05,
    )
    .with_schedule(Schedule::Cosine {
        total: steps,
        min_lr: 0.0,
    })
    .with_weight_decay(1e-4);
    let mut opt = Optimizer::new(cfg, net.num_params())?;
    println!(
        "MLP 784-256-10, {} parameters, {} epochs",
        net.num_params(),
        args.epochs
    );
    for epoch in 0..args.epochs {
        let label = format!("epoch {}/{}", epoch + 1, args.epochs);
        let s = fit_epoch(
            &mut net,
            &mut opt,
            &train,
            batch,
            1000 + epoch as u64,
            &label,
        )?;
        let acc = evaluate(&mut net, &test, 1000)?.accuracy();
        println!(
            "epoch {:>2}: loss {:.4}, {:.0} samples/s, test accuracy {:.4}",
            epoch + 1,
            s.mean_loss,
            s.examples as f64 / s.seconds,
            acc
        );
    }
    let eval = evaluate(&mut net, &test, 1000)?;
    println!("\nFinal evaluation on the 10,000 test images:\n{eval}");
    println!("test accuracy: {:.4}", eval.accuracy());
    if let Some(path) = args.save {
        ember_ml::model_io::save(&path, &net, Some(&opt))?;
        println!("saved to {path}");
    }
    Ok(())
}

/// Command-line arguments shared by the MNIST examples.
struct Args {
    dir: String,
    epochs: usize,
    save: Option<String>,
}

impl Args {
    fn parse(default_epochs: usize) -> Result<Args, String> {
        let mut a = Args {
            dir: "../shared/data/mnist".into(),
            epochs: default_epochs,
            save: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--epochs" => {
                    a.epochs = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--epochs needs a number")?
                }
                "--save" => a.save = Some(it.next().ok_or("--save needs a path")?),
                "-h" | "--help" => {
                    return Err("usage: [MNIST_DIR] [--epochs N] [--save FILE]".into())
                }
                _ => a.dir = arg,
            }
        }
        Ok(a)
    }
}
