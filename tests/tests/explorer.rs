//! The web explorer in a real headless Chromium (Debian's `chromium` package; another
//! binary through `LEARNCHAIN_CHROMIUM`).
//!
//! The test starts the browser with `--remote-debugging-port=0`, reads the DevTools address
//! from its stderr, and drives one page over the Chrome DevTools Protocol through the small
//! WebSocket client below: navigate, then evaluate a promise that resolves (through a
//! `MutationObserver`) once the page's machine-readable state — `data-ready`, `data-live`
//! and `data-ws-heads` on `<body>`, `data-head-height` on the head, one `[data-height]`
//! element per chart point — says what the test waits for. So every wait is on an event in
//! the page, with a deadline only as a safety net. The browser's console and log events
//! (`Runtime.exceptionThrown`, `Runtime.consoleAPICalled`, `Log.entryAdded`) and its stderr
//! (`CONSOLE`, `Uncaught`) must show no error.
//!
//! - `the_explorer_shows_a_training_run_and_follows_it_live`: a testnet (miner, two data
//!   sources, observer) mines a few blocks and stops; the observer's page shows
//!   `chain_head`'s height, one chart point per height `0..=head` (the model after genesis
//!   and after every block), the recent blocks with each one's aggregation outcome, a
//!   block's detail; then one more block is mined and arrives over the WebSocket.
//! - `chain_text_is_shown_as_text_and_the_socket_reconnects`: a fake node whose every string
//!   (node name, miner, member keys, peer agent, rule, outcomes, error texts) is markup;
//!   the page shows it literally and runs none of it; its head moves when the page
//!   subscribes, and again after the server restarts (the page reconnects).
//!
//! Without a browser they print `SKIPPED: chromium not found` and pass, unless
//! `LEARNCHAIN_REQUIRE_BROWSER=1` (as `.ci/run` sets), which makes them fail.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use learnchain_rpc::{
    AggregateReportView, ApiError, BanView, BlockRef, BlockView, HeadView, MemberView, MembersView,
    MempoolView, MetricsView, ModelView, NodeApi, NodeInfoView, PeerView, PrivacyStatusView,
    RegistrationView, SubmissionAggregationView, SubmissionView,
};
use learnchain_rpc::ws_client::WsClient;
use learnchain_tests::{Kind, Testnet};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Safety net of every wait.
const T: Duration = Duration::from_secs(60);
const OBSERVER: usize = 3;

// ---------------------------------------------------------------------------------------
// The browser

/// Where the browser is, or why the test does not run.
fn chromium_binary() -> Option<String> {
    if let Ok(path) = std::env::var("LEARNCHAIN_CHROMIUM") {
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].into_iter().find_map(|name| {
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).map(|p| p.display().to_string())
    })
}

/// The browser, or `None` after saying why the test is skipped (an error if the browser is
/// required).
fn browser_or_skip(test: &str) -> anyhow::Result<Option<Browser>> {
    match chromium_binary() {
        Some(binary) => Browser::launch(&binary).map(Some),
        None if std::env::var("LEARNCHAIN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            bail!("chromium not found (no `chromium` on PATH, no LEARNCHAIN_CHROMIUM) and LEARNCHAIN_REQUIRE_BROWSER=1")
        }
        None => {
            // Past the test harness's capture, so a passing run still says it.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: SKIPPED: chromium not found (install Debian's `chromium`, or set LEARNCHAIN_CHROMIUM)"
            );
            Ok(None)
        }
    }
}

/// A headless Chromium with its own profile directory, killed when dropped.
struct Browser {
    child: Child,
    devtools: String,
    stderr: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(binary: &str) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--mute-audio",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let stderr = child.stderr.take().context("chromium stderr")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.trim().to_owned());
                }
                if let Ok(mut all) = keep.lock() {
                    all.push(line);
                }
            }
        });
        let devtools = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let said = lines.lock().map(|l| l.join("\n")).unwrap_or_default();
                bail!("chromium did not report its DevTools address within 30 s; stderr:\n{said}");
            }
        };
        Ok(Browser { child, devtools, stderr: lines, _profile: profile })
    }

    /// Lines of the browser's stderr that report a page's console or an uncaught error.
    fn console_lines(&self) -> Vec<String> {
        self.stderr
            .lock()
            .map(|lines| lines.iter().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).cloned().collect())
            .unwrap_or_default()
    }

    /// A new tab, attached, with its console and log reported.
    async fn page(&self) -> anyhow::Result<Page> {
        let mut cdp = Cdp { ws: Ws::connect(&self.devtools).await?, next_id: 1, session: None, events: Vec::new() };
        let target = cdp.call("Target.createTarget", json!({ "url": "about:blank" })).await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = cdp.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true })).await?;
        cdp.session = Some(attached["sessionId"].as_str().context("sessionId")?.to_owned());
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            cdp.call(domain, json!({})).await?;
        }
        Ok(Page { cdp })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, driven over the DevTools protocol.
