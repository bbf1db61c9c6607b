//! The CSV loader: a data source's own labelled table.
//!
//! The first row is a header naming the columns (required, names unique). One column, chosen
//! by name, holds the label; every other column is a numeric feature. Labels may be
//! integers, used as class indices and then required to be exactly `0..k` with every class
//! present (a gap, such as 1-based labels, is refused rather than silently creating an
//! empty class), or arbitrary strings, mapped to class indices in the sorted (byte) order of
//! the distinct values. Cells are trimmed of surrounding whitespace.
//!
//! Input is untrusted, so limits are checked before the work they guard ([`CsvLimits`]): a
//! file's size before it is read, the bytes consumed while reading any reader, the header's
//! width before any row is parsed, each row's length, and the number of distinct labels.
//! Errors name the 1-based line and the column.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::labels::LabelInterner;
use super::{DataError, Dataset};

/// Longest cell value quoted back in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 40;

/// Size limits of the CSV loader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvLimits {
    /// Largest input in bytes (default 1 GiB).
    pub max_file_bytes: u64,
    /// Most columns, label included (default 100 000).
    pub max_columns: usize,
    /// Longest row in bytes of field data (default 16 MiB).
    pub max_row_bytes: usize,
}

impl Default for CsvLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            max_columns: 100_000,
            max_row_bytes: 16 << 20,
        }
    }
}

/// Loads the CSV file at `path` with the label in column `label_column`, under the default
/// [`CsvLimits`].
pub fn load_csv(path: impl AsRef<Path>, label_column: &str) -> Result<Dataset, DataError> {
    load_csv_with_limits(path, label_column, &CsvLimits::default())
}

/// Loads the CSV file at `path` under `limits`; a file over `limits.max_file_bytes` is refused
/// before anything is read.
pub fn load_csv_with_limits(
    path: impl AsRef<Path>,
    label_column: &str,
    limits: &CsvLimits,
) -> Result<Dataset, DataError> {
    parse_csv_reader(open_within(path.as_ref(), limits)?, label_column, limits)
}

/// Opens `path`, refusing a file over `limits.max_file_bytes` before anything is read.
fn open_within(path: &Path, limits: &CsvLimits) -> Result<File, DataError> {
    let io_error = |source| DataError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > limits.max_file_bytes {
        return Err(DataError::FileTooLarge {
            path: path.display().to_string(),
            size,
            limit: limits.max_file_bytes,
        });
    }
    Ok(file)
}

/// Parses CSV from any reader (see the module docs for the format), reading at most
/// `limits.max_file_bytes` bytes.
pub fn parse_csv_reader(
    reader: impl Read,
    label_column: &str,
    limits: &CsvLimits,
) -> Result<Dataset, DataError> {
    parse_csv_reader_for(reader, label_column, limits, None)
}

/// Loads the CSV file at `path` for a model whose classes are labelled `classes` (class 0
/// first): every label must be one of them (an integer label matches by value) and the
/// dataset has exactly those classes, whichever of them its rows hold. Default limits.
pub fn load_csv_for_classes(
    path: impl AsRef<Path>,
    label_column: &str,
    classes: &[String],
) -> Result<Dataset, DataError> {
    let limits = CsvLimits::default();
    let file = open_within(path.as_ref(), &limits)?;
    parse(file, label_column, &limits, Some(classes), false).map(|(data, _)| data)
}

/// [`parse_csv_reader`], with the classes given (see [`load_csv_for_classes`]) or inferred
/// from the labels (`None`).
pub fn parse_csv_reader_for(
    reader: impl Read,
    label_column: &str,
    limits: &CsvLimits,
    classes: Option<&[String]>,
) -> Result<Dataset, DataError> {
    parse(reader, label_column, limits, classes, false).map(|(data, _)| data)
}

/// Loads the CSV file at `path` for prediction with a model whose classes are labelled
/// `classes`: as [`load_csv_for_classes`], except that a file without the column
/// `label_column` is read too, as features only. Returns the dataset and whether it has
/// labels (without, every example is given class 0).
pub fn load_csv_maybe_labelled(
    path: impl AsRef<Path>,
    label_column: &str,
    classes: &[String],
) -> Result<(Dataset, bool), DataError> {
    let limits = CsvLimits::default();
    let file = open_within(path.as_ref(), &limits)?;
    parse(file, label_column, &limits, Some(classes), true)
}

