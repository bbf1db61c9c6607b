//! End-to-end tests of the real `learnchain` binary.
//!
//! Every child process runs under a [`Proc`] guard that kills (SIGKILL) and reaps it on
//! drop, so a failed assertion or a timeout never leaves a process behind. Each child's
//! stdout and stderr are drained by reader threads into one channel; tests wait on *that*
//! (lines as they arrive, end of output when the process exits) or on JSON-RPC answers,
//! always with a deadline — never on fixed sleeps, except a short backoff between RPC
//! attempts while a process is starting.
//!
//! The two devnet tests share the machine's cores with a proof-of-work race, so they take
//! a lock and run one at a time.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Serialises the tests that run a whole devnet (they race proof of work on every core).
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_learnchain")
}

/// One line of a child's output, or the end of one of its streams.
enum Out {
    Stdout(String),
    Stderr(String),
    Eof,
}

/// What [`Proc::next`] saw (the line itself is recorded in the `Proc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Stdout,
    Stderr,
    Eof,
}

/// A finished process.
struct Done {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Done {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts a clean failure: exit code `code`, no panic, stderr naming every `needle`.
    fn assert_clean_error(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code(), Some(code), "exit status {:?}\nstderr:\n{}", self.status, self.stderr);
        assert!(!self.stderr.contains("panicked"), "the binary panicked:\n{}", self.stderr);
        for n in needles {
            assert!(self.stderr.contains(n), "stderr does not mention {n:?}:\n{}", self.stderr);
        }
    }
}

/// A running child process, killed and reaped on drop.
struct Proc {
    what: String,
    child: Child,
    rx: mpsc::Receiver<Out>,
    open_streams: usize,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

fn pump<R: Read + Send + 'static>(r: R, tx: mpsc::Sender<Out>, wrap: fn(String) -> Out) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(wrap(line)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Out::Eof);
    });
}

