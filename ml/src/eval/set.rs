//! Several evaluations fed by one pass over the data: a classifier's confusion matrix and its
//! one-vs-all ROC from the same predictions, as DL4J's `doEvaluation(data, evaluations...)`.

use std::fmt;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::{Classification, EvalError, Evaluation, Regression, Roc, RocMultiClass};

/// Any one of the evaluations of this module, so that different kinds can travel and be stored
/// together. In JSON an object keyed by the kind (`{"classification": {...}}`); externally
/// tagged, because the engine moves values between processes with bincode, which cannot read
/// internally or adjacently tagged enums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnyEvaluation {
    /// Confusion matrix and the metrics derived from it.
    Classification(Classification),
    /// Binary ROC.
    Roc(Roc),
    /// One-vs-all ROC.
    RocMultiClass(RocMultiClass),
    /// Regression metrics.
    Regression(Regression),
}

impl AnyEvaluation {
    /// An evaluation with the same settings and no examples (cheap: nothing counted is copied).
    fn empty_like(&self) -> Result<AnyEvaluation, EvalError> {
        Ok(match self {
            AnyEvaluation::Classification(c) => {
                let mut e = c.clone();
                e.reset();
                AnyEvaluation::Classification(e)
            }
            AnyEvaluation::Roc(_) => AnyEvaluation::Roc(Roc::new()),
            AnyEvaluation::RocMultiClass(r) => {
                AnyEvaluation::RocMultiClass(RocMultiClass::new(r.num_classes())?)
            }
            AnyEvaluation::Regression(r) => {
                let mut e = r.clone();
                e.reset();
                AnyEvaluation::Regression(e)
            }
        })
    }

    /// The kind, as the JSON key names it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyEvaluation::Classification(_) => "classification",
            AnyEvaluation::Roc(_) => "roc",
            AnyEvaluation::RocMultiClass(_) => "roc_multi_class",
            AnyEvaluation::Regression(_) => "regression",
        }
    }

    fn inner(&self) -> &dyn fmt::Display {
        match self {
            AnyEvaluation::Classification(e) => e,
            AnyEvaluation::Roc(e) => e,
            AnyEvaluation::RocMultiClass(e) => e,
            AnyEvaluation::Regression(e) => e,
        }
    }
}

macro_rules! any_from {
    ($($t:ident),*) => {$(
        impl From<$t> for AnyEvaluation {
            fn from(e: $t) -> Self {
                AnyEvaluation::$t(e)
            }
        }
    )*};
}
any_from!(Classification, Roc, RocMultiClass, Regression);

impl Evaluation for AnyEvaluation {
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        match self {
            AnyEvaluation::Classification(e) => e.eval(labels, predictions, mask),
            AnyEvaluation::Roc(e) => e.eval(labels, predictions, mask),
            AnyEvaluation::RocMultiClass(e) => e.eval(labels, predictions, mask),
            AnyEvaluation::Regression(e) => e.eval(labels, predictions, mask),
        }
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        match (self, other) {
            (AnyEvaluation::Classification(a), AnyEvaluation::Classification(b)) => a.merge(b),
            (AnyEvaluation::Roc(a), AnyEvaluation::Roc(b)) => a.merge(b),
            (AnyEvaluation::RocMultiClass(a), AnyEvaluation::RocMultiClass(b)) => a.merge(b),
            (AnyEvaluation::Regression(a), AnyEvaluation::Regression(b)) => a.merge(b),
            (a, b) => Err(EvalError::Incompatible(format!(
                "a {} evaluation with a {} one",
                a.kind(),
                b.kind()
            ))),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyEvaluation::Classification(e) => e.reset(),
            AnyEvaluation::Roc(e) => e.reset(),
            AnyEvaluation::RocMultiClass(e) => e.reset(),
            AnyEvaluation::Regression(e) => e.reset(),
        }
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AnyEvaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner().fmt(f)
    }
}

