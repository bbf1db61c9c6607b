//! Cutting a dataset up: a stratified train/test split and shards for simulated data sources.
//!
//! All three operations are deterministic functions of `(dataset, arguments, seed)`: each
//! draws from its own `ChaCha20Rng::seed_from_u64(seed)`, visits classes in ascending order,
//! and every piece lists its examples in a documented order. Every example lands in exactly
//! one piece; pieces keep the full dataset's class count and feature names.
//!
//! * [`Dataset::split`] is stratified: each class is shuffled and `round(n_c · fraction)` of
//!   its examples go to the test set, so both sides keep the class balance.
//! * [`Dataset::partition_iid`] shuffles all examples and deals them into `n` shards whose
//!   sizes differ by at most one.
//! * [`Dataset::partition_dirichlet`] gives the usual non-IID benchmark: for each class it
//!   draws shard proportions from Dirichlet(α, …, α) and cuts the class's shuffled examples at
//!   the rounded cumulative proportions. Small α makes shards dominated by few classes. To
//!   guarantee every shard at least one example, each empty shard then takes the last
//!   example of the currently largest shard (lowest index on ties); because `n ≤ len`, that
//!   shard always holds at least two.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Dirichlet, Distribution};

use super::{DataError, Dataset};

impl Dataset {
    /// A `(train, test)` split with about `test_fraction` of each class in the test set; both
    /// sides are shuffled.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset), DataError> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(DataError::InvalidFraction(test_fraction));
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for mut rows in self.rows_by_class().into_values() {
            rows.shuffle(&mut rng);
            let cut = (rows.len() as f64 * test_fraction).round() as usize;
            test.extend_from_slice(&rows[..cut.min(rows.len())]);
            train.extend_from_slice(&rows[cut.min(rows.len())..]);
        }
        train.shuffle(&mut rng);
        test.shuffle(&mut rng);
        Ok((self.subset(&train), self.subset(&test)))
    }

    /// `n` shards of a uniform random permutation, sizes differing by at most one; each shard
    /// lists its examples in their original order.
    pub fn partition_iid(&self, n: usize, seed: u64) -> Result<Vec<Dataset>, DataError> {
        self.check_shards(n)?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut rows: Vec<usize> = (0..self.len()).collect();
        rows.shuffle(&mut rng);
        let len = self.len();
        let shards = (0..n)
            .map(|i| rows[i * len / n..(i + 1) * len / n].to_vec())
            .collect();
        Ok(self.shards(shards))
    }

    /// `n` non-IID shards with per-class proportions drawn from Dirichlet(α) (see the module
    /// docs); each shard lists its examples in their original order.
    pub fn partition_dirichlet(
        &self,
        n: usize,
        alpha: f64,
        seed: u64,
    ) -> Result<Vec<Dataset>, DataError> {
        self.check_shards(n)?;
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(DataError::InvalidAlpha(alpha));
        }
        let dirichlet = if n >= 2 {
            Some(Dirichlet::new_with_size(alpha, n).map_err(|_| DataError::InvalidAlpha(alpha))?)
        } else {
            None
        };
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut shards = vec![Vec::new(); n];
        for mut rows in self.rows_by_class().into_values() {
            rows.shuffle(&mut rng);
            let mut proportions = dirichlet
                .as_ref()
                .map_or_else(|| vec![1.0], |d| d.sample(&mut rng));
            if !proportions.iter().all(|p: &f64| p.is_finite()) {
                // Every gamma draw underflowed (tiny α): the class goes to one random shard.
                let winner = rng.gen_range(0..n);
                proportions = (0..n)
                    .map(|i| if i == winner { 1.0 } else { 0.0 })
                    .collect();
            }
            let (count, mut start, mut cumulative) = (rows.len(), 0, 0.0);
            for (shard, p) in shards.iter_mut().zip(&proportions) {
                cumulative += p;
                let end = ((cumulative * count as f64).round() as usize).clamp(start, count);
                shard.extend_from_slice(&rows[start..end]);
                start = end;
            }
            // Rounding can leave the last few examples uncut: they go to the last shard.
            if let Some(last) = shards.last_mut() {
                last.extend_from_slice(&rows[start..]);
            }
        }
        while let Some(empty) = shards.iter().position(Vec::is_empty) {
            let largest = (0..n).fold(0, |best, i| {
                if shards[i].len() > shards[best].len() {
                    i
                } else {
                    best
                }
            });
            match shards[largest].pop() {
                Some(row) => shards[empty].push(row),
                None => break, // unreachable while n ≤ len, but never loop forever
            }
        }
        Ok(self.shards(shards))
    }

    /// Example indices grouped by label, classes in ascending order.
    fn rows_by_class(&self) -> BTreeMap<u32, Vec<usize>> {
        let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (row, &label) in self.y.iter().enumerate() {
            by_class.entry(label).or_default().push(row);
        }
        by_class
    }

    fn check_shards(&self, n: usize) -> Result<(), DataError> {
        if n == 0 || n > self.len() || self.x.nrows() != self.len() {
            return Err(DataError::InvalidShards {
                shards: n,
                examples: self.len(),
            });
        }
        Ok(())
    }

    fn shards(&self, shards: Vec<Vec<usize>>) -> Vec<Dataset> {
        shards
            .into_iter()
            .map(|mut rows| {
                rows.sort_unstable();
                self.subset(&rows)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// 100 examples whose only feature is their own index; classes 0..4 in unequal numbers.
    fn indexed() -> Dataset {
        let x = Array2::from_shape_fn((100, 1), |(i, _)| i as f64);
        let y = (0..100)
            .map(|i| if i < 10 { 0 } else { (i % 3 + 1) as u32 })
            .collect();
        Dataset::new(x, y, 4, vec!["index".into()]).expect("valid")
    }

    /// The original indices of a piece's examples.
    fn ids(d: &Dataset) -> Vec<usize> {
        d.x.column(0).iter().map(|&v| v as usize).collect()
    }

    /// Checks that the pieces hold every example exactly once, labels intact.
    fn assert_cover(data: &Dataset, pieces: &[Dataset]) {
        let mut all: Vec<usize> = pieces.iter().flat_map(ids).collect();
        all.sort_unstable();
        assert_eq!(all, (0..data.len()).collect::<Vec<_>>());
        for piece in pieces {
            assert_eq!(piece.classes, data.classes);
            for (id, label) in ids(piece).into_iter().zip(&piece.y) {
                assert_eq!(data.y[id], *label);
            }
        }
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let data = indexed();
        let (train, test) = data.split(0.2, 5).expect("valid");
        assert_cover(&data, &[train.clone(), test.clone()]);
        assert_eq!(test.len(), 2 + 6 + 6 + 6);
        assert_eq!(test.y.iter().filter(|&&c| c == 0).count(), 2);
        assert_eq!(data.split(0.2, 5).expect("valid"), (train.clone(), test));
        assert_ne!(data.split(0.2, 6).expect("valid").0, train);
        assert_eq!(data.split(0.0, 1).expect("valid").1.len(), 0);
        assert_eq!(data.split(1.0, 1).expect("valid").0.len(), 0);
        assert!(matches!(
            data.split(1.5, 1),
            Err(DataError::InvalidFraction(_))
        ));
        assert!(matches!(
            data.split(f64::NAN, 1),
            Err(DataError::InvalidFraction(_))
        ));
    }

    #[test]
    fn iid_shards() {
        let data = indexed();
        let shards = data.partition_iid(7, 3).expect("valid");
        assert_eq!(shards.len(), 7);
        assert_cover(&data, &shards);
        assert!(shards.iter().all(|s| s.len() == 14 || s.len() == 15));
        assert_eq!(shards, data.partition_iid(7, 3).expect("valid"));
        assert_ne!(shards, data.partition_iid(7, 4).expect("valid"));
        assert_eq!(data.partition_iid(100, 3).expect("valid").len(), 100);
    }

    #[test]
    fn dirichlet_shards() {
        let data = indexed();
        for (n, alpha) in [
            (1, 0.5),
            (2, 1.0),
            (5, 0.1),
            (10, 100.0),
            (100, 0.5),
            (20, 1e-300),
        ] {
            let shards = data.partition_dirichlet(n, alpha, 11).expect("valid");
            assert_eq!(shards.len(), n);
            assert!(shards.iter().all(|s| !s.is_empty()), "n={n} alpha={alpha}");
            assert_cover(&data, &shards);
            assert_eq!(
                shards,
                data.partition_dirichlet(n, alpha, 11).expect("valid")
            );
        }
        // Small α concentrates each class on few shards.
        let skewed = data.partition_dirichlet(5, 0.05, 1).expect("valid");
        let max_share = skewed.iter().map(|s| s.len()).max().unwrap_or(0);
        assert!(max_share > 30, "largest shard {max_share}");
    }

    #[test]
    fn partition_errors() {
        let data = indexed();
        assert!(matches!(
            data.partition_iid(0, 1),
            Err(DataError::InvalidShards {
                shards: 0,
                examples: 100
            })
        ));
        assert!(matches!(
            data.partition_iid(101, 1),
            Err(DataError::InvalidShards { .. })
        ));
        assert!(matches!(
            data.partition_dirichlet(0, 1.0, 1),
            Err(DataError::InvalidShards { .. })
        ));
        assert!(matches!(
            data.partition_dirichlet(101, 1.0, 1),
            Err(DataError::InvalidShards { .. })
        ));
        for alpha in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                data.partition_dirichlet(3, alpha, 1),
                Err(DataError::InvalidAlpha(_))
            ));
        }
    }
}
