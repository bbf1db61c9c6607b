//! `learnchain plot`'s input: a small CSV table read into a [`Chart`]. The first column is
//! x — numbers draw a line chart, anything else (or `--bars`) names categories of grouped
//! bars — and every other column is one series named by its header. An empty cell is a
//! missing value (a gap in the line, no bar).
//!
//! Input is bounded before it is parsed ([`MAX_TABLE_BYTES`], [`MAX_ROWS`],
//! [`MAX_COLUMNS`], [`MAX_CATEGORIES`]), and a broken table is refused with the line and
//! column of the first bad cell.

use std::io::Read;
use std::path::Path;

use super::PlotError;
use super::chart::{Axis, Chart, Scale, Series, XAxis};

/// Largest table file read.
pub const MAX_TABLE_BYTES: u64 = 8 * 1024 * 1024;
/// Most data rows.
pub const MAX_ROWS: usize = 100_000;
/// Most columns (x and the series).
pub const MAX_COLUMNS: usize = 33;
/// Most categories of a bar chart.
pub const MAX_CATEGORIES: usize = 400;

/// A parsed table: the header, the first column as text, and the other columns as numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column names (blank ones named `column N`).
    pub header: Vec<String>,
    /// The first column of each row.
    pub x: Vec<String>,
    /// The line each row starts on (1-based).
    pub lines: Vec<u64>,
    /// The other columns: `columns[j][i]` is row `i` of column `j + 2`.
    pub columns: Vec<Vec<Option<f64>>>,
}

/// How to draw a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableOptions {
    /// The title (default: the file name).
    pub title: Option<String>,
    /// The x axis label (default: the first column's header).
    pub x_label: Option<String>,
    /// The left y axis label (default: the series' name when there is one).
    pub y_label: Option<String>,
    /// The right y axis label (default: the names of the series on it).
    pub y2_label: Option<String>,
    /// The series columns to draw, in this order (empty: all, in the table's order).
    pub columns: Vec<String>,
    /// Columns drawn against the right axis.
    pub right: Vec<String>,
    /// Grouped bars even when the first column is numeric.
    pub bars: bool,
    /// A logarithmic x axis (numeric, positive x).
    pub log_x: bool,
}

/// Reads the table at `path` (at most [`MAX_TABLE_BYTES`]).
pub fn read_table(path: &Path) -> Result<Table, PlotError> {
    let io = |source| PlotError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_TABLE_BYTES {
        return Err(PlotError::TooLarge { path: path.to_path_buf(), limit: MAX_TABLE_BYTES });
    }
    parse_table(&bytes)
}

fn cell_error(line: u64, column: usize, header: &[String], reason: String) -> PlotError {
    let name = header.get(column - 1).cloned().unwrap_or_default();
    PlotError::Cell { line, column, name, reason }
}

/// Line numbers of byte offsets, counted incrementally (offsets mostly ascend).
struct Lines<'a> {
    bytes: &'a [u8],
    /// Bytes counted so far, and the 1-based line at that offset.
    at: usize,
    line: u64,
}

impl Lines<'_> {
    fn of(&mut self, p: Option<&csv::Position>) -> u64 {
        let Some(p) = p else { return 0 };
        let end = usize::try_from(p.byte()).unwrap_or(usize::MAX).min(self.bytes.len());
        if end < self.at {
            (self.at, self.line) = (0, 1);
        }
        self.line += self.bytes[self.at..end].iter().filter(|b| **b == b'\n').count() as u64;
        self.at = end;
        // A record's position is where the reader started looking for it: before the
        // comment and blank lines it skipped.
        loop {
            let rest = &self.bytes[self.at..];
            let skipped = rest.first() == Some(&b'#') || rest.starts_with(b"\n") || rest.starts_with(b"\r\n");
            let next = rest.iter().position(|b| *b == b'\n');
            match next {
                Some(n) if skipped => {
                    self.at += n + 1;
                    self.line += 1;
                }
                _ => return self.line,
            }
        }
    }
}