struct Page {
    cdp: Cdp,
}

/// What the page shows, as the test reads it: `SNAPSHOT` evaluated in the page.
const SNAPSHOT: &str = r##"(() => {
  const b = document.body, id = (x) => document.getElementById(x);
  const note = id("chart-note"), detail = id("detail");
  return {
    ready: b.dataset.ready, live: b.dataset.live, errors: Number(b.dataset.errors),
    rpcErrors: Number(b.dataset.rpcErrors), wsHeads: Number(b.dataset.wsHeads),
    headHeight: id("head").dataset.headHeight, headHash: id("head").dataset.headHash || null,
    points: [...document.querySelectorAll("#chart [data-height]")].map((e) => Number(e.dataset.height)),
    svgPoints: id("chart-svg") ? Number(id("chart-svg").dataset.points) : null,
    rows: [...document.querySelectorAll("#blocks-table tbody tr")].map((r) => ({
      height: Number(r.dataset.height), cells: [...r.cells].map((c) => c.textContent) })),
    chartNote: note.hidden ? null : note.textContent,
    detail: detail.hidden ? null : { height: detail.dataset.blockHeight ?? null,
      submissions: detail.dataset.submissions ?? null, text: detail.textContent },
    nodeName: id("node-name").textContent, conn: id("conn").dataset.state,
    pageErrors: id("errors").textContent,
    pwned: b.dataset.pwned ?? null, injected: id("injected") !== null,
    imgs: document.querySelectorAll("img").length, bolds: document.querySelectorAll("b").length,
    privacy: id("privacy-body").textContent,
    scripts: document.scripts.length, text: b.textContent, title: document.title,
  };
})()"##;

impl Page {
    async fn open(&mut self, url: &str) -> anyhow::Result<()> {
        let from = self.cdp.events.len();
        let nav = self.cdp.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = nav.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url}: {err}");
        }
        tokio::time::timeout(T, self.cdp.wait_event("Page.loadEventFired", from)).await.context("load event")??;
        Ok(())
    }

    /// The page's state once `condition` (JavaScript over the snapshot `s`) holds.
    async fn wait_until(&mut self, condition: &str) -> anyhow::Result<Value> {
        let expression = format!(
            "new Promise((resolve) => {{
               const check = () => {{
                 try {{ const s = {SNAPSHOT}; if ({condition}) {{ resolve(s); return true; }} }} catch (_) {{}}
                 return false;
               }};
               if (check()) return;
               const o = new MutationObserver(() => {{ if (check()) o.disconnect(); }});
               o.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
             }})"
        );
        match tokio::time::timeout(T, self.cdp.evaluate(&expression)).await {
            Ok(state) => state,
            Err(_) => {
                let mut now = self.snapshot().await.unwrap_or(Value::Null);
                if let Some(o) = now.as_object_mut() {
                    o.remove("text");
                }
                bail!("the page did not reach `{condition}` within {T:?}; it shows {now:#}; problems {:?}", self.problems())
            }
        }
    }


    async fn snapshot(&mut self) -> anyhow::Result<Value> {
        self.cdp.evaluate(SNAPSHOT).await
    }

    async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        self.cdp.evaluate(expression).await
    }

    /// Every error the page's console, its uncaught exceptions and the browser's log have
    /// reported so far.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.cdp.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(format!(
                    "uncaught: {}",
                    p["exceptionDetails"]["exception"]["description"].as_str().unwrap_or_else(|| p["exceptionDetails"]["text"].as_str().unwrap_or("?"))
                )),
                Some("Runtime.consoleAPICalled") if matches!(p["type"].as_str(), Some("error" | "assert" | "warning")) => {
                    out.push(format!("console.{}: {}", p["type"].as_str().unwrap_or("?"), p["args"]))
                }
                Some("Log.entryAdded") if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) => out.push(format!(
                    "log {} ({}): {} {}",
                    p["entry"]["level"].as_str().unwrap_or("?"),
                    p["entry"]["source"].as_str().unwrap_or("?"),
                    p["entry"]["text"].as_str().unwrap_or("?"),
                    p["entry"]["url"].as_str().unwrap_or("")
                )),
                _ => {}
            }
        }
        out
    }
}

