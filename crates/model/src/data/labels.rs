//! Turning a column of label strings into class indices.
//!
//! While a file is read, [`LabelInterner`] stores each distinct label once (refusing more
//! than [`MAX_CSV_CLASSES`]) and one small id per row. At the end the distinct values decide
//! the mapping: if all are non-negative integers they are the class indices themselves and
//! must form exactly `0..k`; otherwise they are sorted (byte order) and numbered.

use std::collections::HashMap;

use super::DataError;

/// Most distinct labels a CSV may have.
pub const MAX_CSV_CLASSES: u32 = 10_000;

/// Distinct label strings in order of first appearance, and each row's index into them.
#[derive(Default)]
pub(super) struct LabelInterner {
    distinct: Vec<String>,
    index: HashMap<String, u32>,
    rows: Vec<u32>,
}

impl LabelInterner {
    /// Rows recorded.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row has been recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Records the next row's label.
    pub(super) fn push(&mut self, label: &str) -> Result<(), DataError> {
        let id = match self.index.get(label) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.distinct.len()).unwrap_or(u32::MAX);
                if id >= MAX_CSV_CLASSES {
                    return Err(DataError::TooManyClasses {
                        limit: MAX_CSV_CLASSES,
                    });
                }
                self.distinct.push(label.to_owned());
                self.index.insert(label.to_owned(), id);
                id
            }
        };
        self.rows.push(id);
        Ok(())
    }

    /// Each row's class as the index of its label in `classes`, a model's agreed class
    /// labels (matched as [`class_of_labels`] says).
    pub(super) fn into_given_classes(self, classes: &[String]) -> Result<Vec<u32>, DataError> {
        let class_of = class_of_labels(&self.distinct, classes)?;
        Ok(self.rows.iter().map(|&id| class_of[id as usize]).collect())
    }

    /// Each row's class, the number of classes and each class's label.
    pub(super) fn into_classes(self) -> Result<(Vec<u32>, u32, Vec<String>), DataError> {
        let ints: Option<Vec<u32>> = self
            .distinct
            .iter()
            .map(|s| s.parse::<u32>().ok())
            .collect();
        let integer = ints.is_some();
        let class_of: Vec<u32> = match ints {
            Some(ints) => {
                let mut sorted = ints.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if let Some(missing) = (0u32..).zip(&sorted).find(|(i, v)| i != *v).map(|(i, _)| i)
                {
                    let max = sorted.last().copied().unwrap_or(0);
                    return Err(DataError::LabelRange(format!(
                        "the labels go up to {max} but class {missing} never appears (are they 1-based?)"
                    )));
                }
                ints
            }
            None => {
                let mut order: Vec<u32> = (0..self.distinct.len() as u32).collect();
                order.sort_by(|&a, &b| self.distinct[a as usize].cmp(&self.distinct[b as usize]));
                let mut class_of = vec![0; order.len()];
                for (class, &id) in order.iter().enumerate() {
                    class_of[id as usize] = class as u32;
                }
                class_of
            }
        };
        // Both branches are contiguous 0..k, so k is the largest class + 1.
        let classes = class_of.iter().max().map_or(0, |&m| m + 1);
        let mut names = vec![String::new(); classes as usize];
        for (id, &class) in class_of.iter().enumerate() {
            if integer {
                names[class as usize] = class.to_string();
            } else {
                names[class as usize].clone_from(&self.distinct[id]);
            }
        }
        let y = self.rows.iter().map(|&id| class_of[id as usize]).collect();
        Ok((y, classes, names))
    }
}

/// The index in `classes` (a model's class labels) of each of `labels`. An integer label
/// matches its integer value (`"01"` is class `"1"`); a label that is not a class is
/// refused, naming it and the classes.
pub(super) fn class_of_labels(labels: &[String], classes: &[String]) -> Result<Vec<u32>, DataError> {
    let normal = |s: &str| s.parse::<u32>().map_or_else(|_| s.to_owned(), |n| n.to_string());
    let index: HashMap<String, u32> = classes.iter().enumerate().map(|(i, c)| (normal(c), i as u32)).collect();
    labels
        .iter()
        .map(|label| {
            index.get(&normal(label)).copied().ok_or_else(|| DataError::UnknownClass {
                label: label.chars().take(40).collect(),
                classes: classes.join(", "),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(labels: &[&str]) -> Result<(Vec<u32>, u32), DataError> {
        let mut interner = LabelInterner::default();
        for label in labels {
            interner.push(label)?;
        }
        interner.into_classes().map(|(y, k, _)| (y, k))
    }

    #[test]
    fn given_classes() {
        let mut interner = LabelInterner::default();
        for label in ["M", "B", "M", "01"] {
            interner.push(label).expect("few labels");
        }
        let classes: Vec<String> = ["M", "1", "B"].iter().map(|s| s.to_string()).collect();
        assert_eq!(interner.into_given_classes(&classes).ok(), Some(vec![0, 2, 0, 1]));
        let mut interner = LabelInterner::default();
        interner.push("X").expect("few labels");
        assert!(matches!(
            interner.into_given_classes(&classes),
            Err(DataError::UnknownClass { label, classes }) if label == "X" && classes == "M, 1, B"
        ));
    }

    #[test]
    fn mappings() {
        assert_eq!(
            classes(&["2", "0", "1", "0"]).ok(),
            Some((vec![2, 0, 1, 0], 3))
        );
        assert_eq!(
            classes(&["b", "a", "c", "a"]).ok(),
            Some((vec![1, 0, 2, 0], 3))
        );
        assert_eq!(classes(&["1", "01", "0"]).ok(), Some((vec![1, 1, 0], 2)));
        assert!(
            matches!(classes(&["0", "2"]), Err(DataError::LabelRange(m)) if m.contains("class 1"))
        );
        let mut interner = LabelInterner::default();
        for label in ["b", "a", "c"] {
            interner.push(label).expect("few labels");
        }
        assert_eq!(interner.into_classes().map(|(_, _, names)| names).ok(), Some(vec!["a".into(), "b".into(), "c".into()]));
    }

    #[test]
    fn too_many_classes() {
        let mut interner = LabelInterner::default();
        for i in 0..MAX_CSV_CLASSES {
            assert!(interner.push(&i.to_string()).is_ok());
        }
        assert!(matches!(
            interner.push("one more"),
            Err(DataError::TooManyClasses {
                limit: MAX_CSV_CLASSES
            })
        ));
        assert!(interner.push("0").is_ok());
    }
}