/// Parses CSV text: a header row, then rows of as many cells. Lines starting with `#` are
/// comments; cells are trimmed.
pub fn parse_table(bytes: &[u8]) -> Result<Table, PlotError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    // Lines are counted here: the CSV reader's own count skips comments.
    let mut lines = Lines { bytes, at: 0, line: 1 };
    let syntax = |e: csv::Error, lines: &mut Lines<'_>| PlotError::Syntax { line: lines.of(e.position()), reason: e.to_string() };
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| syntax(e, &mut lines))?
        .iter()
        .enumerate()
        .map(|(i, h)| if h.is_empty() { format!("column {}", i + 1) } else { h.to_owned() })
        .collect();
    if header.len() < 2 {
        return Err(PlotError::Shape(format!(
            "the header has {} column(s); a table needs an x column and at least one series",
            header.len()
        )));
    }
    if header.len() > MAX_COLUMNS {
        return Err(PlotError::Shape(format!("the header has {} columns, more than {MAX_COLUMNS}", header.len())));
    }
    let mut table = Table { x: Vec::new(), lines: Vec::new(), columns: vec![Vec::new(); header.len() - 1], header };
    for record in reader.records() {
        let record = record.map_err(|e| syntax(e, &mut lines))?;
        let line = lines.of(record.position());
        if table.x.len() == MAX_ROWS {
            return Err(PlotError::Shape(format!("more than {MAX_ROWS} rows (line {line})")));
        }
        if record.len() != table.header.len() {
            return Err(PlotError::Ragged { line, found: record.len(), expected: table.header.len() });
        }
        table.x.push(record.get(0).unwrap_or_default().to_owned());
        table.lines.push(line);
        for (j, cell) in record.iter().enumerate().skip(1) {
            let value = if cell.is_empty() {
                None
            } else {
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => {
                        return Err(cell_error(
                            line,
                            j + 1,
                            &table.header,
                            format!("{cell:?} is not a finite number (leave the cell empty for a missing value)"),
                        ));
                    }
                }
            };
            table.columns[j - 1].push(value);
        }
    }
    if table.x.is_empty() {
        return Err(PlotError::Shape("the table has a header but no rows".into()));
    }
    Ok(table)
}

