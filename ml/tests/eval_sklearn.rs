//! Every metric of `ember_ml::eval` against scikit-learn on the same predictions: synthetic
//! predictions made deterministically here (with masks, ties, a never-predicted class) and
//! simple models' scores on real data (iris, breast cancer). Needs `python3` with scikit-learn
//! and NumPy (`.ci/setup.d/50-python-ml.sh` installs them); without them the test fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ember_ml::data::{read_sklearn_csv, MiniBatch, Normalizer};
use ember_ml::eval::{Average, Classification, Evaluation, Regression, Roc, RocMultiClass};
use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

type Metrics = BTreeMap<String, Vec<f64>>;

/// One case: the input written for Python and the metrics computed here.
struct Case {
    input: Value,
    ours: Metrics,
}

fn to_json_rows(a: &Array2<f32>) -> Value {
    json!(a.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>())
}

fn one_hot(labels: &[usize], n: usize) -> Array2<f32> {
    Array2::from_shape_fn((labels.len(), n), |(r, c)| {
        f32::from(u8::from(labels[r] == c))
    })
}

fn softmax_rows(logits: &Array2<f32>) -> Array2<f32> {
    let mut out = logits.clone();
    for mut row in out.rows_mut() {
        let max = row.fold(f32::MIN, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}

fn mask_column(rng: &mut StdRng, n: usize, keep: f64) -> Array2<f32> {
    Array2::from_shape_fn((n, 1), |_| f32::from(u8::from(rng.gen_bool(keep))))
}

fn classification_case(
    name: &str,
    labels: &[usize],
    scores: &Array2<f32>,
    num_classes: usize,
    mask: Option<&Array2<f32>>,
    top_k: &[usize],
) -> Case {
    // Labels as one-hot for the main evaluation, as indices for the top-N ones: both paths.
    let onehot = one_hot(labels, num_classes);
    let mut eval = Classification::new(num_classes).unwrap();
    eval.eval(onehot.view(), scores.view(), mask.map(|m| m.view()))
        .unwrap();
    let n = num_classes;
    let mut ours = Metrics::new();
    ours.insert("accuracy".into(), vec![eval.accuracy()]);
    ours.insert(
        "precision".into(),
        (0..n).map(|c| eval.precision(c)).collect(),
    );
    ours.insert("recall".into(), (0..n).map(|c| eval.recall(c)).collect());
    ours.insert("f1".into(), (0..n).map(|c| eval.f1(c)).collect());
    ours.insert(
        "support".into(),
        (0..n).map(|c| eval.support(c) as f64).collect(),
    );
    for (avg, name) in [
        (Average::Macro, "macro"),
        (Average::Micro, "micro"),
        (Average::Weighted, "weighted"),
    ] {
        ours.insert(format!("precision_{name}"), vec![eval.precision_avg(avg)]);
        ours.insert(format!("recall_{name}"), vec![eval.recall_avg(avg)]);
        ours.insert(format!("f1_{name}"), vec![eval.f1_avg(avg)]);
    }
    let cm = eval.confusion_matrix().to_array();
    ours.insert("confusion".into(), cm.iter().map(|&v| v as f64).collect());
    ours.insert("mcc".into(), vec![eval.matthews_correlation()]);
    for &k in top_k {
        let mut top = Classification::new(n).unwrap().with_top_n(k).unwrap();
        top.eval_indices(labels, scores.view(), mask.map(|m| m.view()))
            .unwrap();
        assert_eq!(
            top.confusion_matrix(),
            eval.confusion_matrix(),
            "{name}: index labels"
        );
        ours.insert(format!("top_{k}"), vec![top.top_n_accuracy()]);
    }
    Case {
        input: json!({
            "name": name, "kind": "classification", "num_classes": n, "labels": labels,
            "scores": to_json_rows(scores), "mask": mask.map(to_json_rows), "top_k": top_k,
        }),
        ours,
    }
}

fn roc_binary_case(
    name: &str,
    labels: &[usize],
    scores: &Array2<f32>,
    mask: Option<&Array2<f32>>,
) -> Case {
    let label_col = Array2::from_shape_fn((labels.len(), 1), |(r, _)| labels[r] as f32);
    let mut roc = Roc::new();
    roc.eval(label_col.view(), scores.view(), mask.map(|m| m.view()))
        .unwrap();
    let curve = roc.roc_curve();
    let mut ours = Metrics::new();
    ours.insert("auc".into(), vec![roc.auc()]);
    ours.insert("auprc".into(), vec![roc.auprc()]);
    ours.insert("curve_fpr".into(), curve.iter().map(|p| p.fpr).collect());
    ours.insert("curve_tpr".into(), curve.iter().map(|p| p.tpr).collect());
    ours.insert(
        "curve_threshold".into(),
        curve[1..].iter().map(|p| p.threshold).collect(),
    );
    Case {
        input: json!({
            "name": name, "kind": "roc_binary", "labels": labels,
            "scores": scores.column(0).to_vec(), "mask": mask.map(to_json_rows),
        }),
        ours,
    }
}

fn roc_multiclass_case(
    name: &str,
    labels: &[usize],
    scores: &Array2<f32>,
    n: usize,
    mask: Option<&Array2<f32>>,
) -> Case {
    let mut roc = RocMultiClass::new(n).unwrap();
    roc.eval(
        one_hot(labels, n).view(),
        scores.view(),
        mask.map(|m| m.view()),
    )
    .unwrap();
    let micro = roc.micro();
    let mut ours = Metrics::new();
    ours.insert("auc".into(), (0..n).map(|c| roc.auc(c)).collect());
    ours.insert("auprc".into(), (0..n).map(|c| roc.auprc(c)).collect());
    ours.insert("auc_macro".into(), vec![roc.average_auc()]);
    ours.insert("auprc_macro".into(), vec![roc.average_auprc()]);
    ours.insert("auc_micro".into(), vec![micro.auc()]);
    ours.insert("auprc_micro".into(), vec![micro.auprc()]);
    Case {
        input: json!({
            "name": name, "kind": "roc_multiclass", "num_classes": n, "labels": labels,
            "scores": to_json_rows(scores), "mask": mask.map(to_json_rows),
        }),
        ours,
    }
}

fn regression_case(
    name: &str,
    labels: &Array2<f32>,
    predictions: &Array2<f32>,
    mask: Option<&Array2<f32>>,
) -> Case {
    let cols = labels.ncols();
    let mut eval = Regression::new(cols).unwrap();
    // In two minibatches, to go through accumulation.
    let half = labels.nrows() / 2;
    for (start, end) in [(0, half), (half, labels.nrows())] {
        let cut = |a: &Array2<f32>| a.slice(ndarray::s![start..end, ..]).to_owned();
        let m = mask.map(cut);
        eval.eval(
            cut(labels).view(),
            cut(predictions).view(),
            m.as_ref().map(|m| m.view()),
        )
        .unwrap();
    }
    let mut ours = Metrics::new();
    ours.insert("mse".into(), (0..cols).map(|c| eval.mse(c)).collect());
    ours.insert("mae".into(), (0..cols).map(|c| eval.mae(c)).collect());
    ours.insert("rmse".into(), (0..cols).map(|c| eval.rmse(c)).collect());
    ours.insert("r2".into(), (0..cols).map(|c| eval.r2(c)).collect());
    ours.insert(
        "pearson".into(),
        (0..cols).map(|c| eval.pearson(c)).collect(),
    );
    ours.insert("mse_avg".into(), vec![eval.average_mse()]);
    ours.insert("mae_avg".into(), vec![eval.average_mae()]);
    ours.insert("rmse_avg".into(), vec![eval.average_rmse()]);
    ours.insert("r2_avg".into(), vec![eval.average_r2()]);
    Case {
        input: json!({
            "name": name, "kind": "regression", "labels": to_json_rows(labels),
            "predictions": to_json_rows(predictions), "mask": mask.map(to_json_rows),
        }),
        ours,
    }
}

/// Synthetic predictions: informative logits with noise, class `n - 1` never predicted.
fn synthetic_cases(cases: &mut Vec<Case>) {
    let mut rng = StdRng::seed_from_u64(7);
    let noise = Normal::new(0.0f32, 1.0).unwrap();
    let (rows, n) = (1500, 5);
    let labels: Vec<usize> = (0..rows).map(|_| rng.gen_range(0..n)).collect();
    let logits = Array2::from_shape_fn((rows, n), |(r, c)| {
        let signal = if labels[r] == c { 1.2 } else { 0.0 };
        let never = if c == n - 1 { -50.0 } else { 0.0 };
        signal + never + noise.sample(&mut rng)
    });
    let probs = softmax_rows(&logits);
    let mask = mask_column(&mut rng, rows, 0.9);
    cases.push(classification_case(
        "synthetic_5class_masked",
        &labels,
        &probs,
        n,
        Some(&mask),
        &[2, 3],
    ));
    cases.push(classification_case(
        "synthetic_5class",
        &labels,
        &probs,
        n,
        None,
        &[1, 4],
    ));

    // Binary with a single probability column, thresholded at 0.5.
    let bin_labels: Vec<usize> = (0..rows).map(|_| usize::from(rng.gen_bool(0.3))).collect();
    let bin_scores = Array2::from_shape_fn((rows, 1), |(r, _)| {
        let z = 1.5 * bin_labels[r] as f32 - 0.75 + noise.sample(&mut rng);
        1.0 / (1.0 + (-z).exp())
    });
    cases.push(classification_case(
        "binary_single_column",
        &bin_labels,
        &bin_scores,
        2,
        None,
        &[],
    ));
    // The same scores rounded to 0.05 steps: many ties for ROC and average precision.
    let tied = bin_scores.mapv(|s| (s * 20.0).round() / 20.0);
    let bin_mask = mask_column(&mut rng, rows, 0.8);
    cases.push(roc_binary_case(
        "roc_binary_ties_masked",
        &bin_labels,
        &tied,
        Some(&bin_mask),
    ));
    cases.push(roc_binary_case(
        "roc_binary_continuous",
        &bin_labels,
        &bin_scores,
        None,
    ));

    let tied_probs = probs.mapv(|s| (s * 10.0).round() / 10.0);
    cases.push(roc_multiclass_case(
        "roc_5class_ties_masked",
        &labels,
        &tied_probs,
        n,
        Some(&mask),
    ));
    cases.push(roc_multiclass_case(
        "roc_5class_continuous",
        &labels,
        &probs,
        n,
        None,
    ));

    // Regression: three columns of very different scales, per-value mask.
    let reg_labels = Array2::from_shape_fn((400, 3), |(_, c)| match c {
        0 => noise.sample(&mut rng),
        1 => 50.0 + 10.0 * noise.sample(&mut rng),
        _ => 1000.0 + 0.5 * noise.sample(&mut rng),
    });
    let reg_preds = Array2::from_shape_fn((400, 3), |(r, c)| {
        reg_labels[[r, c]] * 0.9 + [0.3, 5.0, 100.0][c] + 0.4 * noise.sample(&mut rng)
    });
    let value_mask = Array2::from_shape_fn((400, 3), |_| f32::from(u8::from(rng.gen_bool(0.85))));
    cases.push(regression_case(
        "regression_3col_masked",
        &reg_labels,
        &reg_preds,
        Some(&value_mask),
    ));
    cases.push(regression_case(
        "regression_3col",
        &reg_labels,
        &reg_preds,
        None,
    ));
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn")
}

/// Squared distances of every row to every class centroid of the training rows.
fn centroid_distances(features: &Array2<f32>, train: &MiniBatch, n: usize) -> Array2<f32> {
    let classes = train.label_indices();
    let mut centroids = Array2::<f32>::zeros((n, features.ncols()));
    let mut counts = vec![0f32; n];
    for (row, &c) in train.features().rows().into_iter().zip(&classes) {
        let mut centroid = centroids.row_mut(c);
        centroid += &row;
        counts[c] += 1.0;
    }
    for (mut centroid, count) in centroids.rows_mut().into_iter().zip(counts) {
        centroid /= count;
    }
    Array2::from_shape_fn((features.nrows(), n), |(r, c)| {
        features
            .row(r)
            .iter()
            .zip(centroids.row(c))
            .map(|(a, b)| (a - b) * (a - b))
            .sum()
    })
}

/// Nearest-centroid models on standardized iris and breast-cancer data, scored on the rows not
/// used for fitting; and least-squares fits on iris for regression.
fn real_data_cases(cases: &mut Vec<Case>) {
    let (iris, _) = read_sklearn_csv(data_dir().join("iris.csv")).unwrap();
    let even: Vec<usize> = (0..iris.len()).step_by(2).collect();
    let odd: Vec<usize> = (1..iris.len()).step_by(2).collect();
    let mut train = iris.select(&even).unwrap();
    let mut test = iris.select(&odd).unwrap();
    let norm = Normalizer::standardize().fit(&train).unwrap();
    norm.transform(&mut train).unwrap();
    norm.transform(&mut test).unwrap();
    let d = centroid_distances(test.features(), &train, 3);
    let scores = softmax_rows(&d.mapv(|v| -v));
    let labels = test.label_indices();
    cases.push(classification_case(
        "iris_nearest_centroid",
        &labels,
        &scores,
        3,
        None,
        &[2],
    ));
    cases.push(roc_multiclass_case(
        "iris_nearest_centroid_roc",
        &labels,
        &scores,
        3,
        None,
    ));

    let (cancer, _) = read_sklearn_csv(data_dir().join("breast_cancer.csv")).unwrap();
    let train_idx: Vec<usize> = (0..cancer.len()).filter(|i| i % 3 != 0).collect();
    let test_idx: Vec<usize> = (0..cancer.len()).filter(|i| i % 3 == 0).collect();
    let mut train = cancer.select(&train_idx).unwrap();
    let mut test = cancer.select(&test_idx).unwrap();
    let norm = Normalizer::standardize().fit(&train).unwrap();
    norm.transform(&mut train).unwrap();
    norm.transform(&mut test).unwrap();
    let d = centroid_distances(test.features(), &train, 2);
    // Positive class 1 (benign): closer to its centroid than to the malignant one.
    let score = Array2::from_shape_fn((test.len(), 1), |(r, _)| d[[r, 0]] - d[[r, 1]]);
    let labels = test.label_indices();
    cases.push(roc_binary_case(
        "breast_cancer_centroid_roc",
        &labels,
        &score,
        None,
    ));
    let two_col = d.mapv(|v| -v);
    cases.push(classification_case(
        "breast_cancer_centroid",
        &labels,
        &two_col,
        2,
        None,
        &[],
    ));

    // Regression on iris: petal width from petal length, sepal length from sepal width, by
    // least squares on all rows.
    let x = iris.features();
    let fit = |xi: usize, yi: usize| {
        let (xs, ys) = (x.column(xi).mapv(f64::from), x.column(yi).mapv(f64::from));
        let (mx, my) = (xs.mean().unwrap(), ys.mean().unwrap());
        let slope = ((&xs - mx) * (&ys - my)).sum() / (&xs - mx).mapv(|v| v * v).sum();
        xs.mapv(|v| (my + slope * (v - mx)) as f32)
    };
    let labels = ndarray::stack(Axis(1), &[x.column(3), x.column(0)]).unwrap();
    let preds = ndarray::stack(Axis(1), &[fit(2, 3).view(), fit(1, 0).view()]).unwrap();
    cases.push(regression_case("iris_least_squares", &labels, &preds, None));
}

fn run_sklearn(cases: &[Case]) -> BTreeMap<String, Metrics> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    let inputs: Vec<&Value> = cases.iter().map(|c| &c.input).collect();
    std::fs::write(&input, serde_json::to_vec(&inputs).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval_sklearn_reference.py");
    let hint = "scikit-learn and NumPy are needed for this reference test: run \
                `bash .ci/setup.d/50-python-ml.sh` (it pip-installs them)";
    let output = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {hint}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "python3 cannot import scikit-learn ({}); {hint}",
            stderr.trim()
        ),
        _ => panic!("the reference script failed ({}): {stderr}", output.status),
    }
    serde_json::from_slice(&output.stdout).expect("reference script output is JSON")
}

