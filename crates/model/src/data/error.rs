//! [`DataError`]: every way loading, building or cutting up a dataset can fail, each variant
//! naming what was wrong and where (1-based line, column name, limit).

use thiserror::Error;

/// Why a dataset could not be loaded, built or cut up.
#[derive(Debug, Error)]
pub enum DataError {
    /// A label is not one of the model's classes.
    #[error("label `{label}` is not a class of the model (its classes are: {classes})")]
    UnknownClass {
        /// The label (at most 40 characters of it).
        label: String,
        /// The model's class labels, comma-separated.
        classes: String,
    },
    /// The data's feature columns are not the model's.
    #[error("the data's feature columns do not match the model's: {detail}")]
    ColumnMismatch {
        /// Which columns are missing, unexpected or out of order.
        detail: String,
    },
    /// No built-in dataset has this name.
    #[error("unknown built-in dataset `{name}`; valid names: {valid}")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A built-in dataset did not decode into the expected shape.
    #[error("built-in dataset `{name}` is corrupt: {reason}")]
    CorruptBuiltin {
        /// Its name.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The file could not be opened or inspected.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than the configured limit.
    #[error("`{path}` has {size} bytes, more than the limit of {limit}")]
    FileTooLarge {
        /// The path given.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The input went on past the configured limit while being read.
    #[error("the CSV input is larger than the limit of {limit} bytes")]
    InputTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The CSV reader failed (for example on invalid UTF-8).
    #[error("CSV error on line {line}: {message}")]
    Csv {
        /// 1-based line (0 if unknown).
        line: u64,
        /// The reader's message.
        message: String,
    },
    /// The file has no header row.
    #[error("the CSV input is empty: a header row naming the columns is required")]
    EmptyFile,
    /// The file has a header but no data rows.
    #[error("the CSV input has a header row but no data rows")]
    HeaderOnly,
    /// Two columns share a name.
    #[error("column name `{name}` appears twice in the header (columns {first} and {second})")]
    DuplicateColumn {
        /// The name.
        name: String,
        /// 1-based column of its first occurrence.
        first: usize,
        /// 1-based column of the second.
        second: usize,
    },
    /// The header has more columns than allowed.
    #[error("the header has {columns} columns, more than the limit of {limit}")]
    TooManyColumns {
        /// Columns in the header.
        columns: usize,
        /// The limit.
        limit: usize,
    },
    /// A row is longer, in bytes, than allowed.
    #[error("line {line} has {bytes} bytes of data, more than the limit of {limit}")]
    RowTooLong {
        /// 1-based line.
        line: u64,
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The label column is not in the header.
    #[error("label column `{name}` is not in the header; available columns: {available}")]
    MissingLabelColumn {
        /// The name asked for.
        name: String,
        /// The header's columns, comma-separated.
        available: String,
    },
    /// The only column is the label.
    #[error("the CSV has no feature columns besides the label column `{label}`")]
    NoFeatures {
        /// The label column.
        label: String,
    },
    /// A row has a different number of fields than the header.
    #[error("line {line} has {found} fields but the header has {expected}")]
    RaggedRow {
        /// 1-based line.
        line: u64,
        /// Fields on the line.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// A feature cell is not a number.
    #[error("line {line}, column `{column}`: `{value}` is not a number")]
    NonNumeric {
        /// 1-based line.
        line: u64,
        /// Column name.
        column: String,
        /// The cell (shortened).
        value: String,
    },
    /// A feature cell is NaN or infinite.
    #[error("line {line}, column `{column}`: `{value}` is not a finite number")]
    NonFinite {
        /// 1-based line.
        line: u64,
        /// Column name.
        column: String,
        /// The cell (shortened).
        value: String,
    },
    /// A label cell is empty.
    #[error("line {line}: the label column `{column}` is empty")]
    EmptyLabel {
        /// 1-based line.
        line: u64,
        /// The label column.
        column: String,
    },
    /// Integer labels are not the contiguous range `0..k`.
    #[error("integer labels must be 0..k with every class present: {0}")]
    LabelRange(String),
    /// More distinct labels than allowed.
    #[error("the label column has more than {limit} distinct values")]
    TooManyClasses {
        /// The limit.
        limit: u32,
    },
    /// The dataset has no examples.
    #[error("the dataset is empty")]
    Empty,
    /// Features, labels and names disagree.
    #[error("inconsistent dataset: {0}")]
    Inconsistent(String),
    /// A standardizer was applied to data of another width.
    #[error("the standardizer was fitted on {expected} features but the data has {found}")]
    WidthMismatch {
        /// Features the standardizer knows.
        expected: usize,
        /// Features of the data.
        found: usize,
    },
    /// The test fraction of a split is not in `[0, 1]`.
    #[error("test fraction {0} is not between 0 and 1")]
    InvalidFraction(f64),
    /// The number of shards is 0 or more than there are examples.
    #[error("cannot cut {examples} examples into {shards} non-empty shards")]
    InvalidShards {
        /// Shards asked for.
        shards: usize,
        /// Examples available.
        examples: usize,
    },
    /// The Dirichlet concentration is not a positive finite number.
    #[error("Dirichlet concentration alpha must be positive and finite, got {0}")]
    InvalidAlpha(f64),
}
