//! Minibatch RDDs straight from columnar data: Parquet or Arrow IPC files (or any
//! `Rdd<Batch>`), their features and labels taken from named columns, with no detour through
//! rows of `Vec<f32>`. The column layout is the one inference reads ([`FeatureColumns`]), so one
//! dataset serves training, evaluation and prediction.
//!
//! Columns are checked against the schema before any job (a missing or non-numeric column is
//! named); a null, a list row of the wrong length or a class index out of range fails the job
//! naming the column and row. Minibatches are cut within each partition (a partition's last one
//! holds the remainder), so for DDP-style sharding repartition by rows first or export.

use std::rc::Rc;

use ember_engine::{Batch, Context, Rdd};
use ember_storage::arrow_array::cast::AsArray;
use ember_storage::arrow_array::{Array, RecordBatch};
use ember_storage::arrow_schema::{DataType, Schema};
use ember_storage::ParquetScan;
use ndarray::Array2;

use super::columnar::{numbers, project, ColumnarPrediction, FeatureColumns, Plan};
use super::copies::fail_task;
use super::inference_error::InferenceError;
use crate::data::MiniBatch;
use crate::error::{MlError, Result};

/// Where a row's label is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumns {
    /// One integer column of class indices `0..classes`, one-hot encoded (MNIST's labels).
    ClassIndex {
        /// The column.
        column: String,
        /// The number of classes (the network's output width).
        classes: usize,
    },
    /// Numeric columns, one value each, in this order (regression targets, or labels already
    /// one-hot).
    Columns(Vec<String>),
    /// One list column holding the whole label vector.
    List(String),
}

/// Which columns of a columnar dataset make a training example.
#[derive(Clone, Debug)]
pub struct ColumnarExamples {
    /// The features.
    pub features: FeatureColumns,
    /// The labels.
    pub labels: LabelColumns,
    /// Factor every feature is multiplied by (default 1; `1/255` for raw pixels).
    pub scale: f32,
}

impl ColumnarExamples {
    /// Features from `features`, labels from `labels`, features unscaled.
    pub fn new(features: FeatureColumns, labels: LabelColumns) -> Self {
        ColumnarExamples {
            features,
            labels,
            scale: 1.0,
        }
    }