impl Proc {
    fn spawn(args: &[&str], cwd: &Path) -> Proc {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin()));
        let (tx, rx) = mpsc::channel();
        pump(child.stdout.take().expect("piped stdout"), tx.clone(), Out::Stdout);
        pump(child.stderr.take().expect("piped stderr"), tx, Out::Stderr);
        Proc { what: format!("learnchain {}", args.join(" ")), child, rx, open_streams: 2, stdout: vec![], stderr: vec![] }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Output so far, for failure messages.
    fn transcript(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout.join("\n"), self.stderr.join("\n"))
    }

    /// Takes one message from the reader threads, recording lines; `None` at the deadline.
    fn next(&mut self, deadline: Instant) -> Option<Ev> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(out) => Some(self.record(out)),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.open_streams = 0;
                Some(Ev::Eof)
            }
        }
    }

    /// Records whatever the reader threads have sent, without waiting.
    fn drain(&mut self) {
        while let Ok(out) = self.rx.try_recv() {
            self.record(out);
        }
    }

    fn record(&mut self, out: Out) -> Ev {
        match out {
            Out::Stdout(l) => {
                self.stdout.push(l);
                Ev::Stdout
            }
            Out::Stderr(l) => {
                self.stderr.push(l);
                Ev::Stderr
            }
            Out::Eof => {
                self.open_streams = self.open_streams.saturating_sub(1);
                Ev::Eof
            }
        }
    }

    /// The next stdout line; `None` once stdout and stderr are closed. Panics (killing the
    /// child) at the deadline.
    fn next_stdout_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if self.open_streams == 0 {
                return None;
            }
            match self.next(deadline) {
                Some(Ev::Stdout) => return self.stdout.last().cloned(),
                Some(_) => {}
                None => panic!("`{}`: no output before the deadline\n{}", self.what, self.transcript()),
            }
        }
    }

    /// Whether the process has exited (without waiting).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to end: first for both output streams to close (which they
    /// do when it exits), then reaps it. Panics (killing the child) at the deadline.
    fn wait(mut self, deadline: Instant) -> Done {
        while self.open_streams > 0 {
            if self.next(deadline).is_none() {
                panic!("`{}` did not exit in time\n{}", self.what, self.transcript());
            }
        }
        // Both pipes are closed, so the process is exiting; reap it.
        let status = loop {
            if let Some(s) = self.exited() {
                break s;
            }
            if Instant::now() >= deadline {
                panic!("`{}` closed its output but did not exit\n{}", self.what, self.transcript());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Done { status, stdout: self.stdout.join("\n"), stderr: self.stderr.join("\n") }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion within `timeout`.
fn run(args: &[&str], cwd: &Path, timeout: Duration) -> Done {
    Proc::spawn(args, cwd).wait(Instant::now() + timeout)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const QUICK: Duration = Duration::from_secs(20);

/// The height printed at the start of a devnet block line (`  height  block  miner …`).
fn block_line_height(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

fn read_summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("summary {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{text}"))
}

fn check_summary_keys(v: &Value) {
    for key in [
        "height",
        "head_hash",
        "model_hash",
        "nodes_agree",
        "test_accuracy",
        "elapsed_s",
        "submissions",
        "epsilon_spent_max",
        "epsilon_budget",
        "noise_multiplier",
        "aggregation",
        "adversaries",
        "update_encoding",
        "seconds_per_block",
        "bytes_per_block",
        "wire_bytes_per_node_per_round",
        "validation_ms_per_block",
        "blocks_mined",
        "block_interval_ms",
    ] {
        assert!(v.get(key).is_some(), "summary lacks {key:?}: {v}");
    }
    assert!(v["block_interval_ms"].as_u64().is_some_and(|ms| ms >= 200), "sized to the round, at least 200 ms: {v}");
    assert_eq!(v["aggregation"], "mean", "the devnet's default rule");
    assert_eq!(v["adversaries"], 0);
    assert_eq!(v["update_encoding"], "i32", "the devnet's default encoding");
    for key in ["seconds_per_block", "bytes_per_block", "wire_bytes_per_node_per_round"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} is not a positive number: {v}");
    }
}

// ---- a. devnet summary --------------------------------------------------------------------

#[test]
fn devnet_mines_five_blocks_and_writes_a_summary() {
    let _heavy = heavy_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("devnet");
    let summary = dir.path().join("summary.json");
    let done = run(
        &["devnet", "--blocks", "5", "--summary-json", s(&summary), "--data-dir", s(&data)],
        dir.path(),
        Duration::from_secs(60),
    );
    assert!(done.status.success(), "devnet failed: {:?}\nstdout:\n{}\nstderr:\n{}", done.status, done.stdout, done.stderr);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    let v = read_summary(&summary);
    check_summary_keys(&v);
    assert_eq!(v["nodes_agree"], Value::Bool(true), "{v}");
    assert!(v["height"].as_u64().is_some_and(|h| h >= 5), "{v}");
    assert!(v["test_accuracy"].as_f64().is_some_and(|a| a >= 0.9), "{v}");
    assert!(v["submissions"].as_u64().is_some_and(|n| n >= 5), "{v}");
    assert!(v["head_hash"].as_str().is_some_and(|h| h.len() == 64), "{v}");
    assert!(v["model_hash"].as_str().is_some_and(|h| h.len() == 64), "{v}");
    assert!(v["elapsed_s"].as_f64().is_some_and(|t| t > 0.0), "{v}");
    // DP is on by default: every data source spent something, and no more than the budget.
    assert_eq!(v["epsilon_budget"].as_f64(), Some(2.0), "{v}");
    assert!(v["epsilon_spent_max"].as_f64().is_some_and(|e| e > 0.0 && e <= 2.0), "{v}");
    assert!(v["noise_multiplier"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    // Its noise was planned for about 5 blocks: resuming for 50 more would exhaust the
    // sources' budgets and stall the chain, so it is refused up front.
    run(&["devnet", "--blocks", "50", "--data-dir", s(&data)], dir.path(), QUICK)
        .assert_clean_error(1, &["source-1 has spent", "lower --blocks"]);
}

// ---- b. kill -9 durability ------------------------------------------------------------------

#[test]
fn devnet_resumes_after_kill_9() {
    let _heavy = heavy_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("devnet");
    // One miner: this test is about durability, not fork resolution, and a single miner
    // keeps the run short and free of ties. The same shape is passed on the resume, which
    // takes the genesis and keys from the directory.
    let shape = ["--miners", "1", "--data-sources", "4", "--block-interval-ms", "300"];
    let mut args = vec!["devnet", "--blocks", "1000", "--data-dir", s(&data)];
    args.extend(shape);
    let mut p = Proc::spawn(&args, dir.path());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut block_lines = 0;
    let mut last = 0u64;
    while block_lines < 8 {
        match p.next_stdout_line(deadline) {
            Some(line) => {
                if let Some(h) = block_line_height(&line) {
                    block_lines += 1;
                    last = last.max(h);
                }
            }
            None => panic!("devnet exited before printing 8 blocks\n{}", p.transcript()),
        }
    }
    assert!(p.exited().is_none(), "devnet should still be mining");
    // SIGKILL: no shutdown path runs, whatever the stores were doing.
    p.child.kill().expect("kill -9");
    let status = p.wait(Instant::now() + Duration::from_secs(10)).status;
    assert!(!status.success(), "a killed process cannot succeed: {status:?}");
    // Every privacy ledger survived the kill intact, with the rounds released so far.
    let ledgers = |what: &str| -> Vec<(usize, f64)> {
        (1..=4)
            .map(|i| {
                let path = data.join(format!("source-{i}")).join("privacy-ledger.json");
                let l = learnchain_privacy::PrivacyLedger::open(&path, 2.0, 1e-5)
                    .unwrap_or_else(|e| panic!("{what}: ledger {} unreadable: {e}", path.display()));
                (l.rounds().len(), l.spent().epsilon)
            })
            .collect()
    };
    let before = ledgers("after kill -9");
    assert!(before.iter().all(|&(rounds, eps)| rounds >= 1 && eps > 0.0), "{before:?}");

    let summary = dir.path().join("summary.json");
    let mut args = vec!["devnet", "--blocks", "3", "--data-dir", s(&data), "--summary-json", s(&summary)];
    args.extend(shape);
    let done = run(&args, dir.path(), Duration::from_secs(60));
    assert!(done.status.success(), "resumed devnet failed: {:?}\nstdout:\n{}\nstderr:\n{}", done.status, done.stdout, done.stderr);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    let v = read_summary(&summary);
    check_summary_keys(&v);
    assert_eq!(v["nodes_agree"], Value::Bool(true), "{v}");
    let after = ledgers("after the resume");
    for (b, a) in before.iter().zip(&after) {
        assert!(a.0 >= b.0 && a.1 >= b.1, "a ledger went backwards: {before:?} → {after:?}");
    }
    let max_before = before.iter().map(|x| x.1).fold(0.0, f64::max);
    assert!(v["epsilon_spent_max"].as_f64().is_some_and(|e| e >= max_before), "{v}, before {max_before}");
    let height = v["height"].as_u64().expect("height");
    // The observer printed `last` only after storing it, so the resumed run starts at or
    // above it and mines 3 more (1 block of slack for a reorg at the tip).
    assert!(height > last, "resumed at {height}, but {last} was printed before the kill: {v}");
    assert!(height + 1 >= last + 3, "resumed devnet reached {height}, expected about {} (last printed {last})", last + 3);
    // The resumed run started from the stored head, not from genesis.
    let resumed_from = done
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("mining 3 blocks (height "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|h| h.parse::<u64>().ok());
    if let Some(start) = resumed_from {
        assert!(start >= last, "resumed from height {start}, below the {last} printed before the kill");
    }
}

// ---- c. bad input -------------------------------------------------------------------------

/// A fresh genesis for breast-cancer with one member; returns its path.
fn genesis_file(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    // The ristretto255 base point: a valid member key nobody here signs with.
    let member = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76";
    let done = run(
        &["genesis", "new", "--out", s(&out), "--dataset", "breast-cancer", "--member", member],
        dir,
        QUICK,
    );
    assert!(done.status.success(), "genesis new failed: {}", done.stderr);
    out
}

/// `run` flags that keep a node that should not start from touching shared ports.
fn isolated(data_dir: &Path) -> Vec<&str> {
    vec!["--data-dir", s(data_dir), "--rpc", "none", "--listen", "/ip4/127.0.0.1/tcp/0"]
}

/// `data export` writes a built-in split as CSV that reads back as a data source would read
/// it: exporting that file again gives the same bytes; mistakes are named.
#[test]
fn data_export_writes_a_split_that_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("test.csv"), dir.path().join("again.csv"));
    let done = run(&["data", "export", "--data", "builtin:digits", "--split", "test", "--out", s(&a)], dir.path(), QUICK);
    assert!(done.status.success(), "export failed:\n{}", done.stderr);
    let text = std::fs::read_to_string(&a).expect("read the export");
    let header = text.lines().next().expect("a header");
    assert!(header.ends_with(",label") && header.split(',').count() == 65, "{header}");
    // 1797 digits, a fifth of them (rounded down) in the test split.
    assert_eq!(text.lines().count() - 1, 359, "{}", done.stderr);
    let csv = format!("csv:{}", s(&a));
    let done = run(&["data", "export", "--data", &csv, "--out", s(&b)], dir.path(), QUICK);
    assert!(done.status.success(), "re-export failed:\n{}", done.stderr);
    assert_eq!(std::fs::read(&b).expect("read"), text.as_bytes(), "the CSV reads back to the same dataset");

    run(&["data", "export", "--data", "builtin:digits", "--out", s(&a)], dir.path(), QUICK)
        .assert_clean_error(1, &["test.csv", "never overwritten"]);
    run(&["data", "export", "--data", "builtin:digits", "--split", "middle"], dir.path(), QUICK)
        .assert_clean_error(1, &["--split", "middle"]);
    run(&["data", "export", "--data", "builtin:nope"], dir.path(), QUICK).assert_clean_error(1, &["nope", "breast-cancer"]);
}

#[test]
fn missing_genesis_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("d");
    let mut args = vec!["run", "--genesis", "/nonexistent.toml"];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["/nonexistent.toml"]);
}

