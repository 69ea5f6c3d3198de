//! Checking and decoding the labels, predictions and masks given to evaluations.

use ndarray::{ArrayView1, ArrayView2};

use super::EvalError;

/// Checks that labels and predictions have the same number of rows.
pub(crate) fn same_rows(
    labels: &ArrayView2<'_, f32>,
    predictions: &ArrayView2<'_, f32>,
) -> Result<(), EvalError> {
    if labels.nrows() != predictions.nrows() {
        return Err(EvalError::Shape(format!(
            "{} label rows but {} prediction rows",
            labels.nrows(),
            predictions.nrows()
        )));
    }
    Ok(())
}

/// Decodes a mask into one flag per example: `[rows, 1]`, or `[rows, cols]` where every row is
/// either fully masked or fully unmasked (a partly masked row is an error, never half counted).
pub(crate) fn example_mask(
    mask: Option<ArrayView2<'_, f32>>,
    rows: usize,
    cols: usize,
) -> Result<Option<Vec<bool>>, EvalError> {
    let Some(mask) = mask else { return Ok(None) };
    if mask.nrows() != rows || (mask.ncols() != 1 && mask.ncols() != cols) {
        return Err(EvalError::Shape(format!(
            "mask of shape {:?} for {rows} examples: expected [{rows}, 1] or [{rows}, {cols}]",
            mask.shape()
        )));
    }
    mask.rows()
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            let on = row.iter().filter(|&&v| v != 0.0).count();
            if on != 0 && on != row.len() {
                return Err(EvalError::Shape(format!(
                    "row {r} of the mask is only partly masked; this evaluation counts whole \
                     examples, so use a [batch, 1] mask"
                )));
            }
            Ok(on != 0)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Decodes a per-value mask `[rows, 1]` (broadcast) or `[rows, cols]`.
pub(crate) fn value_mask(
    mask: Option<ArrayView2<'_, f32>>,
    rows: usize,
    cols: usize,
) -> Result<Option<ArrayView2<'_, f32>>, EvalError> {
    if let Some(m) = &mask {
        if m.nrows() != rows || (m.ncols() != 1 && m.ncols() != cols) {
            return Err(EvalError::Shape(format!(
                "mask of shape {:?} for {rows} examples: expected [{rows}, 1] or [{rows}, {cols}]",
                m.shape()
            )));
        }
    }
    Ok(mask)
}

/// The class of a label row: a one-hot row of `num_classes` columns (the largest entry, which
/// must be positive), or a single column holding the class index.
pub(crate) fn label_class(
    row: ArrayView1<'_, f32>,
    r: usize,
    num_classes: usize,
) -> Result<usize, EvalError> {
    if let Some((c, &v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "label",
            row: r,
            column: c,
            value: v,
        });
    }
    if row.len() == 1 {
        let v = row[0];
        if v < 0.0 || v.fract() != 0.0 || v as usize >= num_classes {
            return Err(EvalError::Label {
                row: r,
                what: format!("{v} is not a class index below {num_classes}"),
            });
        }
        return Ok(v as usize);
    }
    if row.len() != num_classes {
        return Err(EvalError::Shape(format!(
            "labels have {} columns; expected {num_classes} (one-hot) or 1 (class index)",
            row.len()
        )));
    }
    let best = argmax(row);
    if row[best] <= 0.0 {
        return Err(EvalError::Label {
            row: r,
            what: "one-hot row has no positive entry".into(),
        });
    }
    Ok(best)
}

/// Index of the largest value (the first one on ties, as NumPy's `argmax`).
pub(crate) fn argmax(row: ArrayView1<'_, f32>) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Fails on the first non-finite prediction.
pub(crate) fn finite_predictions(predictions: &ArrayView2<'_, f32>) -> Result<(), EvalError> {
    for (r, row) in predictions.rows().into_iter().enumerate() {
        if let Some((c, &v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                what: "prediction",
                row: r,
                column: c,
                value: v,
            });
        }
    }
    Ok(())
}

/// A ratio that is 0 when the denominator is 0 (scikit-learn's `zero_division=0`).
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}
