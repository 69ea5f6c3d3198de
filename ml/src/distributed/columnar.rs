//! Inference over columnar data: Parquet or Arrow IPC in, Parquet or Arrow IPC out, through
//! the engine's atomic committer. The features of a row come from one list column (a whole
//! example per row) or from several numeric columns assembled in order; the output keeps the
//! key columns as they are and adds a prediction column (a fixed-size list of `f32`, one value
//! per network output), row for row, so every key keeps its row.
//!
//! Missing columns, non-numeric feature columns and a width the network cannot take are found
//! from the schema before the job starts ([`InferenceError`]); a list row of the wrong length or
//! a null feature fails the job naming the column and row.

use std::rc::Rc;
use std::sync::Arc;

use ember_engine::{Batch, BoxIter, Rdd};
use ember_storage::arrow_array::cast::AsArray;
use ember_storage::arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use ember_storage::arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
use ember_storage::arrow_schema::{DataType, Field, Schema, SchemaRef};
use ember_storage::{ParquetScan, SaveMode};

use super::copies::{fail_task, Copies, CopyPlan, EvalOptions, Lease};
use super::inference::forward_flat;
use super::inference_error::InferenceError;
use super::network::DistributedNetwork;
use crate::error::{MlError, Result};

/// Where a row's features are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeatureColumns {
    /// One list column (list, large list or fixed-size list of numbers) holding a whole example.
    List(String),
    /// Numeric columns, one value each, assembled in this order.
    Columns(Vec<String>),
}

impl FeatureColumns {
    fn names(&self) -> Vec<String> {
        match self {
            FeatureColumns::List(c) => vec![c.clone()],
            FeatureColumns::Columns(cs) => cs.clone(),
        }
    }
}

/// What a columnar inference job reads and writes.
#[derive(Clone, Debug)]
pub struct ColumnarPrediction {
    /// Columns copied to the output unchanged (the keys of the rows).
    pub keys: Vec<String>,
    /// The features.
    pub features: FeatureColumns,
    /// Name of the prediction column added (default `prediction`).
    pub prediction: String,
    /// Factor every feature is multiplied by (default 1; `1/255` for raw pixels).
    pub scale: f32,
    /// Copies per process and examples per forward pass.
    pub options: EvalOptions,
}

impl ColumnarPrediction {
    /// Keys `keys` kept, features from `features`, the defaults otherwise.
    pub fn new(keys: &[&str], features: FeatureColumns) -> Self {
        ColumnarPrediction {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            features,
            prediction: "prediction".into(),
            scale: 1.0,
            options: EvalOptions::default(),
        }
    }

    /// Names the prediction column.
    pub fn with_prediction_column(mut self, name: &str) -> Self {
        self.prediction = name.into();
        self
    }

    /// Multiplies every feature by `scale`.
    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// Sets copies per process and the forward-pass size.
    pub fn with_options(mut self, options: EvalOptions) -> Self {
        self.options = options;
        self
    }