/// A DevTools protocol connection: calls with ids, events kept in order.
struct Cdp {
    ws: Ws,
    next_id: u64,
    session: Option<String>,
    events: Vec<Value>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws.send(&message.to_string()).await?;
        loop {
            let reply = self.ws.recv().await?;
            if reply.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = reply.get("error") {
                    bail!("{method}: {err}");
                }
                return Ok(reply["result"].clone());
            }
            if reply.get("method").is_some() {
                self.events.push(reply);
            }
            // Anything else answers a call given up on (a timed-out evaluation).
        }
    }

    async fn wait_event(&mut self, method: &str, from: usize) -> anyhow::Result<Value> {
        loop {
            if let Some(e) = self.events[from.min(self.events.len())..].iter().find(|e| e["method"] == method) {
                return Ok(e.clone());
            }
            let message = self.ws.recv().await?;
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise) and returns its
    /// value as JSON.
    async fn evaluate(&mut self, expression: &str) -> anyhow::Result<Value> {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }))
            .await?;
        if let Some(details) = r.get("exceptionDetails") {
            bail!("evaluation threw: {details}");
        }
        Ok(r["result"]["value"].clone())
    }
}

/// The DevTools connection: JSON over [`WsClient`].
struct Ws(WsClient);

impl Ws {
    async fn connect(url: &str) -> anyhow::Result<Ws> {
        let rest = url.strip_prefix("ws://").with_context(|| format!("not a ws:// address: {url}"))?;
        let (host, path) = rest.split_once('/').context("no path")?;
        let addr: std::net::SocketAddr = host.parse().with_context(|| format!("not an IP:port: {host}"))?;
        Ok(Ws(WsClient::connect(addr, &format!("/{path}")).await?))
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        Ok(self.0.send_text(text).await?)
    }

    /// The next message, as JSON.
    async fn recv(&mut self) -> anyhow::Result<Value> {
        let text = self.0.recv_text().await?.context("the browser closed the DevTools connection")?;
        serde_json::from_str(&text).context("a DevTools message that is not JSON")
    }
}

/// The page and browser reported no error at all.
fn assert_clean(browser: &Browser, page: &Page) {
    let problems = page.problems();
    assert!(problems.is_empty(), "the browser reported problems: {problems:#?}");
    let console = browser.console_lines();
    assert!(console.is_empty(), "console lines on chromium's stderr: {console:#?}");
}