#[test]
fn genesis_that_is_not_toml_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("broken.toml");
    std::fs::write(&g, "name = \"x\"\nthis is [[ not toml =\n").expect("write");
    let d = dir.path().join("d");
    let mut args = vec!["run", "--genesis", s(&g)];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["broken.toml", "TOML"]);
}

#[test]
fn semantically_invalid_genesis_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genesis_file(dir.path(), "genesis.toml");
    let text = std::fs::read_to_string(&g).expect("read genesis");
    let d = dir.path().join("d");

    // A quorum larger than the member list (one member).
    assert!(text.contains("quorum = 1\n"), "unexpected genesis layout:\n{text}");
    let bad_quorum = dir.path().join("bad-quorum.toml");
    std::fs::write(&bad_quorum, text.replace("quorum = 1\n", "quorum = 5\n")).expect("write");
    let mut args = vec!["run", "--genesis", s(&bad_quorum)];
    args.extend(isolated(&d));
    let done = run(&args, dir.path(), QUICK);
    done.assert_clean_error(1, &["bad-quorum.toml", "quorum"]);
    assert!(done.stderr.contains("`members`") || done.stderr.contains("consensus.quorum"), "{}", done.stderr);

    // A fixed-point scale out of range.
    assert!(text.contains("frac_bits = 16\n"), "unexpected genesis layout:\n{text}");
    let bad_bits = dir.path().join("bad-bits.toml");
    std::fs::write(&bad_bits, text.replace("frac_bits = 16\n", "frac_bits = 40\n")).expect("write");
    let mut args = vec!["run", "--genesis", s(&bad_bits)];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["bad-bits.toml", "model.frac_bits"]);

    // A rule the quorum cannot satisfy (krum:1 needs 5 submissions per block).
    assert!(text.contains("aggregation = \"mean\"\n"), "unexpected genesis layout:\n{text}");
    let bad_rule = dir.path().join("bad-rule.toml");
    std::fs::write(&bad_rule, text.replace("aggregation = \"mean\"\n", "aggregation = { krum = { f = 1 } }\n")).expect("write");
    let mut args = vec!["run", "--genesis", s(&bad_rule)];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["bad-rule.toml", "consensus.aggregation", "krum:1", "at least 5"]);

    // `genesis show` validates the same way.
    run(&["genesis", "show", s(&bad_quorum)], dir.path(), QUICK).assert_clean_error(1, &["quorum"]);
    // Nothing was created for a node that never started.
    assert!(!d.join("chain.redb").exists());
}