    /// Every column the job reads.
    pub(crate) fn columns(&self) -> Vec<String> {
        let mut cols = self.keys.clone();
        for c in self.features.names() {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        cols
    }

    /// Checks `schema` against the spec and a network taking `width` values per example.
    pub(crate) fn plan(&self, schema: &Schema, input_shape: &[usize]) -> Result<Plan> {
        let width: usize = input_shape.iter().product();
        let available = || schema.fields().iter().map(|f| f.name().clone()).collect();
        let find = |name: &str, role: &'static str| {
            schema
                .index_of(name)
                .map_err(|_| InferenceError::MissingColumn {
                    column: name.into(),
                    role,
                    available: available(),
                })
        };
        let keys = self
            .keys
            .iter()
            .map(|k| find(k, "key column"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let not_numeric = |name: &str, t: &DataType| InferenceError::NotNumeric {
            column: name.into(),
            data_type: t.to_string(),
        };
        let features = match &self.features {
            FeatureColumns::List(name) => {
                let i = find(name, "feature column")?;
                let t = schema.field(i).data_type();
                let (item, fixed) = match t {
                    DataType::List(f) | DataType::LargeList(f) => (f.data_type(), None),
                    DataType::FixedSizeList(f, n) => (f.data_type(), Some(*n as usize)),
                    other => return Err(not_numeric(name, other).into()),
                };
                if !is_numeric(item) {
                    return Err(not_numeric(name, t).into());
                }
                if let Some(n) = fixed.filter(|&n| n != width) {
                    return Err(InferenceError::FeatureWidth {
                        column: name.clone(),
                        found: n,
                        expected: width,
                        input_shape: input_shape.to_vec(),
                    }
                    .into());
                }
                Features::List(i)
            }
            FeatureColumns::Columns(names) => {
                let idx = names
                    .iter()
                    .map(|n| {
                        let i = find(n, "feature column")?;
                        let t = schema.field(i).data_type();
                        if is_numeric(t) {
                            Ok(i)
                        } else {
                            Err(not_numeric(n, t))
                        }
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                if idx.len() != width {
                    return Err(InferenceError::FeatureWidth {
                        column: names.join(","),
                        found: idx.len(),
                        expected: width,
                        input_shape: input_shape.to_vec(),
                    }
                    .into());
                }
                Features::Columns(idx)
            }
        };
        Ok(Plan {
            keys,
            features,
            names: self.features.names(),
            width,
            scale: self.scale,
        })
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Float32 | DataType::Float64)
}

#[derive(Clone, Debug)]
enum Features {
    List(usize),
    Columns(Vec<usize>),
}

/// A spec checked against a schema: column indices.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    keys: Vec<usize>,
    features: Features,
    names: Vec<String>,
    width: usize,
    scale: f32,
}

/// The values of a numeric array as `f32`; a null names `column` and its row.
pub(crate) fn numbers(a: &dyn Array, column: &str) -> Result<Vec<f32>> {
    if a.null_count() > 0 {
        let row = (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0);
        return Err(MlError::Shape(format!(
            "feature column `{column}` has a null value (value {row} of the batch); fill or drop \
             such rows first"
        )));
    }
    macro_rules! conv {
        ($($t:ty),*) => {
            $(if let Some(p) = a.as_primitive_opt::<$t>() {
                return Ok(p.values().iter().map(|&v| v as f32).collect());
            })*
        };
    }
    conv!(
        Float32Type,
        Float64Type,
        Int8Type,
        Int16Type,
        Int32Type,
        Int64Type,
        UInt8Type,
        UInt16Type,
        UInt32Type,
        UInt64Type
    );
    Err(InferenceError::NotNumeric {
        column: column.into(),
        data_type: a.data_type().to_string(),
    }
    .into())
}

impl Plan {
    /// The batch's features, `rows * width` values in row order.
    pub(crate) fn features(&self, b: &RecordBatch) -> Result<Vec<f32>> {
        let rows = b.num_rows();
        let mut out = Vec::with_capacity(rows * self.width);
        match &self.features {
            Features::List(i) => {
                let col = b.column(*i);
                let name = &self.names[0];
                if col.null_count() > 0 {
                    return Err(MlError::Shape(format!(
                        "feature column `{name}` has a null row; fill or drop such rows first"
                    )));
                }
                // Row r's values are values[offsets[r]..offsets[r + 1]].
                let (values, offsets): (&ArrayRef, Vec<usize>) = match col.data_type() {
                    DataType::List(_) => {
                        let l = col.as_list::<i32>();
                        (
                            l.values(),
                            l.offsets().iter().map(|&o| o as usize).collect(),
                        )
                    }
                    DataType::LargeList(_) => {
                        let l = col.as_list::<i64>();
                        (
                            l.values(),
                            l.offsets().iter().map(|&o| o as usize).collect(),
                        )
                    }
                    _ => {
                        let l = col.as_fixed_size_list();
                        let n = l.value_length() as usize;
                        let first = l.value_offset_at(0);
                        (l.values(), (0..=rows).map(|r| first + r * n).collect())
                    }
                };
                let (lo, hi) = (offsets[0], offsets[rows]);
                let flat = numbers(values.slice(lo, hi - lo).as_ref(), name)?;
                for r in 0..rows {
                    let (a, z) = (offsets[r] - lo, offsets[r + 1] - lo);
                    if z - a != self.width {
                        return Err(MlError::Shape(format!(
                            "feature column `{name}`: row {r} of the batch has {} values, the \
                             network takes {}",
                            z - a,
                            self.width
                        )));
                    }
                    out.extend(flat[a..z].iter().map(|v| v * self.scale));
                }
            }
            Features::Columns(idx) => {
                let cols = idx
                    .iter()
                    .zip(&self.names)
                    .map(|(&i, name)| numbers(b.column(i).as_ref(), name))
                    .collect::<Result<Vec<_>>>()?;
                for r in 0..rows {
                    out.extend(cols.iter().map(|c| c[r] * self.scale));
                }
            }
        }
        Ok(out)
    }
}

impl DistributedNetwork {
    /// Predicts every row of `input` (record batches of `schema`): the output batches hold the
    /// key columns of `spec` and its prediction column, row for row. Bad columns are an error
    /// here, before any job.
    pub fn predict_batches(
        &self,
        input: &Rdd<Batch>,
        schema: &Schema,
        spec: &ColumnarPrediction,
    ) -> Result<Rdd<Batch>> {
        let net = self.replica.borrow();
        let plan = spec.plan(schema, &net.net.config().input_shape)?;
        let copy_plan = CopyPlan::new(&self.ctx, &net.net, &spec.options)?;
        let outputs: usize = net.net.output_shape().iter().product();
        drop(net);
        let mut fields: Vec<Field> = plan.keys.iter().map(|&i| schema.field(i).clone()).collect();
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        fields.push(Field::new(
            &spec.prediction,
            DataType::FixedSizeList(Arc::clone(&item), outputs as i32),
            false,
        ));
        let job = Rc::new(ColumnarJob {
            copies: Copies::new(self),
            plan,
            batch: spec.options.batch_size,
            schema: Arc::new(Schema::new(fields)),
            item,
            outputs,
        });
        let j = Rc::clone(&job);
        let out = input.map_partitions(move |it| {
            let mut run = ColumnarRun {
                job: Rc::clone(&j),
                input: it,
                lease: None,
            };
            Box::new(std::iter::from_fn(move || run.next()))
        });
        job.copies.attach(out.id(), copy_plan, "predicting")?;
        Ok(out)
    }

    /// Predicts the Parquet dataset at `input_url` (reading only the columns `spec` names) and
    /// writes keys and predictions as Parquet under `output_url`, committed atomically.
    pub fn predict_parquet(
        &self,
        input_url: &str,
        output_url: &str,
        spec: &ColumnarPrediction,
        mode: SaveMode,
    ) -> Result<()> {
        let config = self.ctx.conf().storage_config();
        let full = ember_storage::parquet_splits(input_url, &ParquetScan::default(), &config)?;
        // Check against the whole schema, so a missing column is named as such.
        let net = self.replica.borrow();
        spec.plan(&full.schema, &net.net.config().input_shape)?;
        drop(net);
        let scan = ParquetScan {
            projection: Some(spec.columns()),
            ..ParquetScan::default()
        };
        let input = self.ctx.parquet(input_url, scan)?;
        let projected = project(&full.schema, &spec.columns());
        self.predict_batches(&input, &projected, spec)?
            .save_as_parquet(output_url, mode)?;
        Ok(())
    }

    /// [`Self::predict_parquet`] for Arrow IPC files in and out.
    pub fn predict_arrow(
        &self,
        input_url: &str,
        output_url: &str,
        spec: &ColumnarPrediction,
        mode: SaveMode,
    ) -> Result<()> {
        let config = self.ctx.conf().storage_config();
        let (schema, _) = ember_storage::ipc_splits(input_url, 4, &config)?;
        let input = self.ctx.arrow(input_url)?;
        self.predict_batches(&input, &schema, spec)?
            .save_as_arrow(output_url, mode)?;
        Ok(())
    }
}

/// `schema` restricted to `columns`, in the order of `columns`: the order a Parquet scan's
/// projection returns them in (`ParquetPlan::schema`), whatever their order in the file.
pub(crate) fn project(schema: &SchemaRef, columns: &[String]) -> Schema {
    Schema::new(
        columns
            .iter()
            .filter_map(|c| schema.field_with_name(c).ok())
            .cloned()
            .collect::<Vec<_>>(),
    )
}

struct ColumnarJob {
    copies: Copies,
    plan: Plan,
    batch: usize,
    schema: SchemaRef,
    item: Arc<Field>,
    outputs: usize,
}

/// One partition being predicted, batch by batch; returns its copies when the input ends.
struct ColumnarRun {
    job: Rc<ColumnarJob>,
    input: BoxIter<Batch>,
    lease: Option<Lease>,
}

impl ColumnarRun {
    fn next(&mut self) -> Option<Batch> {
        let Some(b) = self.input.next() else {
            self.lease = None;
            return None;
        };
        match self.predict(b.batch()) {
            Ok(out) => Some(Batch(out)),
            Err(e) => {
                fail_task("columnar inference", e);
                self.lease = None;
                None
            }
        }
    }

    fn predict(&mut self, b: &RecordBatch) -> Result<RecordBatch> {
        let job = &self.job;
        let values = job.plan.features(b)?;
        if self.lease.is_none() {
            self.lease = Some(job.copies.take()?);
        }
        let lease = self.lease.as_mut().expect("taken above");
        let out = forward_flat(lease, &values, job.plan.width, job.batch)?;
        job.copies.progress(b.num_rows());
        let mut columns: Vec<ArrayRef> =
            job.plan.keys.iter().map(|&i| b.column(i).clone()).collect();
        let preds = FixedSizeListArray::try_new(
            Arc::clone(&job.item),
            job.outputs as i32,
            Arc::new(Float32Array::from(out)),
            None,
        )
        .map_err(|e| MlError::Shape(format!("building the prediction column: {e}")))?;
        columns.push(Arc::new(preds));
        RecordBatch::try_new(Arc::clone(&job.schema), columns)
            .map_err(|e| MlError::Shape(format!("building an output batch: {e}")))
    }
}
