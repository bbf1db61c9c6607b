//! The agreed input transform: how raw examples become model inputs on every node.
//!
//! A chain's genesis may carry an [`InputTransform`] (`[model.input]`): the feature columns
//! in the model's order, a centre and a scale per feature, and the label of each class.
//! [`fit_transform`] computes one from a dataset (the mean and population standard
//! deviation of each feature, and its class labels), for whoever writes the genesis.
//! [`apply_transform`] is what a node, `predict` and an evaluation do with raw data: check
//! the columns ([`check_columns`]: names, order and count, each difference named), map the
//! data's class labels onto the model's classes, and rescale every feature. Nothing is
//! fitted on a node's own data, so every node feeds the model identically scaled inputs.

use learnchain_proto::Decimal9;
use learnchain_proto::model::InputTransform;

use super::labels::class_of_labels;
use super::{DataError, Dataset, Standardizer};

/// Most column names quoted in one mismatch message.
const MAX_NAMED_COLUMNS: usize = 8;

/// The transform that standardizes `data`: each feature's mean as its centre and its
/// population standard deviation as its scale (1 for a constant feature, which then maps to
/// 0), both rounded to billionths; the data's class labels as the classes.
pub fn fit_transform(data: &Dataset) -> Result<InputTransform, DataError> {
    let fitted = Standardizer::fit(data)?;
    let decimal = |v: f64, what: &str, name: &str| {
        Decimal9::from_f64(v).map_err(|e| {
            DataError::Inconsistent(format!("the {what} of feature `{name}` cannot be carried: {e}"))
        })
    };
    let mut centre = Vec::with_capacity(data.features());
    let mut scale = Vec::with_capacity(data.features());
    for ((m, s), name) in fitted.mean.iter().zip(&fitted.std).zip(&data.feature_names) {
        centre.push(decimal(*m, "mean", name)?);
        let s = decimal(*s, "standard deviation", name)?;
        // A deviation below a billionth rounds to zero: treat it as the constant it nearly is.
        scale.push(if s.0 > 0 { s } else { Decimal9(Decimal9::SCALE) });
    }
    Ok(InputTransform {
        features: data.feature_names.clone(),
        centre,
        scale,
        classes: data.class_labels.clone(),
    })
}

/// Checks that `columns` (a dataset's feature columns, label excluded) are exactly the
/// transform's features, in order; the error names the missing, unexpected or misplaced
/// columns.
pub fn check_columns(transform: &InputTransform, columns: &[String]) -> Result<(), DataError> {
    if columns == transform.features.as_slice() {
        return Ok(());
    }
    let quote = |names: Vec<&String>| {
        let shown: Vec<String> = names.iter().take(MAX_NAMED_COLUMNS).map(|n| format!("`{n}`")).collect();
        let more = names.len().saturating_sub(MAX_NAMED_COLUMNS);
        if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    let wanted: std::collections::HashSet<&String> = transform.features.iter().collect();
    let have: std::collections::HashSet<&String> = columns.iter().collect();
    let missing: Vec<&String> = transform.features.iter().filter(|n| !have.contains(n)).collect();
    let extra: Vec<&String> = columns.iter().filter(|n| !wanted.contains(n)).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", quote(missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("not in the model {}", quote(extra)));
    }
    if parts.is_empty() {
        // Same names, other order: name the first column out of place.
        let (i, (found, expected)) = columns
            .iter()
            .zip(&transform.features)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or((0, (&columns[0], &transform.features[0])));
        parts.push(format!("column {} is `{found}` but the model expects `{expected}` there (same columns, other order)", i + 1));
    }
    Err(DataError::ColumnMismatch {
        detail: format!(
            "{} (the data has {} feature columns, the model {})",
            parts.join("; "),
            columns.len(),
            transform.features.len()
        ),
    })
}

/// Turns raw `data` into model inputs in place: checks its columns against the transform,
/// relabels its classes as the model's (a label the model does not have is refused), and
/// maps every feature `x` of column `i` to `(x − centre_i) / scale_i`.
pub fn apply_transform(transform: &InputTransform, data: &mut Dataset) -> Result<(), DataError> {
    check_columns(transform, &data.feature_names)?;
    if data.class_labels != transform.classes {
        let class_of = class_of_labels(&data.class_labels, &transform.classes)?;
        for y in &mut data.y {
            *y = class_of[*y as usize];
        }
        data.classes = u32::try_from(transform.classes.len()).unwrap_or(u32::MAX);
        data.class_labels.clone_from(&transform.classes);
    }
    let centre: Vec<f64> = transform.centre.iter().map(|c| c.to_f64()).collect();
    let scale: Vec<f64> = transform.scale.iter().map(|s| s.to_f64()).collect();
    for mut row in data.x.rows_mut() {
        for ((v, c), s) in row.iter_mut().zip(&centre).zip(&scale) {
            *v = (*v - c) / s;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn data() -> Dataset {
        Dataset::new(array![[1.0, 5.0], [3.0, 5.0]], vec![0, 1], 2, names(&["a", "b"]))
            .expect("valid")
            .with_class_labels(names(&["no", "yes"]))
            .expect("two labels")
    }

    #[test]
    fn fit_then_apply_standardizes() {
        let mut d = data();
        let t = fit_transform(&d).expect("non-empty");
        assert_eq!(t.centre, vec![Decimal9(2_000_000_000), Decimal9(5_000_000_000)]);
        assert_eq!(t.scale, vec![Decimal9(1_000_000_000), Decimal9(1_000_000_000)]);
        assert_eq!(t.classes, names(&["no", "yes"]));
        t.check(2, 2).expect("a valid transform");
        apply_transform(&t, &mut d).expect("same columns");
        assert_eq!(d.x, array![[-1.0, 0.0], [1.0, 0.0]]);
    }

    #[test]
    fn classes_are_mapped_by_label() {
        let mut t = fit_transform(&data()).expect("non-empty");
        t.classes = names(&["yes", "no", "maybe"]);
        let mut d = data();
        apply_transform(&t, &mut d).expect("labels known");
        assert_eq!(d.y, vec![1, 0]);
        assert_eq!(d.classes, 3);
        t.classes = names(&["yes", "maybe"]);
        let err = apply_transform(&t, &mut data()).expect_err("`no` is not a class");
        assert!(err.to_string().contains("`no`") && err.to_string().contains("yes, maybe"), "{err}");
    }

    #[test]
    fn column_mismatches_are_named() {
        let t = fit_transform(&data()).expect("non-empty");
        let err = |cols: &[&str]| check_columns(&t, &names(cols)).expect_err("mismatch").to_string();
        let e = err(&["a"]);
        assert!(e.contains("missing `b`") && e.contains("1 feature columns, the model 2"), "{e}");
        let e = err(&["a", "b", "c"]);
        assert!(e.contains("not in the model `c`"), "{e}");
        let e = err(&["b", "a"]);
        assert!(e.contains("column 1 is `b`") && e.contains("other order"), "{e}");
        let e = err(&["a", "x"]);
        assert!(e.contains("missing `b`") && e.contains("not in the model `x`"), "{e}");
        assert!(check_columns(&t, &names(&["a", "b"])).is_ok());
    }
}