fn heights(state: &Value, key: &str) -> Vec<u64> {
    state[key].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// A real testnet

/// What the blocks table says of a block's aggregation, computed from `aggregate_report`.
fn outcome_summary(report: &Value) -> String {
    let subs = report["submissions"].as_array().cloned().unwrap_or_default();
    if subs.is_empty() {
        return "—".into();
    }
    let order = ["selected", "trimmed", "weighted", "rejected"];
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in &subs {
        let o = s["outcome"].as_str().unwrap_or("").to_owned();
        match counts.iter_mut().find(|(n, _)| *n == o) {
            Some((_, c)) => *c += 1,
            None => counts.push((o, 1)),
        }
    }
    counts.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(order.len()));
    counts.iter().map(|(n, c)| format!("{c} {n}")).collect::<Vec<_>>().join(" / ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_a_training_run_and_follows_it_live() -> anyhow::Result<()> {
    let Some(browser) = browser_or_skip("the_explorer_shows_a_training_run_and_follows_it_live")? else {
        return Ok(());
    };
    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    net.wait_height(OBSERVER, 3, T).await?;
    net.set_mining(false);
    net.wait_agree(&net.running(), T).await?;
    let rpc = net.node(OBSERVER)?.rpc_addr.context("the observer's RPC")?;
    let head = learnchain_rpc::client::call(rpc, "chain_head", Value::Null).await?;
    let h = head["height"].as_u64().context("height")?;

    let mut page = browser.page().await?;
    page.open(&format!("http://{rpc}/")).await?;
    let state = page
        .wait_until(&format!(
            "s.ready === '1' && s.live === '1' && s.headHeight === '{h}' && s.points.length === {}",
            h + 1
        ))
        .await?;
    assert_eq!(state["errors"], 0, "{}", state["pageErrors"]);
    assert_eq!(state["rpcErrors"], 0);
    assert_eq!(state["headHash"], head["hash"]);
    // One chart point per height: the model after genesis and after every block.
    assert_eq!(heights(&state, "points"), (0..=h).collect::<Vec<_>>());
    assert_eq!(state["svgPoints"], h + 1);
    assert_eq!(state["chartNote"], Value::Null);
    // The blocks table, newest first, with what chain_getBlock and aggregate_report say.
    let rows = state["rows"].as_array().context("rows")?;
    assert_eq!(rows.iter().map(|r| r["height"].as_u64().unwrap_or(u64::MAX)).collect::<Vec<_>>(), (0..=h).rev().collect::<Vec<_>>());
    for row in rows {
        let height = row["height"].as_u64().context("row height")?;
        let block = learnchain_rpc::client::call(rpc, "chain_getBlock", json!([height])).await?;
        let report = learnchain_rpc::client::call(rpc, "aggregate_report", json!([height])).await?;
        let cells = &row["cells"];
        assert_eq!(cells[4], block["submissions"].as_array().map_or(0, Vec::len).to_string(), "updates of {height}");
        assert_eq!(cells[5], block["registrations"].as_array().map_or(0, Vec::len).to_string());
        assert_eq!(cells[6], outcome_summary(&report), "aggregation of {height}");
        let metrics = learnchain_rpc::client::call(rpc, "model_metrics", json!([height])).await?;
        let shown = format!("{:.2}%", metrics["accuracy"].as_f64().context("accuracy")? * 100.0);
        assert_eq!(cells[7], shown.as_str(), "accuracy of {height}");
    }
    // Blocks past genesis carry updates, and the page says what the rule did with them.
    assert!(rows[0]["cells"][6].as_str().is_some_and(|s| s.contains("selected")), "{}", rows[0]);

    // A block's detail, as a click on its row would select it.
    let block1 = learnchain_rpc::client::call(rpc, "chain_getBlock", json!([1])).await?;
    let hash1 = block1["hash"].as_str().context("hash")?;
    page.eval(&format!("location.hash = '#block={hash1}'")).await?;
    let state = page.wait_until("s.detail !== null && s.detail.height === '1'").await?;
    let subs = block1["submissions"].as_array().context("submissions")?;
    assert_eq!(state["detail"]["submissions"], subs.len().to_string());
    let text = state["detail"]["text"].as_str().context("detail text")?;
    for needle in [block1["miner"].as_str(), block1["model_hash"].as_str(), block1["parent"].as_str()] {
        assert!(text.contains(needle.context("field")?), "the detail shows {needle:?}: {text}");
    }
    assert!(text.contains("selected"), "the detail shows each submission's outcome: {text}");

    // Live: one more block, which reaches the page only through its WebSocket subscription.
    let ws_heads = state["wsHeads"].as_u64().context("wsHeads")?;
    net.set_mining(true);
    net.wait_height(OBSERVER, h + 1, T).await?;
    net.set_mining(false);
    net.wait_agree(&net.running(), T).await?;
    let head2 = learnchain_rpc::client::call(rpc, "chain_head", Value::Null).await?;
    let h2 = head2["height"].as_u64().context("height")?;
    let state = page
        .wait_until(&format!("s.headHeight === '{h2}' && s.points.length === {} && s.rows[0]?.height === {h2}", h2 + 1))
        .await?;
    assert!(state["wsHeads"].as_u64().context("wsHeads")? > ws_heads, "the new head came over the WebSocket");
    assert_eq!(heights(&state, "points"), (0..=h2).collect::<Vec<_>>());
    assert_eq!(state["headHash"], head2["hash"]);
    assert_eq!((state["errors"].as_u64(), state["rpcErrors"].as_u64()), (Some(0), Some(0)));

    // A data source's page: its privacy spend, and a note instead of the chart (it holds
    // no evaluation data).
    let source = net.node(1)?.rpc_addr.context("the data source's RPC")?;
    let privacy = learnchain_rpc::client::call(source, "privacy_status", Value::Null).await?;
    page.open(&format!("http://{source}/")).await?;
    let state = page.wait_until(&format!("s.ready === '1' && s.live === '1' && s.headHeight === '{h2}'")).await?;
    let note = state["chartNote"].as_str().context("a note instead of the chart")?;
    assert!(note.contains("does not evaluate"), "{note}");
    assert_eq!(state["points"].as_array().map(Vec::len), Some(0));
    let shown = state["privacy"].as_str().context("privacy")?;
    let accountant = privacy["accountant"].as_str().context("accountant")?;
    for needle in ["ε", "rounds contributed", "DP-SGD", accountant] {
        assert!(shown.contains(needle), "the privacy panel shows {needle:?}: {shown}");
    }
    assert_eq!((state["errors"].as_u64(), state["rpcErrors"].as_u64()), (Some(0), Some(0)));
    assert_clean(&browser, &page);
    drop(page);
    drop(browser);
    net.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A hostile fake node

const IMG: &str = r#"<img src=x onerror="document.body.dataset.pwned=1">"#;
const SCRIPT: &str = "</script><b id=injected>";

fn hex(tag: u64) -> String {
    format!("{tag:064x}")
}

/// A node whose every string is markup, whose model metrics are unavailable with markup
/// in the message, and whose head moves by one each time a subscriber appears.
struct Hostile {
    height: AtomicU64,
    heads: broadcast::Sender<HeadView>,
    subscribed: AtomicBool,
}

impl Hostile {
    fn block(&self, h: u64) -> BlockView {
        BlockView {
            hash: hex(0xb000 + h),
            height: h,
            parent: if h == 0 { hex(0) } else { hex(0xb000 + h - 1) },
            timestamp_ms: 1_700_000_000_000 + h * 1000,
            target: "00ff".repeat(16),
            miner: format!("{IMG}{SCRIPT}"),
            body_root: hex(0xc000 + h),
            model_hash: hex(0xd000 + h),
            state_root: hex(0xe000 + h),
            nonce: h,
            registrations: if h == 0 {
                vec![]
            } else {
                vec![RegistrationView { id: hex(0xf000 + h), member: SCRIPT.into(), action: IMG.into(), authorisation: SCRIPT.into() }]
            },
            submissions: if h == 0 {
                vec![]
            } else {
                (0..2)
                    .map(|i| SubmissionView {
                        id: hex(0x5000 + 10 * h + i),
                        round: h,
                        round_tag: hex(0x7000 + 10 * h + i),
                        base: hex(0xb000 + h - 1),
                        num_examples: 100,
                        update_l2: 0.5,
                        dp_sample_rate: 0.1,
                        dp_noise_multiplier: 1.1,
                        dp_clip: 1.0,
                        dp_steps: 5,
                    })
                    .collect()
            },
        }
    }

    fn head(&self) -> HeadView {
        let b = self.block(self.height.load(Ordering::SeqCst));
        HeadView {
            chain_id: hex(0xc4a1),
            height: b.height,
            hash: b.hash,
            parent: b.parent,
            model_hash: b.model_hash,
            state_root: b.state_root,
            timestamp_ms: b.timestamp_ms,
            total_work: format!("{:x}", 1000 * (b.height + 1)),
            submissions: b.submissions.len(),
            registrations: b.registrations.len(),
        }
    }

    fn at(&self, at: BlockRef) -> Result<BlockView, ApiError> {
        let head = self.height.load(Ordering::SeqCst);
        let h = match at {
            BlockRef::Height(h) => h,
            BlockRef::Hash(hash) => (0..=head).find(|&h| hex(0xb000 + h) == hash).ok_or_else(|| ApiError::NotFound(format!("{IMG} {hash}")))?,
        };
        if h > head {
            return Err(ApiError::NotFound(format!("no block at {h} {SCRIPT}")));
        }
        Ok(self.block(h))
    }
}

impl NodeApi for Hostile {
    fn chain_head(&self) -> Result<HeadView, ApiError> {
        Ok(self.head())
    }
    fn block(&self, at: BlockRef) -> Result<BlockView, ApiError> {
        self.at(at)
    }
    fn model(&self, _: Option<u64>) -> Result<ModelView, ApiError> {
        Err(ApiError::Unavailable(IMG.into()))
    }
    fn model_file(&self, _: Option<u64>) -> Result<Vec<u8>, ApiError> {
        Err(ApiError::Unavailable(IMG.into()))
    }
    fn model_metrics(&self, _: Option<u64>) -> Result<MetricsView, ApiError> {
        Err(ApiError::Unavailable(format!("no evaluation data {IMG}{SCRIPT}")))
    }
    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        Ok(vec![PeerView {
            peer_id: SCRIPT.into(),
            addresses: vec![IMG.into()],
            listen_addrs: vec![SCRIPT.into()],
            agent: Some(format!("agent {IMG}")),
            direction: SCRIPT.into(),
            score: -1.0,
            gossip_score: 0.0,
            offences: 1,
            last_offence: Some(IMG.into()),
        }])
    }
    fn bans(&self) -> Result<Vec<BanView>, ApiError> {
        Ok(vec![BanView { peer_id: IMG.into(), remaining_s: 5, reason: SCRIPT.into(), score: -50.0, offences: 3 }])
    }
    fn node_info(&self) -> Result<NodeInfoView, ApiError> {
        Ok(NodeInfoView {
            name: format!("node {IMG}{SCRIPT}"),
            version: IMG.into(),
            chain_id: hex(0xc4a1),
            genesis_name: SCRIPT.into(),
            peer_id: IMG.into(),
            roles: vec![IMG.into(), SCRIPT.into()],
            listen_addrs: vec![SCRIPT.into()],
            rpc_addr: IMG.into(),
            data_dir: SCRIPT.into(),
            height: self.height.load(Ordering::SeqCst),
            mempool: 0,
            syncing: false,
            aggregation: IMG.into(),
            adversary: Some(SCRIPT.into()),
        })
    }
    fn mempool(&self) -> Result<MempoolView, ApiError> {
        Err(ApiError::Unavailable(IMG.into()))
    }
    fn privacy_status(&self) -> Result<PrivacyStatusView, ApiError> {
        Err(ApiError::Internal(format!("ledger {SCRIPT}{IMG}")))
    }
    fn aggregate_report(&self, at: BlockRef) -> Result<AggregateReportView, ApiError> {
        let b = self.at(at)?;
        Ok(AggregateReportView {
            height: b.height,
            hash: b.hash,
            rule: format!("rule {SCRIPT}"),
            submissions: b
                .submissions
                .iter()
                .enumerate()
                .map(|(i, s)| SubmissionAggregationView {
                    id: s.id.clone(),
                    round_tag: s.round_tag.clone(),
                    outcome: if i == 0 { "selected".into() } else { IMG.into() },
                    kept_coordinates: None,
                    coordinates: None,
                    weight_ppm: None,
                    score: Some(SCRIPT.into()),
                })
                .collect(),
        })
    }
    fn members(&self) -> Result<MembersView, ApiError> {
        Ok(MembersView {
            height: self.height.load(Ordering::SeqCst),
            ring_size: 4,
            groups: 1,
            active: 2,
            enrolment_authority: Some(SCRIPT.into()),
            open_stamp_bits: 0,
            members: [IMG, SCRIPT, "ab"]
                .iter()
                .map(|k| MemberView { key: (*k).into(), registered_at: 0, revoked_at: None, active: true })
                .collect(),
        })
    }
    fn submit_registration(&self, _: Vec<u8>) -> Result<String, ApiError> {
        Err(ApiError::InvalidParams(IMG.into()))
    }
    /// Each new subscriber sees the head move by one: the new head is in its receiver
    /// before the server accepts the subscription, so it is the subscriber's first
    /// notification.
    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        let rx = self.heads.subscribe();
        self.subscribed.store(true, Ordering::SeqCst);
        self.height.fetch_add(1, Ordering::SeqCst);
        let _ = self.heads.send(self.head());
        rx
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_text_is_shown_as_text_and_the_socket_reconnects() -> anyhow::Result<()> {
    let Some(browser) = browser_or_skip("chain_text_is_shown_as_text_and_the_socket_reconnects")? else {
        return Ok(());
    };
    let node = Arc::new(Hostile { height: AtomicU64::new(3), heads: broadcast::channel(16).0, subscribed: AtomicBool::new(false) });
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let server = learnchain_rpc::start(any, node.clone()).await?;
    let addr = server.local_addr();

    let mut page = browser.page().await?;
    page.open(&format!("http://{addr}/")).await?;
    // The first subscription moved the head from 3 to 4, over the WebSocket.
    let state = page.wait_until("s.ready === '1' && s.live === '1' && s.headHeight === '4' && s.rows.length === 5").await?;
    assert!(node.subscribed.load(Ordering::SeqCst));
    assert!(state["wsHeads"].as_u64() >= Some(1), "{}", state["wsHeads"]);
    // Nothing from the chain became markup or ran.
    assert_eq!(state["pwned"], Value::Null, "an onerror handler ran");
    assert_eq!(state["injected"], false, "an element from chain text exists");
    assert_eq!((state["imgs"].as_u64(), state["bolds"].as_u64(), state["scripts"].as_u64()), (Some(0), Some(0), Some(1)));
    // It is all there as text.
    let text = state["text"].as_str().context("text")?;
    assert!(text.contains(IMG) && text.contains(SCRIPT), "the page shows the markup as text: {text}");
    assert_eq!(state["nodeName"], format!("node {IMG}{SCRIPT}"));
    let title = state["title"].as_str().context("title")?;
    assert!(title.starts_with(&format!("node {IMG}")), "{title}");
    for row in state["rows"].as_array().context("rows")? {
        assert_eq!(row["cells"][3], format!("{IMG}{SCRIPT}"), "the miner, as text");
    }
    assert_eq!(state["rows"][0]["cells"][6], format!("1 selected / 1 {IMG}"));
    // No evaluation data: a note with the node's message instead of a chart.
    let note = state["chartNote"].as_str().context("a note instead of the chart")?;
    assert!(note.contains(&format!("no evaluation data {IMG}{SCRIPT}")), "{note}");
    assert_eq!((state["points"].as_array().map(Vec::len), &state["svgPoints"]), (Some(0), &Value::Null));
    // privacy_status failed (its error is shown, as text); nothing else did.
    assert!(text.contains(&format!("privacy_status: internal error: ledger {SCRIPT}{IMG}")), "{text}");
    assert_eq!(state["errors"], 0, "{}", state["pageErrors"]);

    // A block's detail: submissions with their outcomes and the registration, as text.
    page.eval(&format!("location.hash = '#block={}'", hex(0xb000 + 2))).await?;
    let state = page.wait_until("s.detail !== null && s.detail.height === '2'").await?;
    assert_eq!(state["detail"]["submissions"], "2");
    let detail = state["detail"]["text"].as_str().context("detail")?;
    for needle in [format!("rule {SCRIPT}: 1 selected / 1 {IMG}"), format!("score {SCRIPT}"), format!("{SCRIPT}{IMG}{SCRIPT}")] {
        assert!(detail.contains(&needle), "the detail shows {needle:?}: {detail}");
    }
    assert_eq!((state["pwned"].clone(), state["injected"].clone()), (Value::Null, json!(false)));
    assert_clean(&browser, &page);

    // The server goes away and comes back on the same port: the page reconnects (after
    // its first backoff, 1 s), subscribes again, and the head moves to 5.
    server.stop().await;
    let server = learnchain_rpc::start(addr, node.clone()).await?;
    let state = page.wait_until("s.live === '1' && s.headHeight === '5' && s.rows[0]?.height === 5").await?;
    assert!(state["wsHeads"].as_u64() >= Some(2), "{}", state["wsHeads"]);
    assert_eq!((state["errors"].as_u64(), state["pwned"].clone()), (Some(0), Value::Null));
    // If the browser tried while the port was closed, it said so; nothing else.
    let others: Vec<String> = page
        .problems()
        .into_iter()
        .filter(|p| !p.contains("WebSocket connection to") && !p.contains("ERR_CONNECTION_REFUSED"))
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    drop(page);
    drop(browser);
    server.stop().await;
    Ok(())
}