#[test]
fn unknown_role_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(&["run", "--role", "bogus"], dir.path(), QUICK).assert_clean_error(2, &["bogus"]);
    // Bad rules and adversaries are named, wherever they are given.
    let g = genesis_file(dir.path(), "genesis.toml");
    let d = dir.path().join("d");
    let mut args = vec!["run", "--genesis", s(&g), "--role", "data-source", "--data", "builtin:breast-cancer", "--adversary", "sign-flop"];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["adversary", "sign-flop"]);
    let mut args = vec!["run", "--genesis", s(&g), "--role", "observer", "--adversary", "zero"];
    args.extend(isolated(&d));
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["only a data source"]);
    run(&["devnet", "--aggregation", "krum:x"], dir.path(), QUICK).assert_clean_error(1, &["--aggregation", "krum"]);
    run(&["devnet", "--aggregation", "krum:2", "--data-sources", "4"], dir.path(), QUICK)
        .assert_clean_error(1, &["krum:2", "at least 7"]);
    run(&["devnet", "--hidden", "200000"], dir.path(), QUICK).assert_clean_error(1, &["--hidden 200000", "model.hidden"]);
    run(&["devnet", "--data-sources", "1000"], dir.path(), QUICK)
        .assert_clean_error(1, &["--data-sources 1000", "training examples"]);
    let out = dir.path().join("g2.toml");
    run(&["genesis", "new", "--out", s(&out), "--dataset", "breast-cancer", "--member", "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76", "--aggregation", "trimmed-mean:0.7"], dir.path(), QUICK)
        .assert_clean_error(1, &["trimmed-mean", "0.5"]);
}

#[test]
fn ragged_csv_row_is_named_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("member.key");
    let done = run(&["keys", "new", s(&key)], dir.path(), QUICK);
    assert!(done.status.success(), "keys new: {}", done.stderr);
    let g = dir.path().join("genesis.toml");
    let done = run(
        &["genesis", "new", "--out", s(&g), "--features", "3", "--classes", "2", "--member-key", s(&key)],
        dir.path(),
        QUICK,
    );
    assert!(done.status.success(), "genesis new: {}", done.stderr);
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,1\n1,1,1,0\n").expect("write csv");
    let data = format!("csv:{}", s(&csv));
    let d = dir.path().join("d");
    let args = [
        "run", "--genesis", s(&g), "--role", "data-source", "--member-key", s(&key), "--data", &data,
        "--label-column", "label", "--data-dir", s(&d), "--rpc", "none", "--listen", "/ip4/127.0.0.1/tcp/0",
    ];
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["line 4", "data.csv"]);
}

#[test]
fn a_budget_that_cannot_pay_for_one_round_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("member.key");
    let done = run(&["keys", "new", s(&key)], dir.path(), QUICK);
    assert!(done.status.success(), "keys new: {}", done.stderr);
    let g = dir.path().join("genesis.toml");
    let done = run(
        &["genesis", "new", "--out", s(&g), "--dataset", "breast-cancer", "--member-key", s(&key)],
        dir.path(),
        QUICK,
    );
    assert!(done.status.success(), "genesis new: {}", done.stderr);
    let d = dir.path().join("d");
    let base = [
        "run", "--genesis", s(&g), "--role", "data-source", "--member-key", s(&key), "--data", "builtin:breast-cancer",
        "--data-dir", s(&d), "--rpc", "none", "--listen", "/ip4/127.0.0.1/tcp/0",
    ];
    let mut args = base.to_vec();
    args.extend(["--epsilon-budget", "0.01"]);
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["--epsilon-budget 0.01", "can never allow one round"]);
    assert!(!d.join("privacy-ledger.json").exists(), "no ledger for a node that never started");
    // Less noise than the genesis policy allows would be rejected by every validator.
    let mut args = base.to_vec();
    args.extend(["--noise-multiplier", "0.5"]);
    run(&args, dir.path(), QUICK).assert_clean_error(1, &["--noise-multiplier", "0.5"]);
    // The devnet refuses a budget it cannot plan for.
    run(&["devnet", "--epsilon-budget", "0"], dir.path(), QUICK).assert_clean_error(1, &["--epsilon-budget"]);
    run(&["devnet", "--epsilon-budget", "0.000001", "--data-dir", s(&dir.path().join("dev"))], dir.path(), QUICK)
        .assert_clean_error(1, &["--epsilon-budget"]);
}

#[test]
fn config_file_with_unknown_field_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = dir.path().join("node.toml");
    std::fs::write(&c, "name = \"n\"\nrolez = [\"miner\"]\n").expect("write");
    run(&["run", "--config", s(&c)], dir.path(), QUICK).assert_clean_error(1, &["node.toml", "rolez"]);
    // A known field in a section with a typo is refused too.
    std::fs::write(&c, "[data]\nsauce = \"builtin:digits\"\n").expect("write");
    run(&["run", "--config", s(&c)], dir.path(), QUICK).assert_clean_error(1, &["node.toml", "sauce"]);
}

