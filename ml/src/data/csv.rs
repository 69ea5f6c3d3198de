//! Numeric CSV files to minibatches: one example per line, features and label column(s).
//! Files may be gzip-compressed (detected from their first bytes).

use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::source::Source;
use super::{DataError, MiniBatch};

/// What the label column(s) of a CSV file hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One column of class indices `0..n`, turned into one-hot labels of `n` columns.
    Classes(usize),
    /// `n` consecutive columns of regression targets, kept as they are.
    Regression(usize),
}

impl Target {
    fn columns(self) -> usize {
        match self {
            Target::Classes(_) => 1,
            Target::Regression(n) => n,
        }
    }

    fn label_width(self) -> usize {
        match self {
            Target::Classes(n) | Target::Regression(n) => n,
        }
    }
}

/// Where the label column(s) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelColumn {
    /// The label columns start at this (0-based) column.
    Index(usize),
    /// The label columns are the last ones of each line.
    Last,
}

/// How the file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Every line is data.
    None,
    /// The first `n` lines are skipped.
    Skip(usize),
    /// scikit-learn's bundled-data header `n_samples,n_features[,class names...]` (as in
    /// `iris.csv`: `150,4,setosa,versicolor,virginica`): the counts are checked against the data
    /// and the number of class names against the number of classes.
    Sklearn,
}

/// The header line of scikit-learn's bundled CSV files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SklearnHeader {
    /// Number of data lines announced.
    pub samples: usize,
    /// Number of feature columns announced.
    pub features: usize,
    /// Class names (empty for regression data).
    pub class_names: Vec<String>,
}

impl SklearnHeader {
    fn parse(line: &str, path: &Path) -> Result<Self, DataError> {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let number = |i: usize, what: &str| {
            fields
                .get(i)
                .and_then(|f| f.parse::<usize>().ok())
                .ok_or_else(|| DataError::Csv {
                    path: path.to_path_buf(),
                    line: 1,
                    what: format!(
                        "scikit-learn header field {} ({what}) is not a count: {line:?}",
                        i + 1
                    ),
                })
        };
        Ok(SklearnHeader {
            samples: number(0, "number of samples")?,
            features: number(1, "number of features")?,
            class_names: fields.iter().skip(2).map(|s| s.to_string()).collect(),
        })
    }
}

/// Reads the scikit-learn header line of `path` (see [`Header::Sklearn`]).
pub fn sklearn_header(path: impl AsRef<Path>) -> Result<SklearnHeader, DataError> {
    let path = path.as_ref();
    let mut src = Source::open(path)?;
    let mut line = Vec::new();
    if !src.read_line_into(&mut line)? {
        return Err(DataError::Csv {
            path: path.into(),
            line: 1,
            what: "empty file".into(),
        });
    }
    SklearnHeader::parse(&utf8(&line, path, 1)?, path)
}

/// Reads a scikit-learn bundled CSV file (header `n_samples,n_features,class names...`, then
/// features and the class index last): a classification set with one class per header name, or
/// a regression set with one target when the header names no classes.
pub fn read_sklearn_csv(path: impl AsRef<Path>) -> Result<(MiniBatch, SklearnHeader), DataError> {
    let header = sklearn_header(&path)?;
    let target = if header.class_names.is_empty() {
        Target::Regression(1)
    } else {
        Target::Classes(header.class_names.len())
    };
    let data = CsvReader::new(LabelColumn::Last, target)
        .header(Header::Sklearn)
        .read(path)?;
    Ok((data, header))
}

fn utf8(bytes: &[u8], path: &Path, line: u64) -> Result<String, DataError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| DataError::Csv {
        path: path.to_path_buf(),
        line,
        what: format!("not UTF-8 text: {e}"),
    })
}

/// Reads numeric CSV files into minibatches.
///
/// ```no_run
/// use ember_ml::data::{CsvReader, Header, LabelColumn, Target};
/// let digits = CsvReader::new(LabelColumn::Last, Target::Classes(10))
///     .header(Header::None)
///     .read("digits.csv.gz")?;
/// # Ok::<(), ember_ml::data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvReader {
    label_column: LabelColumn,
    target: Target,
    header: Header,
    delimiter: u8,
}

impl CsvReader {
    /// A reader with labels at `label_column` holding `target`, no header and `,` as delimiter.
    pub fn new(label_column: LabelColumn, target: Target) -> Self {
        CsvReader {
            label_column,
            target,
            header: Header::None,
            delimiter: b',',
        }
    }

    /// Sets how the file starts.
    pub fn header(mut self, header: Header) -> Self {
        self.header = header;
        self
    }

