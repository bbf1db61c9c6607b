//! CSV data files: the model crate's CSV loader (crates/model/src/data/csv_file.rs) through
//! its reader entry point `parse_csv_reader_for` (the same `parse` the file loaders
//! `load_csv` / `load_csv_for_classes` run after their size check). The first input byte
//! selects the label column name (`label`, `y`, or the empty name) and whether the classes are
//! inferred or given (the node's `load_csv_for_classes` with a model's labels `0`, `1`, `yes`);
//! the second selects default or small `CsvLimits`; the rest is the file. With `b & 8` the
//! file is instead written to a scratch file (/dev/shm) and read by
//! `load_csv_maybe_labelled` (what `learnchain predict` runs: a file that may lack the label
//! column), with the given classes.
//!
//! Asserts: no panic, no unbounded allocation; every dataset it returns is consistent (one
//! label per row, labels below the class count, one name per feature, every feature finite);
//! and `write_csv` then parsing again gives the same dataset, as `write_csv` promises
//! ("reading the file back gives the same numbers bit for bit"), for inferred classes; an
//! unlabelled file read for prediction has every example in class 0.
#![no_main]

use learnchain_fuzz::{scratch_path, write_scratch};
use learnchain_model::data::{CsvLimits, load_csv_maybe_labelled, parse_csv_reader_for, write_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let label = ["label", "y", ""][usize::from(data[0] & 3) % 3];
    let given: Vec<String> = ["0", "1", "yes"].iter().map(|s| s.to_string()).collect();
    let classes = (data[0] & 4 != 0).then_some(given.as_slice());
    let limits = if data[1] & 1 == 0 {
        CsvLimits::default()
    } else {
        CsvLimits { max_file_bytes: 4096, max_columns: 16, max_row_bytes: 256 }
    };
    let input = &data[2..];
    if data[0] & 8 != 0 {
        let path = scratch_path("data.csv");
        write_scratch(&path, input, 0o600);
        let Ok((ds, labelled)) = load_csv_maybe_labelled(&path, label, &given) else { return };
        assert_eq!(ds.x.nrows(), ds.y.len());
        assert_eq!(ds.x.ncols(), ds.feature_names.len());
        assert_eq!(ds.class_labels, given);
        assert!(ds.y.iter().all(|&y| y < ds.classes));
        assert!(labelled || ds.y.iter().all(|&y| y == 0));
        assert!(ds.x.iter().all(|v| v.is_finite()));
        return;
    }
    let Ok(ds) = parse_csv_reader_for(input, label, &limits, classes) else { return };
    assert_eq!(ds.x.nrows(), ds.y.len());
    assert_eq!(ds.x.ncols(), ds.feature_names.len());
    assert_eq!(ds.class_labels.len(), ds.classes as usize);
    assert!(ds.y.iter().all(|&y| y < ds.classes));
    assert!(ds.x.iter().all(|v| v.is_finite()));
    if classes.is_none() {
        let mut written = Vec::new();
        if write_csv(&ds, label, &mut written).is_ok() {
            let back = parse_csv_reader_for(&written[..], label, &CsvLimits::default(), None)
                .unwrap_or_else(|e| panic!("a written dataset does not read back: {e}\n{}", String::from_utf8_lossy(&written)));
            assert_eq!(back, ds, "write_csv then parse changed the dataset");
        }
    }
});