/// The parser behind every entry point: `classes` given or inferred, the label column
/// required or (`optional`) possibly absent; returns whether labels were read.
fn parse(
    reader: impl Read,
    label_column: &str,
    limits: &CsvLimits,
    classes: Option<&[String]>,
    optional: bool,
) -> Result<(Dataset, bool), DataError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true) // ragged rows are reported by us, with the line and the counts
        .trim(csv::Trim::All)
        .from_reader(LimitedReader {
            inner: reader,
            read: 0,
            limit: limits.max_file_bytes,
        });

    let header = match csv.headers() {
        Ok(header) => header.clone(),
        Err(e) => return Err(csv_error(&e, csv.get_ref())),
    };
    let columns = check_header(&header, limits)?;
    let label_at = columns.iter().position(|c| c == label_column);
    let labelled = label_at.is_some();
    if label_at.is_none() && !(optional && classes.is_some()) {
        return Err(DataError::MissingLabelColumn {
            name: label_column.to_owned(),
            available: columns.join(", "),
        });
    }
    if labelled && columns.len() == 1 {
        return Err(DataError::NoFeatures {
            label: label_column.to_owned(),
        });
    }

    let mut values = Vec::new();
    let mut labels = LabelInterner::default();
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(&e, csv.get_ref())),
        }
        let line = record.position().map_or(0, csv::Position::line);
        let bytes = record.as_slice().len();
        if bytes > limits.max_row_bytes {
            return Err(DataError::RowTooLong {
                line,
                bytes,
                limit: limits.max_row_bytes,
            });
        }
        if record.len() != columns.len() {
            return Err(DataError::RaggedRow {
                line,
                found: record.len(),
                expected: columns.len(),
            });
        }
        if !labelled {
            labels.push("")?;
        }
        for (cell, column) in record.iter().zip(&columns) {
            if labelled && column == label_column {
                if cell.is_empty() {
                    return Err(DataError::EmptyLabel {
                        line,
                        column: column.clone(),
                    });
                }
                labels.push(cell)?;
            } else {
                values.push(parse_cell(cell, line, column)?);
            }
        }
    }
    if labels.is_empty() {
        return Err(DataError::HeaderOnly);
    }

    let (y, class_labels) = match classes {
        Some(given) if !labelled => (vec![0; labels.len()], given.to_vec()),
        Some(given) => (labels.into_given_classes(given)?, given.to_vec()),
        None => {
            let (y, _, names) = labels.into_classes()?;
            (y, names)
        }
    };
    let mut feature_names = columns;
    if let Some(at) = label_at {
        feature_names.remove(at);
    }
    let x = Array2::from_shape_vec((y.len(), feature_names.len()), values)
        .map_err(|e| DataError::Inconsistent(e.to_string()))?;
    let count = u32::try_from(class_labels.len()).unwrap_or(u32::MAX);
    let data = Dataset::new(x, y, count, feature_names)?.with_class_labels(class_labels)?;
    Ok((data, labelled))
}

/// Checks the header's presence, width and names; returns the column names.
fn check_header(header: &csv::StringRecord, limits: &CsvLimits) -> Result<Vec<String>, DataError> {
    if header.is_empty() {
        return Err(DataError::EmptyFile);
    }
    if header.len() > limits.max_columns {
        return Err(DataError::TooManyColumns {
            columns: header.len(),
            limit: limits.max_columns,
        });
    }
    if header.as_slice().len() > limits.max_row_bytes {
        return Err(DataError::RowTooLong {
            line: 1,
            bytes: header.as_slice().len(),
            limit: limits.max_row_bytes,
        });
    }
    let mut seen = HashMap::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(DataError::DuplicateColumn {
                name: name.to_owned(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    Ok(header.iter().map(str::to_owned).collect())
}

/// One feature cell as a finite number.
fn parse_cell(cell: &str, line: u64, column: &str) -> Result<f64, DataError> {
    let quote = || cell.chars().take(MAX_QUOTED_CHARS).collect::<String>();
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(DataError::NonFinite {
            line,
            column: column.to_owned(),
            value: quote(),
        }),
        Err(_) => Err(DataError::NonNumeric {
            line,
            column: column.to_owned(),
            value: quote(),
        }),
    }
}

/// A CSV reader error as a [`DataError`], telling the size limit apart from a format error.
fn csv_error<R>(e: &csv::Error, reader: &LimitedReader<R>) -> DataError {
    if reader.read > reader.limit {
        return DataError::InputTooLarge {
            limit: reader.limit,
        };
    }
    DataError::Csv {
        line: e.position().map_or(0, csv::Position::line),
        message: e.to_string(),
    }
}

/// A reader that fails once more than `limit` bytes have come through it.
struct LimitedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Allow one byte past the limit, so reaching it exactly is not an error.
        let allowed = self.limit.saturating_sub(self.read).saturating_add(1);
        let take = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..take])?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "input exceeds {} bytes",
                self.limit
            )));
        }
        Ok(n)
    }
}

