//! Minibatches, batching and shuffling iterators, and normalizers (on iris from data/sklearn).

use std::collections::BTreeSet;
use std::path::Path;

use ember_ml::data::{
    one_hot, permutation, read_sklearn_csv, CsvReader, DataError, Header, LabelColumn, MiniBatch,
    Normalizer, NormalizerKind, Target,
};
use ndarray::{array, Array2};

fn iris() -> MiniBatch {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn/iris.csv");
    read_sklearn_csv(path).unwrap().0
}

/// A small set whose first feature is the example's index, so order is visible.
fn numbered(n: usize) -> MiniBatch {
    let features = Array2::from_shape_fn((n, 3), |(r, c)| (r * 10 + c) as f32);
    let labels = one_hot(&(0..n).map(|r| r % 3).collect::<Vec<_>>(), 3).unwrap();
    let mask = Array2::from_shape_fn((n, 1), |(r, _)| f32::from(u8::from(r % 5 != 0)));
    MiniBatch::new(features, labels)
        .unwrap()
        .with_labels_mask(mask)
        .unwrap()
}

fn ids(batch: &MiniBatch) -> Vec<usize> {
    batch
        .features()
        .column(0)
        .iter()
        .map(|&v| v as usize / 10)
        .collect()
}

#[test]
fn batches_visit_every_example_once() {
    let data = numbered(103);
    let ordered: Vec<MiniBatch> = data.batches(10).unwrap().collect();
    assert_eq!(ordered.len(), 11);
    assert_eq!(ordered.last().unwrap().len(), 3);
    assert_eq!(
        ordered.iter().flat_map(ids).collect::<Vec<_>>(),
        (0..103).collect::<Vec<_>>()
    );
    assert_eq!(MiniBatch::concat(&ordered).unwrap(), data);

    let iter = data.shuffled_batches(16, 5).unwrap();
    assert_eq!(iter.len(), 7);
    let shuffled: Vec<usize> = iter.flat_map(|b| ids(&b)).collect();
    assert_ne!(shuffled, (0..103).collect::<Vec<_>>());
    assert_eq!(shuffled.iter().copied().collect::<BTreeSet<_>>().len(), 103);
    // Labels and masks travel with their features.
    for batch in data.shuffled_batches(16, 5).unwrap() {
        for (i, id) in ids(&batch).into_iter().enumerate() {
            assert_eq!(batch.label_indices()[i], id % 3);
            assert_eq!(
                batch.labels_mask().unwrap()[[i, 0]],
                f32::from(u8::from(id % 5 != 0))
            );
        }
    }
    // Same seed, same order; another seed, another order.
    let again: Vec<usize> = data
        .shuffled_batches(16, 5)
        .unwrap()
        .flat_map(|b| ids(&b))
        .collect();
    assert_eq!(again, shuffled);
    let other: Vec<usize> = data
        .shuffled_batches(16, 6)
        .unwrap()
        .flat_map(|b| ids(&b))
        .collect();
    assert_ne!(other, shuffled);
    assert_eq!(permutation(103, 5), shuffled);

    let dropped: Vec<MiniBatch> = data.shuffled_batches(16, 5).unwrap().drop_last().collect();
    assert_eq!(dropped.len(), 6);
    assert!(dropped.iter().all(|b| b.len() == 16));
    assert!(matches!(data.batches(0), Err(DataError::Shape(_))));

    let mut copy = data.clone();
    copy.shuffle(5);
    assert_eq!(ids(&copy), shuffled);
}