/// The chart of `table`.
pub fn table_chart(table: &Table, opts: &TableOptions, default_title: &str) -> Result<Chart, PlotError> {
    // A table not from `parse_table` may be inconsistent.
    let rows = table.x.len();
    if table.header.len() < 2
        || table.columns.len() + 1 != table.header.len()
        || table.lines.len() != rows
        || table.columns.iter().any(|c| c.len() != rows)
    {
        return Err(PlotError::Shape("the table's header, rows and columns do not match".into()));
    }
    let known = |flag: &str, names: &[String]| -> Result<(), PlotError> {
        match names.iter().find(|n| !table.header[1..].contains(n)) {
            Some(name) => Err(PlotError::Shape(format!(
                "{flag} {name:?} is not a series column; the columns are {}",
                table.header[1..].iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
            ))),
            None => Ok(()),
        }
    };
    known("--columns", &opts.columns)?;
    known("--right", &opts.right)?;
    // The columns to draw, by index into `table.columns`.
    let chosen: Vec<usize> = if opts.columns.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        opts.columns.iter().filter_map(|c| table.header[1..].iter().position(|h| h == c)).collect()
    };
    if let Some(r) = opts.right.iter().find(|r| !chosen.iter().any(|&j| table.header[j + 1] == **r)) {
        return Err(PlotError::Shape(format!("--right {r:?} is not among the --columns drawn")));
    }
    let numeric_x: Option<Vec<f64>> =
        table.x.iter().map(|x| x.parse::<f64>().ok().filter(|v| v.is_finite())).collect();
    let bars = opts.bars || numeric_x.is_none();
    let x_label = opts.x_label.clone().unwrap_or_else(|| table.header[0].clone());
    let is_right = |name: &str| opts.right.iter().any(|r| r == name);
    let mut series = Vec::new();
    let xs: Vec<f64> = match (&numeric_x, bars) {
        (Some(xs), false) => xs.clone(),
        _ => (0..table.x.len()).map(|i| i as f64).collect(),
    };
    for &j in &chosen {
        let column = &table.columns[j];
        let name = &table.header[j + 1];
        let points = xs.iter().zip(column).map(|(x, y)| (*x, y.unwrap_or(f64::NAN))).collect();
        let s = Series::new(name.clone(), points);
        series.push(if is_right(name) { s.on_right() } else { s });
    }
    let left_names: Vec<&str> = chosen.iter().map(|&j| table.header[j + 1].as_str()).filter(|n| !is_right(n)).collect();
    let y_label = opts.y_label.clone().unwrap_or_else(|| if left_names.len() == 1 { left_names[0].to_owned() } else { String::new() });
    let y2 = (!opts.right.is_empty()).then(|| Axis::linear(opts.y2_label.clone().unwrap_or_else(|| opts.right.join(", "))));
    let title = opts.title.clone().unwrap_or_else(|| default_title.to_owned());
    let x = if bars {
        if opts.log_x {
            return Err(PlotError::Shape("--log-x needs a numeric first column (and no --bars)".into()));
        }
        if !opts.right.is_empty() {
            return Err(PlotError::Shape("--right is for line charts; a bar chart has one y axis".into()));
        }
        if table.x.len() > MAX_CATEGORIES {
            return Err(PlotError::Shape(format!("{} categories, more than the {MAX_CATEGORIES} a bar chart shows", table.x.len())));
        }
        XAxis::Categories { label: x_label, names: table.x.clone() }
    } else {
        if opts.log_x
            && let Some(i) = xs.iter().position(|x| *x <= 0.0)
        {
            return Err(cell_error(table.lines[i], 1, &table.header, format!("{} is not positive, and --log-x needs positive x", table.x[i])));
        }
        XAxis::Numeric(Axis { label: x_label, range: None, scale: if opts.log_x { Scale::Log } else { Scale::Linear } })
    };
    Ok(Chart { title, x, y: Axis::linear(y_label), y2, series })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(text: &str, opts: &TableOptions) -> Result<Chart, PlotError> {
        table_chart(&parse_table(text.as_bytes())?, opts, "t")
    }

    #[test]
    fn numbers_in_the_first_column_make_a_line_chart() {
        let c = chart("epsilon,accuracy,sigma\n0.5,0.9,3\n1,0.93,\n2,0.95,1.1\n", &TableOptions::default()).expect("chart");
        assert!(matches!(c.x, XAxis::Numeric(ref a) if a.label == "epsilon"));
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[0].points, vec![(0.5, 0.9), (1.0, 0.93), (2.0, 0.95)]);
        // The empty cell is a gap.
        assert!(c.series[1].points[1].1.is_nan());
        assert_eq!(c.y.label, "");
    }

    #[test]
    fn names_in_the_first_column_make_bars() {
        let text = "rule / attack,0 adv.,1 adv.\nmean / sign-flip,97.4,40.1\n\"median / scale:10\",96.5,\n";
        let c = chart(text, &TableOptions::default()).expect("chart");
        match &c.x {
            XAxis::Categories { names, .. } => assert_eq!(names, &["mean / sign-flip", "median / scale:10"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.series[1].points[0], (0.0, 40.1));
        let forced = chart("n,a\n0,1\n1,2\n", &TableOptions { bars: true, ..TableOptions::default() }).expect("chart");
        assert!(matches!(forced.x, XAxis::Categories { .. }));
    }

    #[test]
    fn a_bad_cell_is_named_by_line_and_column() {
        let err = chart("x,a,b\n1,2,3\n# a comment\n\n2,3,oops\n", &TableOptions::default()).expect_err("bad cell");
        assert_eq!(err.to_string(), r#"line 5, column 3 ("b"): "oops" is not a finite number (leave the cell empty for a missing value)"#);
        let nan = chart("x,a\n1,NaN\n", &TableOptions::default()).expect_err("NaN");
        assert!(nan.to_string().starts_with("line 2, column 2 (\"a\")"), "{nan}");
    }

    #[test]
    fn a_ragged_row_is_named_by_line() {
        let err = chart("x,a,b\n1,2,3\n2,3\n", &TableOptions::default()).expect_err("ragged");
        assert_eq!(err.to_string(), "line 3 has 2 cells, the header 3");
    }

    #[test]
    fn broken_quoting_and_empty_tables_are_refused() {
        assert!(matches!(parse_table(b""), Err(PlotError::Shape(_))));
        assert!(matches!(parse_table(b"x,a\n"), Err(PlotError::Shape(_))));
        assert!(matches!(parse_table(b"x\n1\n"), Err(PlotError::Shape(_))));
        let invalid_utf8 = parse_table(b"x,a\n1,\xff\n").expect_err("not UTF-8");
        assert!(matches!(invalid_utf8, PlotError::Syntax { line: 2, .. }), "{invalid_utf8:?}");
    }

    #[test]
    fn limits_are_checked() {
        let wide = format!("{}\n", (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","));
        assert!(matches!(parse_table(wide.as_bytes()), Err(PlotError::Shape(m)) if m.contains("columns")));
        let mut tall = String::from("x,a\n");
        for i in 0..=MAX_ROWS {
            tall.push_str(&format!("{i},1\n"));
        }
        assert!(matches!(parse_table(tall.as_bytes()), Err(PlotError::Shape(m)) if m.contains("rows")));
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.csv");
        std::fs::write(&big, vec![b'1'; MAX_TABLE_BYTES as usize + 1]).expect("write");
        assert!(matches!(read_table(&big), Err(PlotError::TooLarge { .. })));
        assert!(matches!(read_table(&dir.path().join("missing.csv")), Err(PlotError::Io { .. })));
    }

    #[test]
    fn an_inconsistent_table_is_refused() {
        let t = Table { header: vec!["x".into()], x: vec![], lines: vec![], columns: vec![] };
        assert!(matches!(table_chart(&t, &TableOptions::default(), "t"), Err(PlotError::Shape(_))));
        let t = Table { header: vec!["x".into(), "a".into()], x: vec!["1".into()], lines: vec![2], columns: vec![vec![]] };
        assert!(matches!(table_chart(&t, &TableOptions::default(), "t"), Err(PlotError::Shape(_))));
    }

    #[test]
    fn right_axis_and_log_x_options() {
        let text = "budget,accuracy,spent\n0.25,0.8,0.24\n1,0.9,0.99\n";
        let opts = TableOptions { right: vec!["spent".into()], log_x: true, ..TableOptions::default() };
        let c = chart(text, &opts).expect("chart");
        assert_eq!(c.series[1].side, crate::plot::chart::Side::Right);
        assert_eq!(c.y2.as_ref().map(|a| a.label.as_str()), Some("spent"));
        assert_eq!(c.y.label, "accuracy");
        let unknown = chart(text, &TableOptions { right: vec!["nope".into()], ..TableOptions::default() }).expect_err("unknown");
        assert!(unknown.to_string().contains("\"accuracy\", \"spent\""), "{unknown}");
        let only = TableOptions { columns: vec!["spent".into(), "accuracy".into()], ..TableOptions::default() };
        let picked = chart(text, &only).expect("chart");
        let names: Vec<&str> = picked.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["spent", "accuracy"]);
        let hidden_right = TableOptions { columns: vec!["accuracy".into()], right: vec!["spent".into()], ..TableOptions::default() };
        assert!(chart(text, &hidden_right).is_err());
        let zero = chart("b,a\n0,1\n", &TableOptions { log_x: true, ..TableOptions::default() }).expect_err("log of 0");
        assert!(zero.to_string().starts_with("line 2, column 1 (\"b\")"), "{zero}");
    }
}
