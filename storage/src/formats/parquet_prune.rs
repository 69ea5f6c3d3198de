//! Parquet predicates: `column <op> literal`, checked against the dataset's schema when the scan
//! is planned, and used to prune row groups from their column statistics.
//!
//! A predicate whose literal cannot be compared with its column (`id >= "abc"` on an Int64
//! column, a boolean against a string...) or that names no column is an error naming the column,
//! its type and the literal's, never a predicate silently ignored. Supported pairs: integer and
//! floating-point columns with [`Scalar::Int`] / [`Scalar::Float`], UTF-8 columns with
//! [`Scalar::Str`], Boolean columns with [`Scalar::Bool`].

use arrow_schema::{DataType, Schema};
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// A comparison operator of a pruning predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// A literal of a pruning predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scalar {
    /// An integer (compared with integer and floating-point columns).
    Int(i64),
    /// A float (compared with integer and floating-point columns).
    Float(f64),
    /// A string (compared bytewise with UTF-8 columns).
    Str(String),
    /// A boolean.
    Bool(bool),
}

/// `column <op> literal`; SQL semantics: null never satisfies a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// Top-level column name.
    pub column: String,
    /// The operator.
    pub op: CmpOp,
    /// The literal.
    pub value: Scalar,
}

impl Predicate {
    /// Builds `column <op> value`.
    pub fn new(column: impl Into<String>, op: CmpOp, value: Scalar) -> Self {
        Predicate {
            column: column.into(),
            op,
            value,
        }
    }
}

impl Scalar {
    /// What kind of literal this is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Int(_) => "integer",
            Scalar::Float(_) => "floating-point",
            Scalar::Str(_) => "string",
            Scalar::Bool(_) => "boolean",
        }
    }
}

impl std::fmt::Display for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "!=",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        };
        let value = match &self.value {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(x) => format!("{x:?}"),
            Scalar::Str(s) => format!("{s:?}"),
            Scalar::Bool(b) => b.to_string(),
        };
        write!(f, "{} {op} {value}", self.column)
    }
}

/// Whether a literal of this kind can be compared with a column of type `t`.
fn comparable(t: &DataType, v: &Scalar) -> bool {
    use DataType::*;
    match t {
        Dictionary(_, values) => comparable(values, v),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32
        | Float64 | Decimal128(..) | Decimal256(..) => {
            matches!(v, Scalar::Int(_) | Scalar::Float(_))
        }
        Utf8 | LargeUtf8 | Utf8View => matches!(v, Scalar::Str(_)),
        Boolean => matches!(v, Scalar::Bool(_)),
        _ => false,
    }
}

/// Checks every predicate against the dataset's schema (of `url`, its first file): the column
/// must exist and the literal must be comparable with its type.
pub(crate) fn check_predicates(url: &str, schema: &Schema, predicates: &[Predicate]) -> Result<()> {
    for p in predicates {
        let Ok(field) = schema.field_with_name(&p.column) else {
            return Err(StorageError::Schema {
                url: url.to_string(),
                reason: format!(
                    "predicate `{p}` on unknown column `{}` (columns: {:?})",
                    p.column,
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                ),
            });
        };
        if !comparable(field.data_type(), &p.value) {
            return Err(StorageError::PredicateType {
                url: url.to_string(),
                predicate: p.to_string(),
                column: p.column.clone(),
                column_type: field.data_type().to_string(),
                literal: p.value.kind(),
            });
        }
    }
    Ok(())
}

/// A column's statistics as comparable values.
enum Bound {
    I(i64),
    F(f64),
    S(Vec<u8>),
    B(bool),
}

fn to_f64(b: &Bound) -> Option<f64> {
    match b {
        Bound::I(i) => Some(*i as f64),
        Bound::F(f) => Some(*f),
        _ => None,
    }
}

/// Compares a statistics bound with the literal; `None` when the types are not comparable.
fn cmp(b: &Bound, v: &Scalar) -> Option<std::cmp::Ordering> {
    match (b, v) {
        (Bound::I(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Bound::S(x), Scalar::Str(y)) => Some(x.as_slice().cmp(y.as_bytes())),
        (Bound::B(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (b, Scalar::Float(y)) => to_f64(b)?.partial_cmp(y),
        (Bound::F(x), Scalar::Int(y)) => x.partial_cmp(&(*y as f64)),
        _ => None,
    }
}

fn bounds(
    stats: &Statistics,
    desc: &parquet::schema::types::ColumnDescriptor,
) -> Option<(Bound, Bound)> {
    let signed_int = matches!(
        desc.converted_type(),
        ConvertedType::NONE
            | ConvertedType::INT_8
            | ConvertedType::INT_16
            | ConvertedType::INT_32
            | ConvertedType::INT_64
    ) && !matches!(desc.logical_type_ref(), Some(LogicalType::Integer(t)) if !t.is_signed);
    let string = desc.converted_type() == ConvertedType::UTF8
        || matches!(desc.logical_type_ref(), Some(LogicalType::String));
    Some(match (stats, desc.physical_type()) {
        (Statistics::Int32(s), PhysicalType::INT32) if signed_int => (
            Bound::I(*s.min_opt()? as i64),
            Bound::I(*s.max_opt()? as i64),
        ),
        (Statistics::Int64(s), PhysicalType::INT64) if signed_int => {
            (Bound::I(*s.min_opt()?), Bound::I(*s.max_opt()?))
        }
        (Statistics::Float(s), _) => (
            Bound::F(*s.min_opt()? as f64),
            Bound::F(*s.max_opt()? as f64),
        ),
        (Statistics::Double(s), _) => (Bound::F(*s.min_opt()?), Bound::F(*s.max_opt()?)),
        (Statistics::Boolean(s), _) => (Bound::B(*s.min_opt()?), Bound::B(*s.max_opt()?)),
        (Statistics::ByteArray(s), _) if string => (
            Bound::S(s.min_opt()?.data().to_vec()),
            Bound::S(s.max_opt()?.data().to_vec()),
        ),
        _ => return None,
    })
}

/// Whether some row of `rg` may satisfy all predicates (false only when statistics prove otherwise).
pub fn row_group_may_match(
    rg: &RowGroupMetaData,
    predicates: &[Predicate],
    url: &str,
) -> Result<bool> {
    use std::cmp::Ordering::*;
    for p in predicates {
        let schema = rg.schema_descr();
        let Some(ci) =
            (0..schema.num_columns()).find(|&i| schema.column(i).path().string() == p.column)
        else {
            return Err(StorageError::Schema {
                url: url.to_string(),
                reason: format!("predicate on unknown column `{}`", p.column),
            });
        };
        let col = rg.column(ci);
        let Some(stats) = col.statistics() else {
            continue;
        };
        if stats.null_count_opt() == Some(rg.num_rows() as u64) && rg.num_rows() > 0 {
            return Ok(false); // all nulls: no comparison holds
        }
        let Some((min, max)) = bounds(stats, &schema.column(ci)) else {
            continue;
        };
        let (Some(lo), Some(hi)) = (cmp(&min, &p.value), cmp(&max, &p.value)) else {
            continue;
        };
        let may = match p.op {
            CmpOp::Eq => lo != Greater && hi != Less,
            CmpOp::NotEq => !(lo == Equal && hi == Equal),
            CmpOp::Lt => lo == Less,
            CmpOp::LtEq => lo != Greater,
            CmpOp::Gt => hi == Greater,
            CmpOp::GtEq => hi != Less,
        };
        if !may {
            return Ok(false);
        }
    }
    Ok(true)
}