#[test]
fn minibatch_views_splits_and_checks() {
    let data = numbered(10).with_feature_shape(vec![1, 3, 1]).unwrap();
    assert_eq!(data.features_nd().shape(), &[10, 1, 3, 1]);
    assert_eq!(data.features_nd()[[4, 0, 2, 0]], 42.0);
    assert!(numbered(10).with_feature_shape(vec![2, 2]).is_err());

    let (train, test) = data.split_at(7);
    assert_eq!((train.len(), test.len()), (7, 3));
    assert_eq!(ids(&test), vec![7, 8, 9]);
    assert_eq!(test.feature_shape(), &[1, 3, 1]);
    let picked = data.select(&[9, 0, 9]).unwrap();
    assert_eq!(ids(&picked), vec![9, 0, 9]);
    assert!(matches!(data.select(&[10]), Err(DataError::Shape(_))));
    assert_eq!(
        data.example_mask().unwrap().to_vec()[..6],
        [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    );

    assert!(MiniBatch::new(Array2::zeros((3, 2)), Array2::zeros((2, 1))).is_err());
    let plain = MiniBatch::new(Array2::zeros((3, 2)), Array2::zeros((3, 1))).unwrap();
    assert!(plain
        .clone()
        .with_labels_mask(Array2::ones((3, 2)))
        .is_err());
    assert!(plain
        .clone()
        .with_features_mask(Array2::ones((2, 1)))
        .is_err());
    assert!(MiniBatch::concat(&[plain.clone(), numbered(2)]).is_err());
    assert!(MiniBatch::concat(&[]).is_err());
    // A transposed (non-standard layout) array is accepted and viewed correctly.
    let transposed = array![[1.0f32, 3.0], [2.0, 4.0]].reversed_axes();
    let t = MiniBatch::new(transposed, Array2::zeros((2, 1))).unwrap();
    assert_eq!(
        t.features_nd().iter().copied().collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0, 4.0]
    );

    // JSON round trip; an inconsistent document is refused.
    let json = serde_json::to_string(&data).unwrap();
    let back: MiniBatch = serde_json::from_str(&json).unwrap();
    assert_eq!(back, data);
    let broken = json.replace("\"feature_shape\":[1,3,1]", "\"feature_shape\":[4]");
    assert!(serde_json::from_str::<MiniBatch>(&broken).is_err());

    assert!(one_hot(&[0, 3], 3).is_err());
}

fn column_mean_std(a: &Array2<f32>, c: usize) -> (f64, f64) {
    let col: Vec<f64> = a.column(c).iter().map(|&v| f64::from(v)).collect();
    let mean = col.iter().sum::<f64>() / col.len() as f64;
    let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
    (mean, var.sqrt())
}