#[test]
fn keys_new_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k.key");
    let first = run(&["keys", "new", s(&key)], dir.path(), QUICK);
    assert!(first.status.success(), "{}", first.stderr);
    let public = first.stdout.trim().to_string();
    assert_eq!(public.len(), 64, "public key: {public:?}");
    let before = std::fs::read(&key).expect("key file");
    run(&["keys", "new", s(&key)], dir.path(), QUICK).assert_clean_error(1, &["k.key", "refusing to overwrite"]);
    assert_eq!(std::fs::read(&key).expect("key file"), before, "the key file changed");
    let show = run(&["keys", "show", s(&key)], dir.path(), QUICK);
    assert!(show.status.success(), "{}", show.stderr);
    assert!(show.stdout.contains(&public), "{}", show.stdout);
    assert!(show.stdout.contains("encrypted: no"), "{}", show.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key files are private");
    }
}

/// A sealed member key: `keys show` needs no passphrase; a node started with the wrong one
/// stops with an error that says so, naming the file, before it listens.
#[test]
fn a_wrong_passphrase_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("sealed.key");
    let right = dir.path().join("right.txt");
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&right, "correct horse battery staple\n").expect("write");
    std::fs::write(&wrong, "incorrect horse\n").expect("write");
    let made = run(&["keys", "new", s(&key), "--passphrase-file", s(&right)], dir.path(), QUICK);
    assert!(made.status.success(), "{}", made.stderr);
    let public = made.stdout.trim().to_string();
    let show = run(&["keys", "show", s(&key)], dir.path(), QUICK);
    assert!(show.stdout.contains(&public) && show.stdout.contains("argon2id"), "{}", show.stdout);
    let g = genesis_file(dir.path(), "genesis.toml");
    let data_dir = dir.path().join("node");
    let args = |pass: &Path| {
        vec![
            "run".to_string(), "--genesis".into(), s(&g).into(), "--data-dir".into(), s(&data_dir).into(),
            "--role".into(), "data-source".into(), "--data".into(), "builtin:breast-cancer".into(),
            "--member-key".into(), s(&key).into(), "--passphrase-file".into(), s(pass).into(),
            "--rpc".into(), "none".into(), "--listen".into(), "/ip4/127.0.0.1/tcp/0".into(),
        ]
    };
    let a = args(&wrong);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run(&refs, dir.path(), QUICK).assert_clean_error(1, &["wrong passphrase", "sealed.key"]);
    // The right passphrase opens it; the key is no genesis member of this closed chain,
    // which the node says instead.
    let a = args(&right);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run(&refs, dir.path(), QUICK).assert_clean_error(1, &[&public, "not a member"]);
}

