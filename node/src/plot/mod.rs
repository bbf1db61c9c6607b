//! Charts from the command line: `learnchain devnet --plot FILE` (test accuracy, loss and
//! ε spent against height) and `learnchain plot` (a CSV table, as the benchmark scripts
//! write them). Owns the chart model and both image writers; knows nothing of the chain.
//!
//! Data enters as a [`Chart`] — built by [`history::devnet_chart`] from a devnet run, or
//! by [`table::table_chart`] from a CSV file — and leaves as an image file: [`layout`]
//! places every shape once, then [`svg`] writes them as a standalone SVG document or
//! [`raster`] draws them into pixels (with its own bitmap font, so no system font or
//! native library is needed) for the `png` crate to encode. The format is the file
//! name's extension ([`ImageFormat::of`]), checked before any work is done.

pub mod chart;
mod font;
pub mod history;
pub mod layout;
pub mod raster;
pub mod svg;
pub mod table;
pub mod ticks;

use std::path::{Path, PathBuf};

pub use chart::{Axis, Chart, Series, XAxis};

/// What can go wrong reading a table or writing a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output's extension names no format this writer has.
    #[error("{}: unknown image type; the file name must end in .svg or .png", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The output's directory does not exist.
    #[error("{}: the directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An input file is larger than its limit.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The CSV is malformed (quoting, encoding).
    #[error("line {line}: {reason}")]
    Syntax {
        /// The line (1-based; 0 when unknown).
        line: u64,
        /// What the CSV reader said.
        reason: String,
    },
    /// A row has more or fewer cells than the header.
    #[error("line {line} has {found} cells, the header {expected}")]
    Ragged {
        /// The line (1-based).
        line: u64,
        /// Cells in the row.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// A cell is not what its column needs.
    #[error("line {line}, column {column} ({name:?}): {reason}")]
    Cell {
        /// The line (1-based).
        line: u64,
        /// The column (1-based).
        column: usize,
        /// The column's header.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The table as a whole cannot be drawn (too large, empty, conflicting options).
    #[error("{0}")]
    Shape(String),
    /// The PNG encoder failed.
    #[error("cannot encode the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// An image file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// Scalable vector graphics (`.svg`).
    Svg,
    /// Portable network graphics (`.png`).
    Png,
}

impl ImageFormat {
    /// The format named by `path`'s extension (either case).
    pub fn of(path: &Path) -> Result<Self, PlotError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(ImageFormat::Svg),
            Some("png") => Ok(ImageFormat::Png),
            _ => Err(PlotError::UnknownFormat { path: path.to_path_buf() }),
        }
    }
}

/// Checks, before any work, that a chart can be written to `path`: a known extension and
/// an existing directory. Returns the format.
pub fn check_output(path: &Path) -> Result<ImageFormat, PlotError> {
    let format = ImageFormat::of(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(PlotError::NoDirectory { path: path.to_path_buf(), dir: dir.to_path_buf() });
    }
    Ok(format)
}

/// The chart as the bytes of an image file.
pub fn render(chart: &Chart, format: ImageFormat) -> Result<Vec<u8>, PlotError> {
    let scene = layout::layout(chart);
    Ok(match format {
        ImageFormat::Svg => svg::render(&scene).into_bytes(),
        ImageFormat::Png => raster::encode_png(&raster::rasterize(&scene))?,
    })
}

/// Writes the chart to `path`, in the format its extension names (an existing file is
/// replaced).
pub fn write(chart: &Chart, path: &Path) -> Result<(), PlotError> {
    let bytes = render(chart, check_output(path)?)?;
    std::fs::write(path, bytes).map_err(|source| PlotError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_names_the_format() {
        assert_eq!(ImageFormat::of(Path::new("a.svg")).ok(), Some(ImageFormat::Svg));
        assert_eq!(ImageFormat::of(Path::new("dir/a.PNG")).ok(), Some(ImageFormat::Png));
        let err = ImageFormat::of(Path::new("plot.jpg")).expect_err("jpg");
        assert_eq!(err.to_string(), "plot.jpg: unknown image type; the file name must end in .svg or .png");
        assert!(ImageFormat::of(Path::new("svg")).is_err());
    }

    #[test]
    fn a_missing_directory_is_named_before_drawing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("no-such-dir").join("p.svg");
        let err = check_output(&bad).expect_err("missing dir");
        assert!(err.to_string().contains("no-such-dir") && err.to_string().contains("does not exist"), "{err}");
        assert_eq!(check_output(Path::new("here.png")).ok(), Some(ImageFormat::Png));
    }

    #[test]
    fn write_writes_both_formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chart = Chart {
            title: "t".into(),
            x: XAxis::Numeric(Axis::linear("x")),
            y: Axis::linear("y"),
            y2: None,
            series: vec![Series::new("s", vec![(0.0, 1.0), (1.0, 2.0)])],
        };
        for name in ["c.svg", "c.png"] {
            let path = dir.path().join(name);
            write(&chart, &path).expect("write");
            let bytes = std::fs::read(&path).expect("read");
            let magic: &[u8] = if name.ends_with("svg") { b"<?xml" } else { b"\x89PNG" };
            assert!(bytes.starts_with(magic), "{name}");
        }
    }
}