#[test]
fn standardize_fits_on_train_and_applies_to_any_set() {
    let data = iris();
    let mut shuffled = data.clone();
    shuffled.shuffle(1);
    let (mut train, mut test) = shuffled.split_at(100);
    let raw_train = train.clone();
    let raw_test = test.clone();
    let norm = Normalizer::standardize().fit(&train).unwrap();
    norm.transform(&mut train).unwrap();
    norm.transform(&mut test).unwrap();
    for c in 0..4 {
        let (mean, std) = column_mean_std(raw_train.features(), c);
        let (m, s) = column_mean_std(train.features(), c);
        assert!(
            m.abs() < 1e-6 && (s - 1.0).abs() < 1e-6,
            "column {c}: {m} {s}"
        );
        // The test set uses the training statistics.
        for r in 0..test.len() {
            let expected = (f64::from(raw_test.features()[[r, c]]) - mean) / std;
            assert!((f64::from(test.features()[[r, c]]) - expected).abs() < 1e-5);
        }
    }
    // Labels are untouched unless asked for.
    assert_eq!(train.labels(), raw_train.labels());

    // Fitting in minibatches, or per partition and merging, gives the same statistics.
    let streamed = Normalizer::standardize()
        .fit_batches(&raw_train.batches(7).unwrap().collect::<Vec<_>>())
        .unwrap();
    let mut merged = Normalizer::standardize()
        .fit(&raw_train.slice(0, 33))
        .unwrap();
    merged
        .merge(
            &Normalizer::standardize()
                .fit(&raw_train.slice(33, 100))
                .unwrap(),
        )
        .unwrap();
    for other in [&streamed, &merged] {
        let (a, b) = (
            other.feature_stats().unwrap(),
            norm.feature_stats().unwrap(),
        );
        for c in 0..4 {
            assert!((a.mean()[c] - b.mean()[c]).abs() < 1e-12);
            assert!((a.std()[c] - b.std()[c]).abs() < 1e-12);
        }
        assert_eq!(a.min(), b.min());
        assert_eq!(a.count(), b.count());
    }

    // Saved with serde and loaded back, it maps identically; revert undoes the map.
    let loaded: Normalizer = serde_json::from_str(&serde_json::to_string(&norm).unwrap()).unwrap();
    let mut again = raw_test.clone();
    loaded.transform(&mut again).unwrap();
    assert_eq!(again, test);
    loaded.revert_features(again.features_mut()).unwrap();
    for (a, b) in again.features().iter().zip(raw_test.features()) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn min_max_labels_masks_and_errors() {
    let data = iris();
    let norm = Normalizer::min_max(-1.0, 1.0).fit(&data).unwrap();
    assert_eq!(norm.kind(), NormalizerKind::MinMax { lo: -1.0, hi: 1.0 });
    let scaled = norm.transformed(data.features()).unwrap();
    for c in 0..4 {
        let col = scaled.column(c);
        let (lo, hi) = col
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(
            (lo + 1.0).abs() < 1e-6 && (hi - 1.0).abs() < 1e-6,
            "column {c}: {lo} {hi}"
        );
    }

    // Regression targets: labels normalized too, and predictions mapped back.
    let sepal = CsvReader::new(LabelColumn::Index(0), Target::Regression(1))
        .header(Header::Sklearn)
        .read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn/iris.csv"));
    // Sepal length as the target: the other three measurements and the class are features.
    let sepal = sepal.unwrap();
    assert_eq!(sepal.num_features(), 4);
    let with_labels = Normalizer::standardize().with_labels().fit(&sepal).unwrap();
    let mut normalized = sepal.clone();
    with_labels.transform(&mut normalized).unwrap();
    let (m, s) = column_mean_std(normalized.labels(), 0);
    assert!(m.abs() < 1e-6 && (s - 1.0).abs() < 1e-6);
    let mut predictions = normalized.labels().clone();
    with_labels.revert_labels(predictions.view_mut()).unwrap();
    for (a, b) in predictions.iter().zip(sepal.labels()) {
        assert!((a - b).abs() < 1e-5);
    }

    // Masked feature values are left out of the fit; a constant column is only centred.
    let features = array![[1.0, 5.0], [3.0, 5.0], [100.0, 5.0]];
    let masked = MiniBatch::new(features.clone(), Array2::zeros((3, 1)))
        .unwrap()
        .with_features_mask(array![[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
        .unwrap();
    let norm = Normalizer::standardize().fit(&masked).unwrap();
    assert_eq!(norm.feature_stats().unwrap().mean(), &[2.0, 5.0]);
    assert_eq!(
        norm.transformed(&features).unwrap().row(1).to_vec(),
        vec![1.0, 0.0]
    );
    let constant = Normalizer::min_max(0.0, 1.0).fit(&masked).unwrap();
    assert_eq!(
        constant.transformed(&features).unwrap().column(1).to_vec(),
        vec![0.0; 3]
    );

    // Errors: no data, width mismatch, not fit, non-finite values, mismatched merge.
    let empty = MiniBatch::new(Array2::zeros((0, 2)), Array2::zeros((0, 1))).unwrap();
    assert!(Normalizer::standardize().fit(&empty).is_err());
    assert!(norm.transformed(&Array2::zeros((2, 3))).is_err());
    assert!(Normalizer::standardize().transformed(&features).is_err());
    assert!(norm
        .revert_labels(Array2::zeros((1, 1)).view_mut())
        .is_err());
    let bad = MiniBatch::new(array![[1.0, f32::NAN]], Array2::zeros((1, 1))).unwrap();
    assert!(matches!(
        Normalizer::standardize().fit(&bad),
        Err(DataError::NonFinite {
            row: 0,
            column: 1,
            ..
        })
    ));
    let mut a = Normalizer::standardize().fit(&masked).unwrap();
    assert!(a
        .merge(&Normalizer::min_max(0.0, 1.0).fit(&masked).unwrap())
        .is_err());
}
