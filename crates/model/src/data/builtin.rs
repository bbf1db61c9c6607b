//! Datasets compiled into the binary, from smartcore's embedded copies of the classic UCI
//! sets: `breast-cancer` (Wisconsin diagnostic, 569 × 30, 2 classes) and `digits` (8 × 8
//! handwritten digits, 1797 × 64, 10 classes). They need no files, so devnets and tests run
//! anywhere. Features are raw (not standardized).

use ndarray::Array2;
use smartcore::dataset::{breast_cancer, digits};

use super::{DataError, Dataset};

/// Names accepted by [`builtin()`].
pub const BUILTIN_DATASETS: &[&str] = &["breast-cancer", "digits"];

/// The built-in dataset called `name` (one of [`BUILTIN_DATASETS`]).
pub fn builtin(name: &str) -> Result<Dataset, DataError> {
    match name {
        "breast-cancer" => {
            let d = breast_cancer::load_dataset();
            let labels = d.target.iter().map(|&t| t as f32).collect();
            assemble(
                "breast-cancer",
                (d.num_samples, d.num_features),
                d.data,
                labels,
                2,
                d.feature_names,
            )
        }
        "digits" => {
            let d = digits::load_dataset();
            // smartcore labels the digit pixels with iris column names; name them properly.
            let names = (0..64)
                .map(|i| format!("pixel_{}_{}", i / 8, i % 8))
                .collect();
            assemble(
                "digits",
                (d.num_samples, d.num_features),
                d.data,
                d.target,
                10,
                names,
            )
        }
        _ => Err(DataError::UnknownDataset {
            name: name.to_owned(),
            valid: BUILTIN_DATASETS.join(", "),
        }),
    }
}

/// Checks the decoded shape and labels and builds the dataset.
fn assemble(
    name: &'static str,
    shape: (usize, usize),
    data: Vec<f32>,
    labels: Vec<f32>,
    classes: u32,
    feature_names: Vec<String>,
) -> Result<Dataset, DataError> {
    let corrupt = |reason: String| DataError::CorruptBuiltin { name, reason };
    let x =
        Array2::from_shape_vec(shape, data.into_iter().map(f64::from).collect()).map_err(|e| {
            corrupt(format!(
                "features do not form a {} × {} matrix: {e}",
                shape.0, shape.1
            ))
        })?;
    let y = labels
        .iter()
        .map(|&t| {
            if t.fract() == 0.0 && t >= 0.0 && t < classes as f32 {
                Ok(t as u32)
            } else {
                Err(corrupt(format!("label {t} is not a class in 0..{classes}")))
            }
        })
        .collect::<Result<Vec<u32>, DataError>>()?;
    Dataset::new(x, y, classes, feature_names).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let bc = builtin("breast-cancer").expect("embedded");
        assert_eq!((bc.len(), bc.features(), bc.classes), (569, 30, 2));
        assert_eq!(bc.feature_names[0], "mean radius");
        let ones = bc.y.iter().filter(|&&c| c == 1).count();
        assert_eq!((bc.len() - ones, ones), (212, 357));

        let digits = builtin("digits").expect("embedded");
        assert_eq!(
            (digits.len(), digits.features(), digits.classes),
            (1797, 64, 10)
        );
        assert_eq!(digits.feature_names[9], "pixel_1_1");
        for class in 0..10 {
            assert!(digits.y.iter().filter(|&&c| c == class).count() > 150);
        }
        assert!(digits.x.iter().all(|&v| (0.0..=16.0).contains(&v)));
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = builtin("iris").expect_err("not built in").to_string();
        assert!(
            err.contains("iris") && err.contains("breast-cancer, digits"),
            "{err}"
        );
    }
}
