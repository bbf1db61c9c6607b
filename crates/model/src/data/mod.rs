//! Labelled datasets: the in-memory [`Dataset`], where datasets come from, and how they are
//! prepared and cut up.
//!
//! Data enters through [`builtin()`] (sets compiled into the binary, for devnets and tests) or
//! [`load_csv`] / [`parse_csv_reader`] (a data source's own file, read under size limits).
//! [`Standardizer`] rescales features with statistics fitted on training data only;
//! [`Dataset::split`] makes a train/test split and [`Dataset::partition_iid`] /
//! [`Dataset::partition_dirichlet`] cut a dataset into shards for simulated data sources.
//! Every shuffle is driven by a `ChaCha20Rng` seeded by the caller, so the same seed gives the
//! same split or shards on every platform.

mod builtin;
mod csv_file;
mod error;
mod labels;
mod partition;
mod transform;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

pub use builtin::{BUILTIN_DATASETS, builtin};
pub use csv_file::{
    CsvLimits, load_csv, load_csv_for_classes, load_csv_maybe_labelled, load_csv_with_limits, parse_csv_reader,
    parse_csv_reader_for, write_csv,
};
pub use error::DataError;
pub use labels::MAX_CSV_CLASSES;
pub use transform::{apply_transform, check_columns, fit_transform};

/// Examples as rows of features with a class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Features, one example per row.
    pub x: Array2<f64>,
    /// Class of each example, in `0..classes`.
    pub y: Vec<u32>,
    /// Number of classes of the task (shards keep the full task's count).
    pub classes: u32,
    /// Name of each feature column.
    pub feature_names: Vec<String>,
    /// The label value of each class as the source wrote it (`"0"`, `"1"`, … for integer
    /// labels), class 0 first.
    pub class_labels: Vec<String>,
}

impl Dataset {
    /// A dataset, checked for consistency: one label per row, one name per column, labels
    /// below `classes`, every feature finite. Classes are labelled `"0"`, `"1"`, …
    /// ([`Dataset::with_class_labels`] names them otherwise).
    pub fn new(
        x: Array2<f64>,
        y: Vec<u32>,
        classes: u32,
        feature_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if x.nrows() != y.len() {
            return Err(DataError::Inconsistent(format!(
                "{} rows of features but {} labels",
                x.nrows(),
                y.len()
            )));
        }
        if x.ncols() != feature_names.len() {
            return Err(DataError::Inconsistent(format!(
                "{} feature columns but {} feature names",
                x.ncols(),
                feature_names.len()
            )));
        }
        if let Some(row) = y.iter().position(|&label| label >= classes) {
            return Err(DataError::Inconsistent(format!(
                "example {row} has label {} but there are only {classes} classes",
                y[row]
            )));
        }
        if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(DataError::Inconsistent(format!(
                "feature `{}` of example {row} is not finite",
                feature_names[col]
            )));
        }
        Ok(Self {
            x,
            y,
            classes,
            feature_names,
            class_labels: (0..classes).map(|c| c.to_string()).collect(),
        })
    }

    /// The dataset with its classes labelled `labels` (one per class, class 0 first).
    pub fn with_class_labels(mut self, labels: Vec<String>) -> Result<Self, DataError> {
        if labels.len() != self.classes as usize {
            return Err(DataError::Inconsistent(format!(
                "{} class labels for {} classes",
                labels.len(),
                self.classes
            )));
        }
        self.class_labels = labels;
        Ok(self)
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of features per example.
    pub fn features(&self) -> usize {
        self.x.ncols()
    }

    /// The examples at `rows`, in that order, with the same classes and feature names.
    /// Every index must be below `len()` (callers in this module build them from `0..len()`).
    fn subset(&self, rows: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select(Axis(0), rows),
            y: rows.iter().map(|&i| self.y[i]).collect(),
            classes: self.classes,
            feature_names: self.feature_names.clone(),
            class_labels: self.class_labels.clone(),
        }
    }
}

/// Per-feature mean and standard deviation, fitted on one dataset and applied to others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Population standard deviation of each feature; 1 for a (numerically) constant one, so
    /// it maps to 0 instead of dividing by zero.
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits mean and standard deviation of every feature of `data`.
    pub fn fit(data: &Dataset) -> Result<Self, DataError> {
        if data.is_empty() {
            return Err(DataError::Empty);
        }
        let n = data.x.nrows() as f64;
        let mut mean = Vec::with_capacity(data.features());
        let mut std = Vec::with_capacity(data.features());
        for column in data.x.columns() {
            let m = column.sum() / n;
            let var = column.fold(0.0, |acc, &v| acc + (v - m) * (v - m)) / n;
            let s = var.sqrt();
            mean.push(m);
            std.push(if s > 1e-12 * m.abs().max(1.0) { s } else { 1.0 });
        }
        Ok(Self { mean, std })
    }

    /// Rescales every feature of `data` in place to `(x − mean) / std`.
    pub fn apply(&self, data: &mut Dataset) -> Result<(), DataError> {
        if self.mean.len() != data.features() || self.std.len() != data.features() {
            return Err(DataError::WidthMismatch {
                expected: self.mean.len().min(self.std.len()),
                found: data.features(),
            });
        }
        for mut row in data.x.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn new_checks_consistency() {
        assert!(Dataset::new(array![[1.0], [2.0]], vec![0], 2, names(1)).is_err());
        assert!(Dataset::new(array![[1.0], [2.0]], vec![0, 1], 2, names(2)).is_err());
        assert!(Dataset::new(array![[1.0], [2.0]], vec![0, 2], 2, names(1)).is_err());
        let err = Dataset::new(array![[1.0], [f64::NAN]], vec![0, 1], 2, names(1));
        assert!(
            matches!(err, Err(DataError::Inconsistent(m)) if m.contains("f0") && m.contains("example 1"))
        );
        let d =
            Dataset::new(array![[1.0, 2.0], [3.0, 4.0]], vec![0, 1], 2, names(2)).expect("valid");
        assert_eq!((d.len(), d.features(), d.is_empty()), (2, 2, false));
    }

    #[test]
    fn standardizer() {
        let mut d =
            Dataset::new(array![[1.0, 5.0], [3.0, 5.0]], vec![0, 1], 2, names(2)).expect("valid");
        let s = Standardizer::fit(&d).expect("non-empty");
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 1.0]); // second column is constant
        s.apply(&mut d).expect("same width");
        assert_eq!(d.x, array![[-1.0, 0.0], [1.0, 0.0]]);
        let mut narrow = Dataset::new(array![[1.0]], vec![0], 2, names(1)).expect("valid");
        assert!(matches!(
            s.apply(&mut narrow),
            Err(DataError::WidthMismatch {
                expected: 2,
                found: 1
            })
        ));
        let empty = Dataset::new(Array2::zeros((0, 2)), vec![], 2, names(2)).expect("valid");
        assert!(matches!(Standardizer::fit(&empty), Err(DataError::Empty)));
    }
}
