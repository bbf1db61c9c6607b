//! End-to-end tests of the real `learnchain` binary's charts: `devnet --plot` on a tiny
//! devnet, and `learnchain plot` on CSV tables (good and broken). Each child runs to
//! completion under a deadline; a child still running at the deadline is killed.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_learnchain")
}

/// Runs the binary with `args` in `cwd`, killing it after `timeout`.
fn run(args: &[&str], cwd: &Path, timeout: Duration) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn learnchain");
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return child.wait_with_output().expect("output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("learnchain {args:?} ran past {timeout:?}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The shapes of series `name` in an SVG from the plot writer.
fn series(svg: &str, name: &str) -> String {
    let open = format!(r#"<g class="series" data-series="{name}">"#);
    let mut out = String::new();
    let mut rest = svg;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find("</g>").expect("closed group");
        out.push_str(&after[..end]);
        rest = &after[end..];
    }
    out
}

const QUICK: Duration = Duration::from_secs(30);

#[test]
fn devnet_plots_one_point_per_height() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plot = dir.path().join("run.svg");
    let summary = dir.path().join("summary.json");
    let data = dir.path().join("devnet");
    let out = run(
        &["devnet", "--blocks", "3", "--data-dir", s(&data), "--summary-json", s(&summary), "--plot", s(&plot)],
        dir.path(),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "devnet failed: {:?}\n{}", out.status, stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("JSON");
    let height = v["height"].as_u64().expect("height");
    assert!(height >= 3, "{v}");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    // Heights 0 to the head: one marker each, for accuracy and for ε.
    let accuracy = series(&svg, "test accuracy");
    assert_eq!(accuracy.matches("<circle").count() as u64, height + 1, "{accuracy}");
    let epsilon = series(&svg, "ε spent (max over 4 data sources)");
    assert_eq!(epsilon.matches("<circle").count() as u64, height + 1, "{epsilon}");
    assert!(svg.contains(r#"data-series="ε budget""#));
    assert!(String::from_utf8_lossy(&out.stdout).contains("plot: test accuracy and ε spent by height in"));
}

#[test]
fn a_plot_that_cannot_be_written_is_refused_before_the_devnet_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let missing = dir.path().join("no-such-dir").join("p.svg");
    let out = run(&["devnet", "--plot", s(&missing), "--data-dir", s(&dir.path().join("d"))], dir.path(), QUICK);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--plot") && err.contains("no-such-dir") && err.contains("does not exist"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing ran: no devnet directory was made.
    assert!(!dir.path().join("d").exists());
    let out = run(&["devnet", "--plot", "p.jpg"], dir.path(), QUICK);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("p.jpg: unknown image type; the file name must end in .svg or .png"), "{}", stderr(&out));
    assert!(started.elapsed() < QUICK);
}

#[test]
fn plot_draws_a_csv_table_as_png_and_svg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("tradeoff.csv");
    std::fs::write(&csv, "epsilon budget,accuracy mean,eps spent\n0.25,80.1,0.24\n0.5,88.0,0.49\n1,93.2,0.98\n2,95.0,1.9\n").expect("csv");
    let png = dir.path().join("t.png");
    let out = run(
        &["plot", "--input", s(&csv), "--output", s(&png), "--log-x", "--right", "eps spent", "--title", "a & b"],
        dir.path(),
        QUICK,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).expect("png")));
    let reader = decoder.read_info().expect("a PNG");
    assert_eq!((reader.info().width, reader.info().height), (960, 540));
    let svg = dir.path().join("t.svg");
    let out = run(&["plot", "--input", s(&csv), "--output", s(&svg), "--title", "a & b"], dir.path(), QUICK);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert!(text.contains("<title>a &amp; b</title>"));
    assert_eq!(series(&text, "accuracy mean").matches("<circle").count(), 4);
}

#[test]
fn plot_names_the_bad_cell_of_a_broken_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("broken.csv");
    std::fs::write(&csv, "rule,0 adv.,1 adv.\nmean,97.4,90\nmedian,96.5,fail\n").expect("csv");
    let out = run(&["plot", "--input", s(&csv), "--output", "x.svg"], dir.path(), QUICK);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("broken.csv") && err.contains(r#"line 3, column 3 ("1 adv."): "fail" is not a finite number"#), "{err}");
    assert!(!dir.path().join("x.svg").exists());
    let out = run(&["plot", "--input", s(&csv), "--output", "x.gif"], dir.path(), QUICK);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("x.gif: unknown image type"), "{}", stderr(&out));
}