/// Writes `data` as the CSV [`parse_csv_reader`] reads: a header of the feature names and
/// then `label_column`, one row per example with its class's label (the class index for
/// integer-labelled data). Features are
/// written in Rust's shortest round-trip form, so reading the file back gives the same
/// numbers bit for bit. A feature named like the label column is refused (the file would
/// not read back).
pub fn write_csv(data: &Dataset, label_column: &str, out: impl io::Write) -> io::Result<()> {
    if data.feature_names.iter().any(|n| n == label_column) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a feature is named `{label_column}`, the label column: the file would not read back"),
        ));
    }
    let mut w = csv::Writer::from_writer(out);
    w.write_record(data.feature_names.iter().map(String::as_str).chain([label_column]))?;
    let mut record = Vec::with_capacity(data.features() + 1);
    for (row, &label) in data.x.rows().into_iter().zip(&data.y) {
        record.clear();
        record.extend(row.iter().map(|v| v.to_string()));
        match data.class_labels.get(label as usize) {
            Some(name) => record.push(name.clone()),
            None => record.push(label.to_string()),
        }
        w.write_record(&record)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, label: &str) -> Result<Dataset, DataError> {
        parse_csv_reader(text.as_bytes(), label, &CsvLimits::default())
    }

    #[test]
    fn classes_given_and_labels_optional() {
        let classes: Vec<String> = vec!["B".into(), "M".into()];
        let (d, labelled) =
            super::parse(&b"a,b\n1,2\n3,4\n"[..], "label", &CsvLimits::default(), Some(&classes), true).expect("features only");
        assert!(!labelled);
        assert_eq!((d.len(), d.features(), d.classes), (2, 2, 2));
        let (d, labelled) =
            super::parse(&b"a,y\n1,M\n3,M\n"[..], "y", &CsvLimits::default(), Some(&classes), true).expect("labelled");
        assert!(labelled);
        assert_eq!(d.y, vec![1, 1]);
        assert_eq!(d.class_labels, classes);
        let err = super::parse(&b"a,y\n1,X\n"[..], "y", &CsvLimits::default(), Some(&classes), true).expect_err("unknown");
        assert!(err.to_string().contains("`X`"), "{err}");
        assert!(matches!(
            super::parse(&b"a,b\n1,2\n"[..], "label", &CsvLimits::default(), Some(&classes), false),
            Err(DataError::MissingLabelColumn { .. })
        ));
    }

    #[test]
    fn integer_labels() {
        let d = parse("a,label,b\n1.5,1,2\n-3,0,4e2\n 5 , 1 , 6\n", "label").expect("valid CSV");
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.x, ndarray::array![[1.5, 2.0], [-3.0, 400.0], [5.0, 6.0]]);
        assert_eq!(d.y, vec![1, 0, 1]);
        assert_eq!(d.classes, 2);
    }

    #[test]
    fn string_labels_in_sorted_order() {
        let d = parse(
            "x,kind\n1,setosa\n2,virginica\n3,versicolor\n4,setosa\n",
            "kind",
        )
        .expect("valid CSV");
        assert_eq!(d.y, vec![0, 2, 1, 0]);
        assert_eq!(d.classes, 3);
        // Negative integers are not class indices: they are strings.
        let d = parse("x,y\n1,-1\n2,1\n", "y").expect("valid CSV");
        assert_eq!(d.y, vec![0, 1]);
    }

    #[test]
    fn gap_in_integer_labels() {
        let err = parse("x,y\n1,1\n2,2\n", "y").expect_err("class 0 missing");
        assert!(
            matches!(&err, DataError::LabelRange(m) if m.contains("class 0")),
            "{err}"
        );
    }

    #[test]
    fn ragged_row() {
        let err = parse("a,b,y\n1,2,0\n3,1\n", "y").expect_err("ragged");
        assert!(
            matches!(
                err,
                DataError::RaggedRow {
                    line: 3,
                    found: 2,
                    expected: 3
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn non_numeric_cell() {
        let err = parse("a,b,y\n1,2,0\n3,oops,1\n", "y").expect_err("non-numeric");
        assert!(
            matches!(&err, DataError::NonNumeric { line: 3, column, value } if column == "b" && value == "oops")
        );
        let err = parse("a,b,y\n1,,0\n", "y").expect_err("empty cell");
        assert!(
            matches!(&err, DataError::NonNumeric { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("line 2, column `b`"), "{err}");
    }

    #[test]
    fn non_finite_cells() {
        for cell in ["NaN", "inf", "-infinity", "1e400"] {
            let err = parse(&format!("a,y\n{cell},0\n"), "y").expect_err("not finite");
            assert!(
                matches!(&err, DataError::NonFinite { line: 2, column, .. } if column == "a"),
                "{cell}: {err}"
            );
        }
    }

    #[test]
    fn empty_and_header_only() {
        assert!(matches!(parse("", "y"), Err(DataError::EmptyFile)));
        assert!(matches!(parse("\n\n", "y"), Err(DataError::EmptyFile)));
        assert!(matches!(parse("a,y\n", "y"), Err(DataError::HeaderOnly)));
    }

    #[test]
    fn duplicate_columns() {
        let err = parse("a,b,a,y\n1,2,3,0\n", "y").expect_err("duplicate");
        assert!(
            matches!(&err, DataError::DuplicateColumn { name, first: 1, second: 3 } if name == "a"),
            "{err}"
        );
    }

    #[test]
    fn missing_label_column_lists_columns() {
        let err = parse("a,b\n1,2\n", "label")
            .expect_err("no label")
            .to_string();
        assert!(err.contains("`label`") && err.contains("a, b"), "{err}");
        assert!(matches!(
            parse("y\n1\n", "y"),
            Err(DataError::NoFeatures { .. })
        ));
        let err = parse("a,y\n1,\n", "y").expect_err("empty label");
        assert!(
            matches!(err, DataError::EmptyLabel { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn limits() {
        let text = "a,b,y\n1,2,0\n3,4,1\n";
        let tight = |max_file_bytes, max_columns, max_row_bytes| CsvLimits {
            max_file_bytes,
            max_columns,
            max_row_bytes,
        };
        assert!(parse_csv_reader(text.as_bytes(), "y", &tight(text.len() as u64, 3, 100)).is_ok());
        let err =
            parse_csv_reader(text.as_bytes(), "y", &tight(10, 3, 100)).expect_err("too large");
        assert!(
            matches!(err, DataError::InputTooLarge { limit: 10 }),
            "{err}"
        );
        let err =
            parse_csv_reader(text.as_bytes(), "y", &tight(1000, 2, 100)).expect_err("too wide");
        assert!(
            matches!(
                err,
                DataError::TooManyColumns {
                    columns: 3,
                    limit: 2
                }
            ),
            "{err}"
        );
        let long = "a,y\n1,0\n1234567890,1\n";
        let err = parse_csv_reader(long.as_bytes(), "y", &tight(1000, 2, 8)).expect_err("long row");
        assert!(
            matches!(
                err,
                DataError::RowTooLong {
                    line: 3,
                    bytes: 11,
                    limit: 8
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = parse_csv_reader(&b"a,y\n1,0\n2,\xff\n"[..], "y", &CsvLimits::default())
            .expect_err("bad UTF-8");
        assert!(matches!(err, DataError::Csv { line: 3, .. }), "{err}");
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data.csv");
        std::fs::write(&path, "a,y\n1,yes\n2,no\n").expect("write");
        let d = load_csv(&path, "y").expect("valid file");
        assert_eq!(d.y, vec![1, 0]);
        let limits = CsvLimits {
            max_file_bytes: 5,
            ..CsvLimits::default()
        };
        let err = load_csv_with_limits(&path, "y", &limits).expect_err("too large");
        assert!(
            matches!(
                err,
                DataError::FileTooLarge {
                    size: 15,
                    limit: 5,
                    ..
                }
            ),
            "{err}"
        );
        let err = load_csv(dir.path().join("missing.csv"), "y").expect_err("missing");
        assert!(
            matches!(&err, DataError::Io { path, .. } if path.ends_with("missing.csv")),
            "{err}"
        );
    }

    #[test]
    fn a_written_dataset_reads_back_bit_for_bit() {
        let data = crate::data::builtin("breast-cancer").expect("built-in");
        let mut bytes = Vec::new();
        write_csv(&data, "label", &mut bytes).expect("write");
        let back = parse_csv_reader(&bytes[..], "label", &CsvLimits::default()).expect("read");
        assert_eq!(back, data);
        assert!(write_csv(&data, &data.feature_names[0], Vec::new()).is_err(), "a feature named like the label");
    }
}