    /// Sets the field delimiter (`,` by default).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Reads the whole file into one minibatch.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<MiniBatch, DataError> {
        let path = path.as_ref();
        let mut batches = self.batches(path, usize::MAX)?;
        match batches.next() {
            Some(first) => {
                let first = first?;
                // With an unbounded batch size the only other item is a possible error.
                if let Some(next) = batches.next() {
                    next?;
                }
                Ok(first)
            }
            None => {
                // An empty data section: no columns to size the arrays from.
                let labels = self.target.label_width();
                MiniBatch::new(Array2::zeros((0, 0)), Array2::zeros((0, labels)))
            }
        }
    }

    /// Streams the file in minibatches of `batch_size` lines (the last may be smaller), without
    /// holding the whole file in memory.
    pub fn batches(
        &self,
        path: impl AsRef<Path>,
        batch_size: usize,
    ) -> Result<CsvBatches, DataError> {
        if batch_size == 0 {
            return Err(DataError::Shape("batch size must be at least 1".into()));
        }
        if let Target::Classes(0) | Target::Regression(0) = self.target {
            return Err(DataError::Shape(
                "a CSV target needs at least one class or column".into(),
            ));
        }
        let path = path.as_ref();
        let mut src = Source::open(path)?;
        let mut line = Vec::new();
        let mut line_no = 0u64;
        let mut sklearn = None;
        match self.header {
            Header::None => {}
            Header::Skip(n) => {
                for _ in 0..n {
                    if !src.read_line_into(&mut line)? {
                        break;
                    }
                    line_no += 1;
                }
            }
            Header::Sklearn => {
                if src.read_line_into(&mut line)? {
                    line_no = 1;
                    let header = SklearnHeader::parse(&utf8(&line, path, 1)?, path)?;
                    if let Target::Classes(n) = self.target {
                        if !header.class_names.is_empty() && header.class_names.len() != n {
                            return Err(DataError::Csv {
                                path: path.into(),
                                line: 1,
                                what: format!(
                                    "header names {} classes but {n} were requested",
                                    header.class_names.len()
                                ),
                            });
                        }
                    }
                    sklearn = Some(header);
                } else {
                    return Err(DataError::Csv {
                        path: path.into(),
                        line: 1,
                        what: "empty file: no scikit-learn header".into(),
                    });
                }
            }
        }
        Ok(CsvBatches {
            reader: self.clone(),
            src,
            path: path.to_path_buf(),
            batch_size,
            line_no,
            rows: 0,
            columns: None,
            sklearn,
            done: false,
            line,
        })
    }
}

/// Minibatches streamed from a CSV file; made by [`CsvReader::batches`]. Yields an error (and
/// then stops) at the first bad line.
pub struct CsvBatches {
    reader: CsvReader,
    src: Source,
    path: PathBuf,
    batch_size: usize,
    line_no: u64,
    rows: usize,
    columns: Option<usize>,
    sklearn: Option<SklearnHeader>,
    done: bool,
    line: Vec<u8>,
}

impl CsvBatches {
    fn err(&self, what: String) -> DataError {
        DataError::Csv {
            path: self.path.clone(),
            line: self.line_no,
            what,
        }
    }

    /// Parses the current line into `features` and `labels`.
    fn parse_line(
        &mut self,
        features: &mut Vec<f32>,
        labels: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let text = utf8(&self.line, &self.path, self.line_no)?;
        let delimiter = char::from(self.reader.delimiter);
        let mut values = Vec::with_capacity(self.columns.unwrap_or(16));
        for (i, field) in text.split(delimiter).enumerate() {
            let field = field.trim();
            let value: f32 = field
                .parse()
                .map_err(|_| self.err(format!("column {} is not a number: {field:?}", i + 1)))?;
            if !value.is_finite() {
                return Err(self.err(format!("column {} is not finite: {field:?}", i + 1)));
            }
            values.push(value);
        }
        let width = *self.columns.get_or_insert(values.len());
        if values.len() != width {
            return Err(self.err(format!(
                "{} columns where earlier lines have {width}",
                values.len()
            )));
        }
        let label_columns = self.reader.target.columns();
        let start = match self.reader.label_column {
            LabelColumn::Index(i) => i,
            LabelColumn::Last => width.saturating_sub(label_columns),
        };
        if start + label_columns > width || width <= label_columns {
            return Err(self.err(format!(
                "{width} columns cannot hold {label_columns} label column(s) from column {} \
                 and at least one feature",
                start + 1
            )));
        }
        if let Some(header) = &self.sklearn {
            if width - label_columns != header.features {
                return Err(self.err(format!(
                    "{} feature columns but the header announces {}",
                    width - label_columns,
                    header.features
                )));
            }
        }
        features.extend_from_slice(&values[..start]);
        features.extend_from_slice(&values[start + label_columns..]);
        match self.reader.target {
            Target::Regression(_) => {
                labels.extend_from_slice(&values[start..start + label_columns])
            }
            Target::Classes(n) => {
                let class = values[start];
                if class < 0.0 || class.fract() != 0.0 || class as usize >= n {
                    return Err(self.err(format!(
                        "label {class} in column {} is not a class index below {n}",
                        start + 1
                    )));
                }
                let offset = labels.len();
                labels.resize(offset + n, 0.0);
                labels[offset + class as usize] = 1.0;
            }
        }
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Option<MiniBatch>, DataError> {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut count = 0;
        while count < self.batch_size {
            let mut line = std::mem::take(&mut self.line);
            let more = self.src.read_line_into(&mut line);
            self.line = line;
            if !more? {
                self.done = true;
                break;
            }
            self.line_no += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.parse_line(&mut features, &mut labels)?;
            count += 1;
        }
        self.rows += count;
        if self.done {
            if let Some(header) = &self.sklearn {
                if header.samples != self.rows {
                    return Err(self.err(format!(
                        "{} data lines but the header announces {}",
                        self.rows, header.samples
                    )));
                }
            }
        }
        if count == 0 {
            return Ok(None);
        }
        let label_width = self.reader.target.label_width();
        let feature_width = features.len() / count;
        let features = Array2::from_shape_vec((count, feature_width), features)
            .map_err(|e| DataError::Shape(e.to_string()))?;
        let labels = Array2::from_shape_vec((count, label_width), labels)
            .map_err(|e| DataError::Shape(e.to_string()))?;
        MiniBatch::new(features, labels).map(Some)
    }
}

impl Iterator for CsvBatches {
    type Item = Result<MiniBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(batch) => batch.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
