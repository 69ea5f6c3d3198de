//! Evaluations merged across partitions equal one evaluation of everything; JSON round trips;
//! bad input is a typed error that leaves the evaluation unchanged; summaries are readable.

use ember_ml::data::MiniBatch;
use ember_ml::eval::{Classification, EvalError, Evaluation, Regression, Roc, RocMultiClass};
use ndarray::{array, s, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 1000;
const CLASSES: usize = 4;

/// Deterministic labels (one-hot), scores with ties, regression targets and predictions.
fn data() -> (Array2<f32>, Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(11);
    let classes: Vec<usize> = (0..ROWS).map(|_| rng.gen_range(0..CLASSES)).collect();
    let labels = Array2::from_shape_fn((ROWS, CLASSES), |(r, c)| {
        f32::from(u8::from(classes[r] == c))
    });
    let scores = Array2::from_shape_fn((ROWS, CLASSES), |(r, c)| {
        let v: f32 = rng.gen::<f32>() + if classes[r] == c { 0.4 } else { 0.0 };
        (v * 16.0).round() / 16.0
    });
    let targets = Array2::from_shape_fn((ROWS, 2), |(r, c)| {
        (r as f32 * 0.01).sin() * 3.0 + c as f32 * 100.0
    });
    let predictions = targets.mapv(|v| v + rng.gen_range(-0.5..0.5));
    (labels, scores, targets, predictions)
}

/// Unequal partitions, each evaluated in minibatches of 64, merged as a tree and through JSON.
fn merged<E: Evaluation + PartialEq + std::fmt::Debug>(
    fresh: impl Fn() -> E,
    labels: &Array2<f32>,
    predictions: &Array2<f32>,
) -> E {
    let bounds = [0, 1, 130, 555, 556, 1000];
    let mut parts: Vec<E> = bounds
        .windows(2)
        .map(|w| {
            let mut e = fresh();
            let mut start = w[0];
            while start < w[1] {
                let end = (start + 64).min(w[1]);
                e.eval(
                    labels.slice(s![start..end, ..]),
                    predictions.slice(s![start..end, ..]),
                    None,
                )
                .unwrap();
                start = end;
            }
            // Through JSON, as partition results travel between workers.
            let back = E::from_json(&e.to_json().unwrap()).unwrap();
            assert_eq!(back, e);
            back
        })
        .collect();
    let right = parts.split_off(2);
    let mut left = parts.remove(0);
    left.merge(&parts[0]).unwrap();
    let mut right_total = right[0].clone();
    for p in &right[1..] {
        right_total.merge(p).unwrap();
    }
    left.merge(&right_total).unwrap();
    left
}

fn whole<E: Evaluation>(mut e: E, labels: &Array2<f32>, predictions: &Array2<f32>) -> E {
    e.eval(labels.view(), predictions.view(), None).unwrap();
    e
}

#[test]
fn merged_partitions_equal_one_pass() {
    let (labels, scores, targets, predictions) = data();
    let new_class = || Classification::new(CLASSES).unwrap().with_top_n(2).unwrap();
    let one = whole(new_class(), &labels, &scores);
    assert_eq!(merged(new_class, &labels, &scores), one);
    assert_eq!(one.count(), ROWS as u64);

    let new_multi = || RocMultiClass::new(CLASSES).unwrap();
    let one = whole(new_multi(), &labels, &scores);
    let m = merged(new_multi, &labels, &scores);
    assert_eq!(m, one);
    assert_eq!(m.average_auc().to_bits(), one.average_auc().to_bits());

    let binary_labels = labels.slice(s![.., 0..1]).to_owned();
    let binary_scores = scores.slice(s![.., 0..1]).to_owned();
    let one = whole(Roc::new(), &binary_labels, &binary_scores);
    assert_eq!(merged(Roc::new, &binary_labels, &binary_scores), one);
    // The one-vs-all evaluation of class 0 is the binary evaluation of column 0.
    assert_eq!(m.roc(0), &one);

    // Regression sums are floating point: merged equals one pass up to rounding.
    let new_reg = || Regression::new(2).unwrap();
    let one = whole(new_reg(), &targets, &predictions);
    let m = merged(new_reg, &targets, &predictions);
    for c in 0..2 {
        assert_eq!(m.count(c), one.count(c));
        for (a, b) in [
            (m.mse(c), one.mse(c)),
            (m.mae(c), one.mae(c)),
            (m.r2(c), one.r2(c)),
            (m.pearson(c), one.pearson(c)),
        ] {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "column {c}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn json_round_trips_keep_everything() {
    let (labels, scores, targets, predictions) = data();
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let class = whole(
        Classification::new(CLASSES)
            .unwrap()
            .with_top_n(3)
            .unwrap()
            .with_class_names(names.clone())
            .unwrap(),
        &labels,
        &scores,
    );
    let back = Classification::from_json(&class.to_json().unwrap()).unwrap();
    assert_eq!(back, class);
    assert_eq!(back.stats(), class.stats());
    let roc = whole(
        RocMultiClass::new(CLASSES)
            .unwrap()
            .with_class_names(names)
            .unwrap(),
        &labels,
        &scores,
    );
    let back = RocMultiClass::from_json(&roc.to_json().unwrap()).unwrap();
    assert_eq!(back, roc);
    assert_eq!(back.roc_curve_len_sum(), roc.roc_curve_len_sum());
    let reg = whole(Regression::new(2).unwrap(), &targets, &predictions);
    let back = Regression::from_json(&reg.to_json().unwrap()).unwrap();
    assert_eq!(back, reg);
    // Negative zero and extreme scores survive too.
    let mut roc = Roc::new();
    roc.eval_scores(
        &[-0.0, 0.0, f32::MIN_POSITIVE, f32::MIN, f32::MAX],
        &[true, false, true, false, true],
    )
    .unwrap();
    assert_eq!(roc.distinct_scores(), 4);
    assert_eq!(Roc::from_json(&roc.to_json().unwrap()).unwrap(), roc);
    assert!(matches!(
        Roc::from_json("{\"scores\": 3}"),
        Err(EvalError::Json(_))
    ));
}

trait CurveLen {
    fn roc_curve_len_sum(&self) -> usize;
}

impl CurveLen for RocMultiClass {
    fn roc_curve_len_sum(&self) -> usize {
        (0..self.num_classes())
            .map(|c| self.roc(c).roc_curve().len())
            .sum()
    }
}

#[test]
fn roc_areas_follow_their_definitions() {
    // Pairwise definition of AUC (ties one half) computed directly, against the counts.
    let (labels, scores, _, _) = data();
    let pos: Vec<f32> = (0..ROWS)
        .filter(|&r| labels[[r, 2]] == 1.0)
        .map(|r| scores[[r, 2]])
        .collect();
    let neg: Vec<f32> = (0..ROWS)
        .filter(|&r| labels[[r, 2]] == 0.0)
        .map(|r| scores[[r, 2]])
        .collect();
    let mut pairs = 0.0;
    for p in &pos {
        for n in &neg {
            pairs += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    let expected = pairs / (pos.len() * neg.len()) as f64;
    let roc = whole(RocMultiClass::new(CLASSES).unwrap(), &labels, &scores);
    assert!(
        (roc.auc(2) - expected).abs() < 1e-12,
        "{} vs {expected}",
        roc.auc(2)
    );
    // Perfect, reversed and all-tied rankings.
    let mut perfect = Roc::new();
    perfect
        .eval_scores(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false])
        .unwrap();
    assert_eq!((perfect.auc(), perfect.auprc()), (1.0, 1.0));
    let mut reversed = Roc::new();
    reversed
        .eval_scores(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false])
        .unwrap();
    assert_eq!(reversed.auc(), 0.0);
    let mut tied = Roc::new();
    tied.eval_scores(&[0.5; 4], &[true, false, true, false])
        .unwrap();
    assert_eq!((tied.auc(), tied.auprc()), (0.5, 0.5));
    assert!(Roc::new().auc().is_nan());
    let curve = perfect.roc_curve();
    assert_eq!((curve[0].fpr, curve[0].tpr), (0.0, 0.0));
    assert_eq!((curve[4].fpr, curve[4].tpr), (1.0, 1.0));
    assert_eq!(perfect.pr_curve().len(), 4);
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let mut eval = Classification::new(3).unwrap();
    let good_labels = array![[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    let preds = array![[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]];
    eval.eval(good_labels.view(), preds.view(), None).unwrap();
    let before = eval.clone();
    type Case = (Array2<f32>, Array2<f32>, Option<Array2<f32>>);
    let cases: Vec<Case> = vec![
        (array![[1.0, 0.0, 0.0]], preds.clone(), None), // row counts differ
        (good_labels.clone(), array![[0.5, 0.5], [0.5, 0.5]], None), // too few columns
        (
            array![[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            preds.clone(),
            None,
        ), // empty one-hot row
        (array![[0.0], [3.0]], preds.clone(), None),    // class index 3 of 3
        (array![[0.0], [1.5]], preds.clone(), None),    // not an integer
        (
            good_labels.clone(),
            array![[0.7, f32::NAN, 0.1], [0.1, 0.1, 0.8]],
            None,
        ),
        (
            good_labels.clone(),
            preds.clone(),
            Some(array![[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),
        ),
        (
            good_labels.clone(),
            preds.clone(),
            Some(array![[1.0], [1.0], [0.0]]),
        ),
    ];
    for (i, (labels, predictions, mask)) in cases.iter().enumerate() {
        let err = eval.eval(
            labels.view(),
            predictions.view(),
            mask.as_ref().map(|m| m.view()),
        );
        assert!(err.is_err(), "case {i} accepted");
        assert_eq!(eval, before, "case {i} changed the evaluation");
    }
    assert!(matches!(
        eval.eval(
            good_labels.view(),
            array![[0.7, f32::NAN, 0.1], [0.1, 0.1, 0.8]].view(),
            None
        ),
        Err(EvalError::NonFinite {
            row: 0,
            column: 1,
            ..
        })
    ));
    assert!(matches!(
        eval.eval(array![[0.0], [3.0]].view(), preds.view(), None),
        Err(EvalError::Label { row: 1, .. })
    ));
    // Settings that cannot work, and merges of differently set up evaluations.
    assert!(matches!(Classification::new(1), Err(EvalError::Config(_))));
    assert!(Classification::new(3).unwrap().with_top_n(4).is_err());
    assert!(Classification::new(3)
        .unwrap()
        .with_threshold(f32::NAN)
        .is_err());
    assert!(Regression::new(0).is_err());
    assert!(matches!(
        eval.merge(&Classification::new(4).unwrap()),
        Err(EvalError::Incompatible(_))
    ));
    assert!(eval
        .merge(&Classification::new(3).unwrap().with_top_n(2).unwrap())
        .is_err());
    assert!(RocMultiClass::new(3)
        .unwrap()
        .merge(&RocMultiClass::new(2).unwrap())
        .is_err());
    assert!(Regression::new(2)
        .unwrap()
        .merge(&Regression::new(1).unwrap())
        .is_err());
    let mut reg = Regression::new(1).unwrap();
    assert!(matches!(
        reg.eval(
            array![[1.0], [f32::INFINITY]].view(),
            array![[1.0], [2.0]].view(),
            None
        ),
        Err(EvalError::NonFinite {
            what: "label",
            row: 1,
            ..
        })
    ));
    assert_eq!(reg.count(0), 0);
    assert!(reg.mse(0).is_nan());
    let mut roc = Roc::new();
    assert!(roc
        .eval(
            array![[1.0], [2.0]].view(),
            array![[0.3], [0.4]].view(),
            None
        )
        .is_err());
    assert!(roc
        .eval(array![[1.0]].view(), array![[0.3, 0.3, 0.4]].view(), None)
        .is_err());
    assert_eq!(roc.positives() + roc.negatives(), 0);
}

#[test]
fn masks_leave_out_examples_and_values() {
    let labels = array![[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]];
    let preds = array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]];
    let batch = MiniBatch::new(array![[0.0], [1.0], [2.0], [3.0]], labels.clone())
        .unwrap()
        .with_labels_mask(array![[1.0], [1.0], [0.0], [0.0]])
        .unwrap();
    let mut masked = Classification::new(2).unwrap();
    masked.eval_batch(&batch, preds.view()).unwrap();
    let mut first_two = Classification::new(2).unwrap();
    first_two
        .eval(labels.slice(s![0..2, ..]), preds.slice(s![0..2, ..]), None)
        .unwrap();
    assert_eq!(masked, first_two);
    assert_eq!(masked.accuracy(), 1.0);

    // Per-value regression mask: masked values count nowhere.
    let y = array![[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]];
    let p = array![[1.5, 99.0], [2.0, 20.0], [1000.0, 31.0]];
    let mut reg = Regression::new(2).unwrap();
    reg.eval(
        y.view(),
        p.view(),
        Some(array![[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]].view()),
    )
    .unwrap();
    assert_eq!((reg.count(0), reg.count(1)), (2, 2));
    assert!((reg.mse(0) - 0.125).abs() < 1e-12);
    assert!((reg.mae(1) - 0.5).abs() < 1e-12);
}

#[test]
fn stats_read_like_dl4j() {
    let (labels, scores, targets, predictions) = data();
    let names: Vec<String> = ["zero", "one", "two", "three"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let eval = whole(
        Classification::new(CLASSES)
            .unwrap()
            .with_top_n(2)
            .unwrap()
            .with_class_names(names)
            .unwrap(),
        &labels,
        &scores,
    );
    let text = eval.stats();
    assert_eq!(text, eval.to_string());
    for needle in [
        "# of classes:    4",
        "Accuracy:",
        "Top 2 Accuracy:",
        "F1 Score:",
        "Confusion Matrix",
        "| 3 = three",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(text.contains(&format!("{:.4}", eval.accuracy())));
    assert!(!text.contains("never predicted"));
    let mut skewed = Classification::new(3).unwrap();
    skewed
        .eval(
            array![[0.0], [2.0]].view(),
            array![[0.9, 0.0, 0.1], [0.1, 0.0, 0.9]].view(),
            None,
        )
        .unwrap();
    assert!(skewed
        .stats()
        .contains("1 class(es) never predicted (their precision counts as 0): 1"));
    // The confusion rows sum to the examples of each class.
    for c in 0..CLASSES {
        let row: u64 = (0..CLASSES)
            .map(|p| eval.confusion_matrix().get(c, p))
            .sum();
        assert_eq!(row, labels.column(c).sum() as u64);
    }
    let roc = whole(RocMultiClass::new(CLASSES).unwrap(), &labels, &scores);
    let text = roc.stats();
    assert!(
        text.contains(&format!("Average AUC:   {:.6}", roc.average_auc())),
        "{text}"
    );
    let reg = whole(Regression::new(2).unwrap(), &targets, &predictions);
    let text = reg.stats();
    assert!(
        text.contains("R^2") && text.contains("col_1") && text.contains("Average"),
        "{text}"
    );
    let mut cleared = reg.clone();
    cleared.reset();
    assert_eq!(cleared.count(0), 0);
}