    /// Every feature multiplied by `scale`.
    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// The columns read, features first.
    fn columns(&self) -> Vec<String> {
        let mut cols = ColumnarPrediction::new(&[], self.features.clone()).columns();
        let labels = match &self.labels {
            LabelColumns::ClassIndex { column, .. } | LabelColumns::List(column) => {
                vec![column.clone()]
            }
            LabelColumns::Columns(cs) => cs.clone(),
        };
        for c in labels {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        cols
    }

    /// The label columns as a second feature spec (`None` for class indices).
    fn label_columns(&self) -> Option<FeatureColumns> {
        match &self.labels {
            LabelColumns::ClassIndex { .. } => None,
            LabelColumns::Columns(cs) => Some(FeatureColumns::Columns(cs.clone())),
            LabelColumns::List(c) => Some(FeatureColumns::List(c.clone())),
        }
    }

    /// Checks every column against `schema` before a job runs.
    fn check(&self, schema: &Schema) -> Result<()> {
        plan(&self.features, self.scale, schema, None)?;
        match &self.labels {
            LabelColumns::ClassIndex { column, classes } => {
                if *classes < 2 {
                    return Err(MlError::Config(format!(
                        "label column `{column}`: {classes} classes; a class index needs at least 2"
                    )));
                }
                let field =
                    schema
                        .field_with_name(column)
                        .map_err(|_| InferenceError::MissingColumn {
                            column: column.clone(),
                            role: "label column",
                            available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                        })?;
                if !field.data_type().is_integer() {
                    return Err(InferenceError::NotNumeric {
                        column: column.clone(),
                        data_type: format!(
                            "{} (class indices must be integers)",
                            field.data_type()
                        ),
                    }
                    .into());
                }
                Ok(())
            }
            _ => {
                let cols = self.label_columns().expect("not a class index");
                plan(&cols, 1.0, schema, None).map(|_| ())
            }
        }
    }
}

/// The values per row of `cols` fixed by the schema (columns, fixed-size lists); `None` for a
/// list column whose rows may differ.
fn schema_width(cols: &FeatureColumns, schema: &Schema) -> Option<usize> {
    match cols {
        FeatureColumns::Columns(cs) => Some(cs.len()),
        FeatureColumns::List(c) => match schema.field_with_name(c).ok()?.data_type() {
            DataType::FixedSizeList(_, n) => Some(*n as usize),
            _ => None,
        },
    }
}

/// The values in the first row of a batch's list column (0 for an empty batch).
fn first_row_width(b: &RecordBatch, column: &str) -> usize {
    let Some(col) = b.column_by_name(column) else {
        return 0;
    };
    if col.is_empty() {
        return 0;
    }
    match col.data_type() {
        DataType::List(_) => col.as_list::<i32>().value_length(0) as usize,
        DataType::LargeList(_) => col.as_list::<i64>().value_length(0) as usize,
        DataType::FixedSizeList(_, n) => *n as usize,
        _ => 0,
    }
}

/// `cols` checked against `schema` with the width the schema fixes, the batch's first row's
/// (for lists of varying length), or none to check (the driver's check of such a list).
fn plan(
    cols: &FeatureColumns,
    scale: f32,
    schema: &Schema,
    batch: Option<&RecordBatch>,
) -> Result<(Plan, usize)> {
    let width = match (schema_width(cols, schema), cols, batch) {
        (Some(w), _, _) => w,
        (None, FeatureColumns::List(c), Some(b)) => first_row_width(b, c),
        _ => 0,
    };
    let plan = ColumnarPrediction::new(&[], cols.clone())
        .with_scale(scale)
        .plan(schema, &[width])?;
    Ok((plan, width))
}

/// One record batch's features and labels: `(rows, feature width, features, label width,
/// labels)`.
type Decoded = (usize, usize, Vec<f32>, usize, Vec<f32>);

fn decode(spec: &ColumnarExamples, schema: &Schema, b: &RecordBatch) -> Result<Decoded> {
    let rows = b.num_rows();
    let (features, fw) = plan(&spec.features, spec.scale, schema, Some(b))?;
    let x = features.features(b)?;
    let (y, lw) = match &spec.labels {
        LabelColumns::ClassIndex { column, classes } => {
            let col = b
                .column_by_name(column)
                .ok_or_else(|| MlError::Shape(format!("no label column `{column}` in a batch")))?;
            let values = numbers(col.as_ref(), column)?;
            let mut y = vec![0f32; rows * classes];
            for (r, &v) in values.iter().enumerate() {
                if v < 0.0 || v.fract() != 0.0 || v as usize >= *classes {
                    return Err(MlError::Shape(format!(
                        "label column `{column}`: row {r} of the batch holds {v}, not a class \
                         index below {classes}"
                    )));
                }
                y[r * classes + v as usize] = 1.0;
            }
            (y, *classes)
        }
        _ => {
            let cols = spec.label_columns().expect("not a class index");
            let (labels, lw) = plan(&cols, 1.0, schema, Some(b))?;
            (labels.features(b)?, lw)
        }
    };
    Ok((rows, fw, x, lw, y))
}

/// Rows gathered into minibatches of `batch` rows.
struct Gather {
    batch: usize,
    widths: Option<(usize, usize)>,
    x: Vec<f32>,
    y: Vec<f32>,
    rows: usize,
}

impl Gather {
    fn push(&mut self, d: Decoded, out: &mut Vec<MiniBatch>) -> Result<()> {
        let (rows, fw, x, lw, y) = d;
        if rows == 0 {
            return Ok(());
        }
        match self.widths {
            None => self.widths = Some((fw, lw)),
            Some(w) if w != (fw, lw) => {
                return Err(MlError::Shape(format!(
                    "a record batch has {fw} features and {lw} labels per row, earlier ones in \
                     the partition {} and {}",
                    w.0, w.1
                )))
            }
            _ => {}
        }
        for r in 0..rows {
            self.x.extend_from_slice(&x[r * fw..(r + 1) * fw]);
            self.y.extend_from_slice(&y[r * lw..(r + 1) * lw]);
            self.rows += 1;
            if self.rows == self.batch {
                out.push(self.flush()?);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<MiniBatch> {
        let (fw, lw) = self.widths.unwrap_or((0, 0));
        let x = Array2::from_shape_vec((self.rows, fw), std::mem::take(&mut self.x))
            .map_err(|e| MlError::Shape(e.to_string()))?;
        let y = Array2::from_shape_vec((self.rows, lw), std::mem::take(&mut self.y))
            .map_err(|e| MlError::Shape(e.to_string()))?;
        self.rows = 0;
        Ok(MiniBatch::new(x, y)?)
    }
}

/// Minibatches of up to `batch_size` rows from record batches of `schema`, cut within each
/// partition. Bad columns are an error here, before any job; bad values fail the job naming
/// column and row.
pub fn batches_to_minibatches(
    batches: &Rdd<Batch>,
    schema: &Schema,
    spec: &ColumnarExamples,
    batch_size: usize,
) -> Result<Rdd<MiniBatch>> {
    if batch_size == 0 {
        return Err(MlError::Config("batch size must be at least 1".into()));
    }
    spec.check(schema)?;
    let spec = Rc::new(spec.clone());
    Ok(batches.map_partitions(move |it| {
        let spec = Rc::clone(&spec);
        let mut gather = Gather {
            batch: batch_size,
            widths: None,
            x: Vec::new(),
            y: Vec::new(),
            rows: 0,
        };
        let mut out = Vec::new();
        let run = || -> Result<()> {
            for b in it {
                // Each batch's own schema places its columns (the driver checked names and
                // types against `schema`; a source may order its columns differently).
                let d = decode(&spec, &b.0.schema(), &b.0)?;
                gather.push(d, &mut out)?;
            }
            if gather.rows > 0 {
                out.push(gather.flush()?);
            }
            Ok(())
        };
        if let Err(e) = run() {
            fail_task("columnar minibatches", e);
            out.clear();
        }
        Box::new(out.into_iter())
    }))
}

/// Minibatches of up to `batch_size` rows from the Parquet dataset at `url` (a file, directory
/// or glob on any storage URL), reading only the columns `spec` names.
pub fn parquet_minibatches(
    ctx: &Context,
    url: &str,
    spec: &ColumnarExamples,
    batch_size: usize,
) -> Result<Rdd<MiniBatch>> {
    let config = ctx.conf().storage_config();
    let full = ember_storage::parquet_splits(url, &ParquetScan::default(), &config)?;
    // Checked against the whole schema first, so a missing column is named as such.
    spec.check(&full.schema)?;
    let columns = spec.columns();
    let scan = ParquetScan {
        projection: Some(columns.clone()),
        ..ParquetScan::default()
    };
    let input = ctx.parquet(url, scan)?;
    batches_to_minibatches(&input, &project(&full.schema, &columns), spec, batch_size)
}

/// Minibatches of up to `batch_size` rows from the Arrow IPC files at `url`.
pub fn arrow_minibatches(
    ctx: &Context,
    url: &str,
    spec: &ColumnarExamples,
    batch_size: usize,
) -> Result<Rdd<MiniBatch>> {
    let config = ctx.conf().storage_config();
    let (schema, _) = ember_storage::ipc_splits(url, 4, &config)?;
    let input = ctx.arrow(url)?;
    batches_to_minibatches(&input, &schema, spec, batch_size)
}