// ---- d. RPC and graceful shutdown -----------------------------------------------------------

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn observer_serves_rpc_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genesis_file(dir.path(), "genesis.toml");
    let d = dir.path().join("observer");
    let port = free_port();
    let rpc = format!("127.0.0.1:{port}");
    let addr: std::net::SocketAddr = rpc.parse().expect("addr");
    let mut p = Proc::spawn(
        &["run", "--genesis", s(&g), "--role", "observer", "--data-dir", s(&d), "--rpc", &rpc, "--listen", "/ip4/127.0.0.1/tcp/0"],
        dir.path(),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let call = |method: &str| {
        rt.block_on(learnchain_rpc::client::call_with_timeout(addr, method, Value::Null, Duration::from_secs(5)))
    };

    // Wait for the node to answer; the event is its start, so poll with a short backoff.
    let deadline = Instant::now() + Duration::from_secs(20);
    let head = loop {
        if let Some(status) = p.exited() {
            // Drain what it said before failing.
            while p.open_streams > 0 && p.next(Instant::now() + Duration::from_secs(2)).is_some() {}
            panic!("observer exited early with {status:?}\n{}", p.transcript());
        }
        match call("chain_head") {
            Ok(v) => break v,
            Err(_) if Instant::now() < deadline => {
                p.drain();
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("chain_head never answered: {e}\n{}", p.transcript()),
        }
    };
    assert_eq!(head["height"], 0, "fresh observer head: {head}");
    let methods = call("rpc_methods").expect("rpc_methods");
    let names: Vec<&str> = methods.as_array().expect("array").iter().filter_map(Value::as_str).collect();
    for m in ["chain_head", "chain_getBlock", "model_get", "model_metrics", "net_peers", "node_info"] {
        assert!(names.contains(&m), "rpc_methods lacks {m}: {names:?}");
    }
    let info = call("node_info").expect("node_info");
    assert!(info.to_string().contains("observer"), "node_info: {info}");

    // Graceful shutdown on SIGTERM.
    let pid = p.pid().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(killed.success(), "kill -TERM {pid} failed");
    let done = p.wait(Instant::now() + Duration::from_secs(10));
    assert!(
        done.status.success(),
        "observer did not exit 0 on SIGTERM: {:?}\nstderr:\n{}",
        done.status,
        done.stderr
    );
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    // The RPC port is released.
    assert!(call("chain_head").is_err(), "RPC still answers after shutdown");
}

/// The enrolment flow with the real binary: an authority key and a member key from
/// `keys new`, a genesis naming the authority and no members, a miner, then
/// `members enrol` and `members revoke` against its RPC, each landing in a block (a block
/// of registrations only, after the round timeout) and showing in `members list`.
#[test]
fn an_authority_enrols_and_revokes_a_member_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let authority = cwd.join("authority.key");
    let member = cwd.join("member.key");
    let a = run(&["keys", "new", "--authority", s(&authority)], cwd, QUICK);
    assert!(a.status.success(), "{}", a.stderr);
    let m = run(&["keys", "new", s(&member)], cwd, QUICK);
    assert!(m.status.success(), "{}", m.stderr);
    let member_pub = m.stdout.trim().to_string();
    let g = cwd.join("genesis.toml");
    let made = run(
        &["genesis", "new", "--out", s(&g), "--dataset", "breast-cancer", "--authority-key", s(&authority), "--initial-difficulty", "1000"],
        cwd,
        QUICK,
    );
    assert!(made.status.success(), "{}", made.stderr);

    let port = free_port();
    let rpc = format!("127.0.0.1:{port}");
    let addr: std::net::SocketAddr = rpc.parse().expect("addr");
    let d = cwd.join("miner");
    let mut p = Proc::spawn(
        &["run", "--genesis", s(&g), "--role", "miner", "--data-dir", s(&d), "--rpc", &rpc, "--listen", "/ip4/127.0.0.1/tcp/0"],
        cwd,
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let members = |p: &mut Proc, until: &dyn Fn(&Value) -> bool, what: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = p.exited() {
                panic!("miner exited early with {status:?}\n{}", p.transcript());
            }
            let v = rt.block_on(learnchain_rpc::client::call_with_timeout(addr, "members_list", Value::Null, Duration::from_secs(5)));
            match v {
                Ok(v) if until(&v) => return v,
                _ if Instant::now() < deadline => {
                    p.drain();
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => panic!("{what}: {other:?}\n{}", p.transcript()),
            }
        }
    };
    let empty = members(&mut p, &|v| v["members"].is_array(), "the node never answered");
    assert_eq!(empty["members"].as_array().map(Vec::len), Some(0));

    let enrol = run(&["members", "enrol", "--member-key", s(&member), "--authority-key", s(&authority), "--rpc", &rpc], cwd, QUICK);
    assert!(enrol.status.success(), "{}", enrol.stderr);
    assert!(enrol.stdout.contains(&member_pub), "{}", enrol.stdout);
    let entry = |v: &Value| v["members"].as_array().and_then(|a| a.iter().find(|m| m["key"] == member_pub.as_str()).cloned());
    let listed = members(&mut p, &|v| entry(v).is_some(), "the registration never reached a block");
    let e = entry(&listed).expect("entry");
    assert!(e["registered_at"].as_u64().is_some_and(|h| h >= 1), "{e}");
    assert_eq!(e["active"], true);

    // Enrolling the same key again is refused with the reason.
    run(&["members", "enrol", "--member-key", s(&member), "--authority-key", s(&authority), "--rpc", &rpc], cwd, QUICK)
        .assert_clean_error(1, &["already registered"]);
    // Open enrolment is closed on this chain.
    run(&["members", "enrol", "--member-key", s(&member), "--rpc", &rpc], cwd, QUICK).assert_clean_error(1, &["no open enrolment"]);

    let revoke = run(&["members", "revoke", "--member", &member_pub, "--authority-key", s(&authority), "--rpc", &rpc], cwd, QUICK);
    assert!(revoke.status.success(), "{}", revoke.stderr);
    members(&mut p, &|v| entry(v).is_some_and(|e| e["revoked_at"].is_u64()), "the revocation never reached a block");
    let list = run(&["members", "list", "--rpc", &rpc], cwd, QUICK);
    assert!(list.status.success() && list.stdout.contains("revoked at"), "{}", list.stdout);

    let pid = p.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let done = p.wait(Instant::now() + Duration::from_secs(10));
    assert!(done.status.success(), "{:?}\n{}", done.status, done.stderr);
}

// ---- joining a network: the mistakes a newcomer makes ----------------------------------------