#[test]
fn every_metric_matches_scikit_learn() {
    let mut cases = Vec::new();
    synthetic_cases(&mut cases);
    real_data_cases(&mut cases);
    let reference = run_sklearn(&cases);
    let mut compared = 0;
    for case in &cases {
        let name = case.input["name"].as_str().unwrap();
        let theirs = &reference[name];
        assert_eq!(
            case.ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}: metric names"
        );
        for (metric, ours) in &case.ours {
            let expected = &theirs[metric];
            assert_eq!(ours.len(), expected.len(), "{name}/{metric}: lengths");
            for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
                assert!(a.is_finite(), "{name}/{metric}[{i}] is {a}");
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{name}/{metric}[{i}]: ember {a} vs scikit-learn {b}"
                );
                compared += 1;
            }
        }
    }
    // The never-predicted class really exercised zero division, and ties really occurred.
    let synth = &cases[0].ours;
    assert_eq!(synth["precision"][4], 0.0);
    assert!(synth["support"][4] > 0.0);
    assert!(cases.iter().any(
        |c| c.input["name"] == "roc_binary_ties_masked" && c.ours["curve_threshold"].len() < 30
    ));
    assert!(compared > 300, "only {compared} values compared");
    eprintln!("{compared} metric values match scikit-learn within 1e-6");
}
