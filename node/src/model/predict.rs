//! `learnchain predict`: a model file applied to raw data.
//!
//! The model file is read and checked (`learnchain_model::export`), the data loaded raw
//! (a built-in set or a CSV, whose label column is optional) and cut to the requested split
//! (the nodes' split: test fraction 0.2, seed 42), then turned into model inputs by the
//! file's input transform: the columns must be the model's, labels must be its classes.
//! A model from a chain without an agreed transform is applied after standardizing the data
//! with its own statistics, as that chain's nodes did, with a warning. One row per example
//! goes to `--out` (the predicted class label and the probability of each class), and
//! with labels the accuracy and the confusion matrix are printed (`--json`: one object).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use learnchain_model::data::{self, Dataset, Standardizer};
use learnchain_model::export::read_model_file;
use ndarray::{Array2, Axis};
use serde_json::json;

/// Rows pushed through the network at once.
const BATCH_ROWS: usize = 4096;

/// What `predict` was asked.
#[derive(Debug)]
pub struct PredictArgs {
    /// The model file.
    pub model: PathBuf,
    /// builtin:NAME or csv:FILE.
    pub data: String,
    /// all, train or test.
    pub split: String,
    /// Label column of a CSV.
    pub label: String,
    /// Where to write the predictions.
    pub out: Option<PathBuf>,
    /// One JSON object on standard output.
    pub json: bool,
}

/// Runs `learnchain predict`.
pub fn predict(a: PredictArgs) -> anyhow::Result<()> {
    if let Some(out) = &a.out
        && out.exists()
    {
        bail!("{} exists; an existing file is never overwritten", out.display());
    }
    let file = read_model_file(&a.model).with_context(|| format!("--model {}", a.model.display()))?;
    let spec = &file.spec;
    let class_labels: Vec<String> = match &spec.input {
        Some(t) => t.classes.clone(),
        None => (0..spec.classes).map(|c| c.to_string()).collect(),
    };
    let (raw, labelled) = load(&a.data, &a.label, &class_labels)?;
    let mut rows = match a.split.as_str() {
        "all" => raw,
        "train" | "test" => {
            let d = crate::config::DataConfig::default();
            let (train, test) = raw.split(d.test_fraction, d.split_seed)?;
            if a.split == "train" { train } else { test }
        }
        other => bail!("--split {other:?} is not all, train or test"),
    };
    match &spec.input {
        Some(t) => data::apply_transform(t, &mut rows)
            .with_context(|| format!("--data {} does not fit the model's input", a.data))?,
        None => {
            eprintln!(
                "warning: the model's chain agreed no input transform; standardizing --data with its own statistics, \
                 as that chain's nodes did"
            );
            if rows.features() != spec.features as usize {
                bail!("--data has {} feature columns but the model takes {}", rows.features(), spec.features);
            }
            if !rows.is_empty() {
                Standardizer::fit(&rows)?.apply(&mut rows)?;
            }
        }
    }
    if rows.is_empty() {
        bail!("--data {} --split {} holds no examples", a.data, a.split);
    }
    let probabilities = probabilities(&file.network, &rows)?;
    let predicted: Vec<usize> = probabilities.rows().into_iter().map(|r| argmax(r.as_slice().unwrap_or(&[]))).collect();

    if let Some(out) = &a.out {
        let mut csv = Vec::with_capacity(rows.len() * (16 + 12 * class_labels.len()));
        write_predictions(&mut csv, &class_labels, &predicted, &probabilities, labelled.then_some(&rows.y))?;
        super::export::write_new(out, &csv)?;
    }
    let k = class_labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    for (&truth, &guess) in rows.y.iter().zip(&predicted) {
        confusion[truth as usize][guess] += 1;
    }
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / rows.len() as f64;
    let p = &file.provenance;
    if a.json {
        let summary = json!({
            "examples": rows.len(),
            "labelled": labelled,
            "accuracy": labelled.then_some(accuracy),
            "correct": labelled.then_some(correct),
            "confusion": labelled.then_some(&confusion),
            "classes": class_labels,
            "out": a.out.as_ref().map(|o| o.display().to_string()),
            "model": {
                "chain_id": p.chain_id.to_hex(),
                "height": p.height,
                "block_hash": p.block_hash.to_hex(),
                "model_hash": p.model_hash.to_hex(),
                "hash_verified": file.hash_verified,
                "architecture": spec.describe(),
                "parameters": spec.param_count(),
            },
        });
        println!("{summary}");
    } else {
        println!(
            "predicted {} examples with the {} model of block {} (height {})",
            rows.len(),
            spec.describe(),
            p.block_hash,
            p.height
        );
        if labelled {
            println!("accuracy {accuracy:.4} ({correct}/{})", rows.len());
            println!("confusion matrix (rows: true class, columns: predicted class):");
            let width = class_labels.iter().map(String::len).max().unwrap_or(1).max(6);
            let header: Vec<String> = class_labels.iter().map(|c| format!("{c:>width$}")).collect();
            println!("{:>width$} {}", "", header.join(" "));
            for (c, row) in confusion.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|n| format!("{n:>width$}")).collect();
                println!("{:>width$} {}", class_labels[c], cells.join(" "));
            }
        }
        if let Some(out) = &a.out {
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

/// Loads `--data` raw, with the model's class labels; whether it has labels.
fn load(source: &str, label: &str, classes: &[String]) -> anyhow::Result<(Dataset, bool)> {
    if let Some(path) = source.strip_prefix("csv:") {
        return data::load_csv_maybe_labelled(path, label, classes).with_context(|| format!("--data {source}"));
    }
    if source.starts_with("builtin:") {
        return Ok((crate::data::load_source(source, label, None)?, true));
    }
    bail!("--data {source:?} must start with builtin: or csv:")
}

/// The class probabilities of every example, a batch of rows at a time.
fn probabilities(net: &learnchain_model::Network, rows: &Dataset) -> anyhow::Result<Array2<f64>> {
    let mut out = Array2::zeros((rows.len(), rows.classes as usize));
    for (start, chunk) in (0..).step_by(BATCH_ROWS).zip(rows.x.axis_chunks_iter(Axis(0), BATCH_ROWS)) {
        let p = net.probabilities(chunk)?;
        out.slice_axis_mut(Axis(0), ndarray::Slice::from(start..start + chunk.nrows())).assign(&p);
    }
    Ok(out)
}

/// The first index of the largest value.
fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// The predictions CSV: `example,predicted[,label],prob_<class>…`, probabilities in the
/// shortest form that reads back to the same number.
fn write_predictions(
    out: &mut impl Write,
    classes: &[String],
    predicted: &[usize],
    probabilities: &Array2<f64>,
    labels: Option<&Vec<u32>>,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["example".to_owned(), "predicted".to_owned()];
    if labels.is_some() {
        header.push("label".to_owned());
    }
    header.extend(classes.iter().map(|c| format!("prob_{c}")));
    w.write_record(&header)?;
    for (i, (&guess, p)) in predicted.iter().zip(probabilities.rows()).enumerate() {
        let mut record = vec![i.to_string(), classes[guess].clone()];
        if let Some(y) = labels {
            record.push(classes[y[i] as usize].clone());
        }
        record.extend(p.iter().map(f64::to_string));
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}
