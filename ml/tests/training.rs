//! Training end to end on real data (scikit-learn's digits), determinism and configuration JSON.

use ember_ml::data::{CsvReader, Header, LabelColumn, Target};
use ember_ml::nn::{Activation, Loss, Network, NetworkConfig};
use ember_ml::optim::{Method, Optimizer, OptimizerConfig, Schedule};

const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sklearn/digits.csv.gz");

const EPOCHS: u64 = 15;

fn config(seed: u64) -> NetworkConfig {
    NetworkConfig::builder(&[64])
        .dense(32, Activation::Relu)
        .dropout(0.1)
        .dense(10, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(seed)
        .config()
}

/// scikit-learn's `MLPClassifier((32,))` reaches 0.906 to 0.919 on this split (seeds 0-2), and
/// logistic regression 0.912: the threshold below is that level less a small margin.
/// scikit-learn's `MLPClassifier((32,))` reaches 0.906 to 0.919 on this split (seeds 0-2) and
/// logistic regression 0.912; the threshold in the test is that level less a small margin.
///
/// Trains on the first 1500 digits and returns (test accuracy on the other 297, final params).
fn train(method: Method, seed: u64) -> (f32, Vec<f32>) {
    let mut data = CsvReader::new(LabelColumn::Last, Target::Classes(10))
        .header(Header::None)
        .read(DIGITS)
        .expect("data/sklearn/digits.csv.gz");
    data.features_mut().mapv_inplace(|v| v / 16.0);
    let (train, test) = data.split_at(1500);
    let mut net = Network::new(config(seed)).unwrap();
    let cfg = OptimizerConfig::new(
        method,
        if matches!(method, Method::Momentum { .. }) {
            0.1
        } else {
            0.01
        },
    )
    .with_schedule(Schedule::Cosine {
        total: EPOCHS * 47,
        min_lr: 0.0,
    })
    .with_weight_decay(1e-4);
    let mut opt = Optimizer::new(cfg, net.num_params()).unwrap();
    for epoch in 0..EPOCHS {
        for b in train.shuffled_batches(32, seed + epoch).unwrap() {
            net.fit_batch(
                b.features().view().into_dyn(),
                b.labels().view().into_dyn(),
                &mut opt,
            )
            .unwrap();
        }
    }
    let pred = net
        .predict_classes(test.features().view().into_dyn())
        .unwrap();
    let truth = test.label_indices();
    let correct = pred.iter().zip(&truth).filter(|(a, b)| a == b).count();
    (correct as f32 / truth.len() as f32, net.params().to_vec())
}

#[test]
fn digits_mlp_learns_with_momentum_and_adamw() {
    let (acc, _) = train(
        Method::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        1,
    );
    eprintln!("Nesterov accuracy {acc}");
    assert!(acc > 0.88, "Nesterov accuracy {acc}");
    let (acc, _) = train(Method::adamw(), 1);
    eprintln!("AdamW accuracy {acc}");
    assert!(acc > 0.88, "AdamW accuracy {acc}");
}

#[test]
fn training_is_deterministic_given_a_seed() {
    let (_, a) = train(Method::adam(), 3);
    let (_, b) = train(Method::adam(), 3);
    let (_, c) = train(Method::adam(), 4);
    assert_eq!(a, b, "same seed, same parameters");
    assert_ne!(a, c, "another seed, other parameters");
}

#[test]
fn configuration_round_trips_through_json() {
    let cfg = NetworkConfig::builder(&[1, 28, 28])
        .conv2d(6, 5, 2, Activation::Relu)
        .avg_pool(2, 2)
        .batch_norm()
        .conv2d(16, 5, 0, Activation::LeakyRelu { alpha: 0.01 })
        .max_pool(2, 2)
        .flatten()
        .dense(120, Activation::Sigmoid)
        .dropout(0.5)
        .dense(10, Activation::Softmax)
        .loss(Loss::Mse)
        .seed(9)
        .config();
    let back = NetworkConfig::from_json(&cfg.to_json()).unwrap();
    assert_eq!(back, cfg);
    let mut net = Network::new(back).unwrap();
    assert_eq!(net.output_shape(), &[10]);
    let x =
        ember_ml::tensor::Tensor::zeros(&[2, 1, 28, 28], ember_ml::tensor::Device::Cpu).unwrap();
    let y = net.predict_tensor(&x).unwrap();
    assert_eq!(y.shape(), &[2, 10]);
    assert_eq!(y.device_bytes(), 0);
    // conv1 6*25+6, bn 2*6, conv2 16*150+16, dense 400*120+120, dense 120*10+10
    assert_eq!(net.num_params(), 156 + 12 + 2416 + 48120 + 1210);
    assert!(NetworkConfig::from_json("{\"layers\": []}").is_err());
    let bad = NetworkConfig::builder(&[1, 28, 28])
        .dense(10, Activation::Relu)
        .config();
    assert!(
        Network::new(bad).is_err(),
        "dense on 3-D input needs a flatten"
    );
}

#[test]
fn flat_buffers_have_contiguous_per_layer_views() {
    let mut net = Network::new(
        NetworkConfig::builder(&[1, 8, 8])
            .conv2d(3, 3, 1, Activation::Relu)
            .batch_norm()
            .max_pool(2, 2)
            .flatten()
            .dense(4, Activation::Identity)
            .seed(2)
            .config(),
    )
    .unwrap();
    // Parameter tensors tile the flat buffer in order, without gaps; layers own contiguous ranges.
    let mut end = 0;
    for t in net
        .tensors()
        .iter()
        .filter(|t| t.kind == ember_ml::nn::TensorKind::Param)
    {
        assert_eq!(t.range.start, end, "{}", t.name);
        assert_eq!(t.range.len(), t.shape.iter().product::<usize>());
        let layer = net.layer_param_range(t.layer);
        assert!(layer.start <= t.range.start && t.range.end <= layer.end);
        end = t.range.end;
    }
    assert_eq!(end, net.num_params());
    assert_eq!(
        net.layer_params(2),
        &[] as &[f32],
        "pooling has no parameters"
    );
    assert_eq!(net.layer_params(4).len(), 4 * 48 + 4);
    // Writing through the flat buffer changes what a layer sees, and the output.
    let x = ndarray::ArrayD::from_elem(ndarray::IxDyn(&[2, 1, 8, 8]), 0.5f32);
    let before = net.predict(x.view()).unwrap();
    let mut p = net.params().to_vec();
    let r = net.layer_param_range(4);
    p[r.end - 1] += 1.0; // the last bias
    net.set_params(&p).unwrap();
    let after = net.predict(x.view()).unwrap();
    assert!((after[[0, 3]] - before[[0, 3]] - 1.0).abs() < 1e-6);
    assert_eq!(after[[0, 0]], before[[0, 0]]);
    assert!(net.set_params(&p[1..]).is_err());
    // Optimizer state uses the same ranges per slot.
    let y = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 4]), |i| f32::from(i[1] == 0));
    let mut opt =
        Optimizer::new(OptimizerConfig::new(Method::adam(), 0.01), net.num_params()).unwrap();
    net.fit_batch(x.view(), y.view(), &mut opt).unwrap();
    let g = net.layer_gradients(4).to_vec();
    let m = opt.state_view(0, r.clone());
    for (m, g) in m.iter().zip(&g) {
        assert!(
            (m - 0.1 * g).abs() <= 1e-6 * g.abs().max(1.0),
            "first Adam moment {m} is not 0.1 * gradient {g}"
        );
    }
}