/// Evaluations computed together, each seeing every minibatch (one forward pass feeds all).
///
/// ```
/// use ember_ml::eval::{Classification, Evaluation, Evaluations, RocMultiClass};
/// use ndarray::array;
/// let mut set = Evaluations::new()
///     .with(Classification::new(2)?)
///     .with(RocMultiClass::new(2)?);
/// set.eval(array![[1.0, 0.0], [0.0, 1.0]].view(), array![[0.8, 0.2], [0.4, 0.6]].view(), None)?;
/// assert_eq!(set.classification().unwrap().accuracy(), 1.0);
/// assert_eq!(set.roc_multi_class().unwrap().auc(0), 1.0);
/// # Ok::<(), ember_ml::eval::EvalError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluations {
    evaluations: Vec<AnyEvaluation>,
}

impl Evaluations {
    /// An empty set.
    pub fn new() -> Self {
        Evaluations::default()
    }

    /// The set with `e` added at the end.
    pub fn with(mut self, e: impl Into<AnyEvaluation>) -> Self {
        self.evaluations.push(e.into());
        self
    }

    /// The evaluations, in the order they were added.
    pub fn all(&self) -> &[AnyEvaluation] {
        &self.evaluations
    }

    /// Number of evaluations.
    pub fn len(&self) -> usize {
        self.evaluations.len()
    }

    /// True when the set holds no evaluation.
    pub fn is_empty(&self) -> bool {
        self.evaluations.is_empty()
    }

    /// The first classification evaluation of the set.
    pub fn classification(&self) -> Option<&Classification> {
        self.evaluations.iter().find_map(|e| match e {
            AnyEvaluation::Classification(c) => Some(c),
            _ => None,
        })
    }

    /// The first binary ROC evaluation of the set.
    pub fn roc(&self) -> Option<&Roc> {
        self.evaluations.iter().find_map(|e| match e {
            AnyEvaluation::Roc(c) => Some(c),
            _ => None,
        })
    }

    /// The first one-vs-all ROC evaluation of the set.
    pub fn roc_multi_class(&self) -> Option<&RocMultiClass> {
        self.evaluations.iter().find_map(|e| match e {
            AnyEvaluation::RocMultiClass(c) => Some(c),
            _ => None,
        })
    }

    /// The first regression evaluation of the set.
    pub fn regression(&self) -> Option<&Regression> {
        self.evaluations.iter().find_map(|e| match e {
            AnyEvaluation::Regression(c) => Some(c),
            _ => None,
        })
    }
}

impl Evaluation for Evaluations {
    /// Adds the minibatch to every evaluation of the set; when one of them refuses it, none
    /// counts it (each first evaluates into an empty copy of itself, merged only once all
    /// succeeded). An empty set is an error: it would evaluate nothing.
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        if self.evaluations.is_empty() {
            return Err(EvalError::Config(
                "an empty set of evaluations: add one with Evaluations::with".into(),
            ));
        }
        let parts = self
            .evaluations
            .iter()
            .map(|e| {
                let mut part = e.empty_like()?;
                part.eval(labels, predictions, mask)?;
                Ok(part)
            })
            .collect::<Result<Vec<_>, EvalError>>()?;
        for (e, part) in self.evaluations.iter_mut().zip(&parts) {
            e.merge(part)?;
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        if other.len() != self.len() {
            return Err(EvalError::Incompatible(format!(
                "a set of {} evaluations with one of {}",
                self.len(),
                other.len()
            )));
        }
        // Check every pair first, so a failed merge changes nothing.
        for (a, b) in self.evaluations.iter().zip(&other.evaluations) {
            if a.kind() != b.kind() {
                return Err(EvalError::Incompatible(format!(
                    "a {} evaluation with a {} one",
                    a.kind(),
                    b.kind()
                )));
            }
        }
        let mut merged = self.clone();
        for (a, b) in merged.evaluations.iter_mut().zip(&other.evaluations) {
            a.merge(b)?;
        }
        *self = merged;
        Ok(())
    }

    fn reset(&mut self) {
        self.evaluations.iter_mut().for_each(AnyEvaluation::reset);
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Evaluations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.evaluations.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
