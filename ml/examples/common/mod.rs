//! Shared by the MNIST examples: command-line arguments, and the training loop (Nesterov SGD with
//! a cosine schedule, a progress bar per epoch, test accuracy after each) with the final report.

use ember_ml::data::{mnist, Split};
use ember_ml::nn::Network;
use ember_ml::optim::{Method, Optimizer, OptimizerConfig, Schedule};
use ember_ml::train::{evaluate, fit_epoch};

/// Command-line arguments shared by the MNIST examples.
pub struct Args {
    /// The folder holding the four IDX files.
    pub dir: String,
    /// Training epochs.
    pub epochs: usize,
    /// Where to save the trained model, if anywhere.
    pub save: Option<String>,
}

impl Args {
    /// `[MNIST_DIR] [--epochs N] [--save FILE]`, with the example's default epoch count.
    pub fn parse(default_epochs: usize) -> Result<Args, String> {
        let mut a = Args {
            dir: "data/mnist".into(),
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

/// Trains `net` on MNIST with batches of 128, printing each epoch's loss, speed and test
/// accuracy, then the final evaluation; saves the model when asked.
pub fn train(
    name: &str,
    args: &Args,
    mut net: Network,
    lr: f32,
    weight_decay: f32,
) -> Result<(), Box<dyn std::error::Error>> {
    let train = mnist(&args.dir, Split::Train)?;
    let test = mnist(&args.dir, Split::Test)?;
    let batch = 128;
    let steps = args.epochs as u64 * train.len().div_ceil(batch) as u64;
    let cfg = OptimizerConfig::new(
        Method::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        lr,
    )
    .with_schedule(Schedule::Cosine {
        total: steps,
        min_lr: 0.0,
    })
    .with_weight_decay(weight_decay);
    let mut opt = Optimizer::new(cfg, net.num_params())?;
    println!(
        "{name}, {} parameters, {} epochs",
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
    if let Some(path) = &args.save {
        ember_ml::model_io::save(path, &net, Some(&opt))?;
        println!("saved to {path}");
    }
    Ok(())
}