/// Waits until the node behind `p` answers `learnchain status --rpc`; returns the JSON.
fn wait_status(p: &mut Proc, rpc: &str, cwd: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = p.exited() {
            while p.open_streams > 0 && p.next(Instant::now() + Duration::from_secs(2)).is_some() {}
            panic!("node exited early with {status:?}\n{}", p.transcript());
        }
        let done = run(&["status", "--rpc", rpc, "--json", "--timeout-s", "2"], cwd, QUICK);
        if done.status.success() {
            return serde_json::from_str(done.stdout.trim()).unwrap_or_else(|e| panic!("status --json ({e}): {}", done.stdout));
        }
        assert!(Instant::now() < deadline, "status never answered: {}\n{}", done.stderr, p.transcript());
        p.drain();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One running node, and everything a second node can get wrong when it joins: the same
/// P2P port, the same RPC port, another network's genesis, a data directory of another
/// chain. Each stops the newcomer with exit 1 and a message naming the problem and the
/// fix. `learnchain status` reads the running node, and fails clearly once it is gone.
#[test]
fn joining_mistakes_stop_the_node_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let ours = genesis_file(cwd, "ours.toml");
    let other = cwd.join("other.toml");
    let made = run(
        &["genesis", "new", "--out", s(&other), "--name", "another-network", "--dataset", "breast-cancer", "--open-stamp-bits", "8"],
        cwd,
        QUICK,
    );
    assert!(made.status.success(), "{}", made.stderr);
    // --keep-existing keeps a valid genesis and says so.
    let kept = run(&["genesis", "new", "--out", s(&other), "--keep-existing", "--dataset", "breast-cancer"], cwd, QUICK);
    assert!(kept.status.success() && kept.stdout.contains("kept"), "{}{}", kept.stdout, kept.stderr);

    let (p2p, rpc_port) = (free_port(), free_port());
    let listen = format!("/ip4/127.0.0.1/tcp/{p2p}");
    let rpc = format!("127.0.0.1:{rpc_port}");
    let d = cwd.join("first");
    let mut first = Proc::spawn(
        &["run", "--name", "first", "--genesis", s(&ours), "--data-dir", s(&d), "--rpc", &rpc, "--listen", &listen,
          "--data", "builtin:breast-cancer", "--split", "test"],
        cwd,
    );
    let st = wait_status(&mut first, &rpc, cwd);
    for key in ["name", "role", "height", "head_hash", "model_hash", "peers"] {
        assert!(st.get(key).is_some(), "status --json lacks {key}: {st}");
    }
    assert_eq!(st["name"], "first");
    assert_eq!(st["role"], "observer");
    assert!(st["accuracy"].as_f64().is_some(), "an observer with the test split reports accuracy: {st}");
    let line = run(&["status", "--rpc", &rpc], cwd, QUICK);
    assert!(line.status.success() && line.stdout.contains("first") && line.stdout.contains("height"), "{}", line.stdout);

    let second = cwd.join("second");
    run(&["run", "--genesis", s(&ours), "--data-dir", s(&second), "--rpc", "none", "--listen", &listen], cwd, QUICK)
        .assert_clean_error(1, &[&listen, "already in use", "--listen"]);
    run(&["run", "--genesis", s(&ours), "--data-dir", s(&second), "--rpc", &rpc, "--listen", "/ip4/127.0.0.1/tcp/0"], cwd, QUICK)
        .assert_clean_error(1, &[&rpc, "already in use", "--rpc"]);
    // Another network's genesis, pointed at our node as its bootnode.
    let joined = run(
        &["run", "--genesis", s(&other), "--data-dir", s(&cwd.join("third")), "--rpc", "none",
          "--listen", "/ip4/127.0.0.1/tcp/0", "--bootnode", &listen],
        cwd,
        Duration::from_secs(30),
    );
    let first_chain = st["chain_id"].as_str().expect("chain id").to_string();
    joined.assert_clean_error(1, &["runs chain", &first_chain, "genesis file is not this network's"]);

    let pid = first.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let done = first.wait(Instant::now() + Duration::from_secs(10));
    assert!(done.status.success(), "{:?}\n{}", done.status, done.stderr);
    run(&["status", "--rpc", &rpc, "--timeout-s", "2"], cwd, QUICK).assert_clean_error(1, &[&rpc, "does not answer"]);
    // The first node's data directory holds its chain; another genesis cannot use it.
    let mut args = vec!["run", "--genesis", s(&other)];
    args.extend(isolated(&d));
    run(&args, cwd, QUICK).assert_clean_error(1, &["data directory holds chain", "another --data-dir"]);
}

/// A bootnode nobody answers at: the node gives up after --bootnode-timeout-s and names
/// each address with its last dial error.
#[test]
fn an_unreachable_bootnode_stops_the_node_after_its_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let g = genesis_file(cwd, "genesis.toml");
    // A port nothing listens on.
    let closed = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut args = vec!["run", "--genesis", s(&g), "--bootnode", &closed, "--bootnode-timeout-s", "2"];
    let d = cwd.join("d");
    args.extend(isolated(&d));
    run(&args, cwd, Duration::from_secs(30))
        .assert_clean_error(1, &["no bootnode answered within 2 s", &closed, "--bootnode-timeout-s 0"]);
}

/// Waits until the node at `addr` answers `chain_head`, or panics with its transcript.
fn wait_for_rpc(p: &mut Proc, addr: std::net::SocketAddr, rt: &tokio::runtime::Runtime) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = p.exited() {
            while p.open_streams > 0 && p.next(Instant::now() + Duration::from_secs(2)).is_some() {}
            panic!("node exited early with {status:?}\n{}", p.transcript());
        }
        match rt.block_on(learnchain_rpc::client::call_with_timeout(addr, "chain_head", Value::Null, Duration::from_secs(5))) {
            Ok(v) => return v,
            Err(_) if Instant::now() < deadline => {
                p.drain();
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("chain_head never answered: {e}\n{}", p.transcript()),
        }
    }
}

/// The trained model leaves the chain: a devnet trains a two-hidden-layer MLP; a node
/// restarted on its data serves the model file over HTTP, `model export --rpc` and
/// `model export --data-dir` write the same bytes, `predict` reproduces the devnet's test
/// accuracy from the file, and damaged or foreign files are refused by name.
#[test]
fn model_export_and_predict_round_trip() {
    let _heavy = heavy_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let dv = dir.path().join("devnet");
    let summary = dir.path().join("summary.json");
    let done = run(
        &["devnet", "--blocks", "3", "--hidden", "8,4", "--summary-json", s(&summary), "--data-dir", s(&dv)],
        dir.path(),
        Duration::from_secs(90),
    );
    assert!(done.status.success(), "devnet failed:\n{}\n{}", done.stdout, done.stderr);
    let v = read_summary(&summary);
    let genesis = std::fs::read_to_string(dv.join("genesis.toml")).expect("genesis");
    let parsed = learnchain_proto::Genesis::from_toml_str(&genesis).expect("a valid genesis");
    assert_eq!(parsed.model.hidden, vec![8, 4]);
    assert!(parsed.model.input.is_some() && genesis.contains("[model.input]"), "{genesis}");

    let port = free_port();
    let rpc = format!("127.0.0.1:{port}");
    let addr: std::net::SocketAddr = rpc.parse().expect("addr");
    let g = dv.join("genesis.toml");
    let obs = dv.join("observer");
    let mut p = Proc::spawn(
        &["run", "--genesis", s(&g), "--role", "observer", "--data-dir", s(&obs), "--rpc", &rpc, "--listen", "/ip4/127.0.0.1/tcp/0"],
        dir.path(),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let head = wait_for_rpc(&mut p, addr, &rt);
    assert_eq!(head["height"], v["height"], "the observer resumes at the devnet's head");
    let (a, a1) = (dir.path().join("a.safetensors"), dir.path().join("a1.safetensors"));
    let exported = run(&["model", "export", "--rpc", &rpc, "--out", s(&a)], dir.path(), QUICK);
    assert!(exported.status.success(), "export --rpc failed:\n{}", exported.stderr);
    assert!(exported.stderr.contains("mlp[8,4]") && exported.stderr.contains("verified"), "{}", exported.stderr);
    let exported = run(&["model", "export", "--rpc", &rpc, "--height", "1", "--out", s(&a1)], dir.path(), QUICK);
    assert!(exported.status.success(), "export --height 1 failed:\n{}", exported.stderr);
    let got = rt
        .block_on(learnchain_rpc::client::get(addr, "/model.safetensors", Duration::from_secs(5)))
        .expect("GET /model.safetensors");
    assert_eq!(got, std::fs::read(&a).expect("read"), "GET serves the bytes export writes");
    assert_ne!(std::fs::read(&a1).expect("read"), got, "height 1 is another model");
    run(&["model", "export", "--rpc", &rpc, "--height", "99", "--out", s(&dir.path().join("x"))], dir.path(), QUICK)
        .assert_clean_error(1, &["404", "no block at height 99"]);
    let pid = p.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let stopped = p.wait(Instant::now() + Duration::from_secs(10));
    assert!(stopped.status.success(), "{}", stopped.stderr);

    let b = dir.path().join("b.safetensors");
    let exported = run(&["model", "export", "--data-dir", s(&obs), "--out", s(&b)], dir.path(), QUICK);
    assert!(exported.status.success(), "export --data-dir failed:\n{}", exported.stderr);
    assert_eq!(std::fs::read(&b).expect("read"), got, "a stopped node's data directory gives the same file");
    run(&["model", "export", "--data-dir", s(&obs), "--out", s(&b)], dir.path(), QUICK)
        .assert_clean_error(1, &["b.safetensors", "never overwritten"]);

    let out = dir.path().join("predictions.csv");
    let predicted = run(
        &["predict", "--model", s(&a), "--data", "builtin:breast-cancer", "--split", "test", "--out", s(&out), "--json"],
        dir.path(),
        QUICK,
    );
    assert!(predicted.status.success(), "predict failed:\n{}", predicted.stderr);
    let r: Value = serde_json::from_str(predicted.stdout.trim()).expect("one JSON object");
    assert_eq!(r["examples"], 113, "{r}");
    assert_eq!(r["accuracy"], v["test_accuracy"], "the file predicts as the observer evaluated: {r} / {v}");
    let confusion: u64 = r["confusion"].as_array().expect("matrix").iter().flat_map(|row| row.as_array().expect("row")).map(|n| n.as_u64().expect("count")).sum();
    assert_eq!(confusion, 113, "{r}");
    let rows = std::fs::read_to_string(&out).expect("predictions");
    assert_eq!(rows.lines().next(), Some("example,predicted,label,prob_0,prob_1"));
    assert_eq!(rows.lines().count(), 114);

    // Damaged, altered and foreign files.
    let bytes = std::fs::read(&a).expect("read");
    let (cut, flipped, foreign) = (dir.path().join("cut"), dir.path().join("flipped"), dir.path().join("foreign"));
    std::fs::write(&cut, &bytes[..bytes.len() - 9]).expect("write");
    let mut f = bytes.clone();
    let last = f.len() - 1;
    f[last] ^= 1;
    std::fs::write(&flipped, &f).expect("write");
    std::fs::write(&foreign, b"{\"weights\": [1, 2, 3]}").expect("write");
    let predict = |m: &Path| run(&["predict", "--model", s(m), "--data", "builtin:breast-cancer"], dir.path(), QUICK);
    predict(&cut).assert_clean_error(1, &["--model", "not a valid safetensors file"]);
    predict(&flipped).assert_clean_error(1, &["altered or damaged after export"]);
    predict(&foreign).assert_clean_error(1, &["not a valid safetensors file"]);
    run(&["predict", "--model", s(&a), "--data", "builtin:digits"], dir.path(), QUICK)
        .assert_clean_error(1, &["does not fit the model's input", "missing `mean radius`"]);
}
