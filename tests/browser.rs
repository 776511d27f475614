//! The web app in real headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`): the first account made with the admin token, a project, a webhook
//! made through Integrations with its key read off the page, the spec's curl body posted
//! with it, "Daily Signups" and 42 on the metric page, later values appearing without a
//! reload (with the delay from each 200 to the value on screen), no console errors, and a
//! screenshot of every page under `target/browser/`. Without the two packages the test
//! says loudly that it was skipped, unless `STATHOOK_REQUIRE_BROWSER` is set (CI), where a
//! missing browser fails.

use crate::support::*;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub(crate) struct Driver {
    process: std::process::Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// chromedriver on a free loopback port, once it answers.
pub(crate) async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    }
}

pub(crate) async fn open_browser(driver: &Driver) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic",
                     "--window-size=1280,900",
                     format!("--user-data-dir={}", driver._profile.path().display())],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("open a Chromium session")
}

/// The browser console's errors since the last call (chromedriver's log endpoint).
pub(crate) async fn console_errors(driver: &Driver, b: &Browser) -> Vec<String> {
    let id = b.session_id().await.unwrap().unwrap();
    let bytes = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url))
        .header("Content-Type", "application/json")
        .body(json!({"type": "browser"}).to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let r: Value = serde_json::from_slice(&bytes).unwrap();
    r["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

pub(crate) async fn wait_text(b: &Browser, css: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            if e.text().await.map(|t| t.trim() == want).unwrap_or(false) {
                return start.elapsed();
            }
        }
        if start.elapsed() > within {
            let now = match b.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => "(absent)".into(),
            };
            panic!("{css} did not show {want:?} within {within:?}; it shows {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The element `css` once it exists (within 10 s).
pub(crate) async fn wait_for(b: &Browser, css: &str) -> fantoccini::elements::Element {
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// The value of the JavaScript expression `expr` on the page.
pub(crate) async fn eval(b: &Browser, expr: &str) -> Value {
    b.execute(&format!("return {expr};"), vec![]).await.unwrap()
}

/// The sign-in page with the first account's form filled in (ann, with the admin token),
/// not yet submitted.
pub(crate) async fn first_account(b: &Browser, s: &Server) {
    b.goto(&s.url).await.unwrap();
    fill(b, "#admin-token", &s.admin_token).await;
    fill(b, "#username", "ann").await;
    fill(b, "#password", "pass word 1").await;
}

pub(crate) async fn fill(b: &Browser, css: &str, text: &str) {
    wait_for(b, css).await.send_keys(text).await.unwrap();
}

pub(crate) async fn click(b: &Browser, css: &str) {
    wait_for(b, css).await.click().await.unwrap();
}

/// Saves a screenshot as target/browser/NAME.png and checks the console is clean and the
/// page fits the window's width (no horizontal scrollbar at 1280 px).
async fn page_done(driver: &Driver, b: &Browser, shots: &Path, name: &str) {
    let png = b.screenshot().await.unwrap();
    std::fs::write(shots.join(format!("{name}.png")), png).unwrap();
    let errors = console_errors(driver, b).await;
    assert!(errors.is_empty(), "console errors on {name}: {errors:#?}");
    let widths: Value = b
        .execute(
            "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_f64() <= widths[1].as_f64(),
        "{name} is wider than the window (scrollWidth, clientWidth) = {widths}"
    );
}

/// Drags `handle` by (dx, dy) pixels with the mouse, starting `from_left` px inside its
/// left edge (a title bar's tools sit at its right end).
async fn drag(
    b: &Browser,
    handle: fantoccini::elements::Element,
    from_left: Option<f64>,
    dx: f64,
    dy: f64,
) {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
    let (_, _, width, _) = handle.rectangle().await.unwrap();
    let x = from_left.map_or(0.0, |l| l - width / 2.0);
    let step = Some(Duration::from_millis(50));
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: handle,
            duration: None,
            x,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: step,
            x: dx / 2.0,
            y: dy / 2.0,
        })
        .then(PointerAction::MoveBy {
            duration: step,
            x: dx / 2.0,
            y: dy / 2.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    b.perform_actions(mouse).await.unwrap();
}

/// The stored dashboard `id` of project `demo`, once `ready` says it is as expected.
async fn stored_dashboard(c: &Client, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let d = c
            .get(&format!("/api/v1/projects/demo/dashboards/{id}"))
            .await
            .body;
        if ready(&d) || start.elapsed() > Duration::from_secs(10) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn browser_missing() -> bool {
    let missing = !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists();
    if missing {
        assert!(
            std::env::var_os("STATHOOK_REQUIRE_BROWSER").is_none(),
            "STATHOOK_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!("\n*** BROWSER TESTS SKIPPED: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver) to run them ***\n");
    }
    missing
}

#[tokio::test]
async fn the_web_app_in_chromium() {
    if browser_missing() {
        return;
    }
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let driver = start_driver().await;
    let b = open_browser(&driver).await;

    // The first account, made on the sign-in page with the admin token.
    first_account(&b, &s).await;
    page_done(&driver, &b, &shots, "01-first-account").await;
    click(&b, "#sign-in button[type=submit]").await;

    // A project from the projects page; its creation leads to Integrations.
    fill(&b, "#project-name", "Demo").await;
    fill(&b, "#project-id", "demo").await;
    page_done(&driver, &b, &shots, "02-projects").await;
    click(&b, "#create-project button[type=submit]").await;
    click(&b, "#connect").await;
    fill(&b, "#webhook-name", "Cron Job Metrics").await;
    click(&b, "#create").await;
    let key_el = wait_for(&b, "#api-key").await;
    let key = key_el.text().await.unwrap();
    assert!(key.starts_with("shk_"), "{key}");
    let project = b
        .find(Locator::Css("#project-id-value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(project, "demo");
    let url = b
        .find(Locator::Css("#webhook-url"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(url, format!("{}/api/webhooks/custom", s.url));
    let curl = b
        .find(Locator::Css("#snippet-curl"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        curl.contains(&key) && curl.contains("daily_signups"),
        "{curl}"
    );
    wait_for(&b, "#connections [data-webhook]").await;
    page_done(&driver, &b, &shots, "03-integrations").await;

    // The spec's curl body, with the key read off the page.
    let c = s.client();
    let body = json!({"projectId": project, "metrics": [{"metricId": "daily_signups",
        "metricName": "Daily Signups", "value": 42, "unit": "count", "timestamp": now_ms()}]});
    let r = c.post(&key, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    b.goto(&format!("{}/projects/demo/metrics", s.url))
        .await
        .unwrap();
    wait_text(&b, "#catalog td.last-value", "42", Duration::from_secs(10)).await;
    page_done(&driver, &b, &shots, "04-metrics").await;
    click(&b, "#catalog a[data-nav]").await;
    wait_text(&b, "h1", "Daily Signups", Duration::from_secs(10)).await;
    wait_text(&b, "#last-value", "42", Duration::from_secs(10)).await;
    let text: Value = eval(&b, "document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(
        !text.contains("null") && !text.contains("undefined"),
        "{text}"
    );
    let drawn: Value = eval(&b, "document.querySelector('#metric-chart').dataset.points").await;
    assert_eq!(drawn, json!("1"), "one bucket drawn");
    assert!(b.find(Locator::Css("#metric-chart canvas")).await.is_ok());
    page_done(&driver, &b, &shots, "05-metric").await;

    // Later values appear without a reload; the delay from each 200 to the value drawn.
    let marker: Value = b
        .execute("window.__stayed = 1; return 1;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(1));
    let mut delays = Vec::new();
    for i in 0..10 {
        let v = 100 + i;
        let body = json!({"projectId": "demo", "metrics": [{"metricId": "daily_signups",
            "metricName": "Daily Signups", "value": v, "unit": "count", "timestamp": now_ms()}]});
        let r = c.post(&key, &body).await;
        assert_eq!(r.status, 200);
        delays.push(wait_text(&b, "#last-value", &v.to_string(), Duration::from_secs(10)).await);
    }
    let stayed: Value = eval(&b, "window.__stayed || 0").await;
    assert_eq!(stayed, json!(1), "the page was not reloaded");
    delays.sort();
    eprintln!(
        "webhook 200 → value on screen over {} posts: median {:?}, max {:?}",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    page_done(&driver, &b, &shots, "06-metric-live").await;

    // A dashboard with three widget types, which a reload finds intact.
    b.goto(&format!("{}/projects/demo/dashboards", s.url))
        .await
        .unwrap();
    fill(&b, "#dashboard-name", "Ops").await;
    click(&b, "#create-dashboard button[type=submit]").await;
    for (kind, agg, interval) in [
        ("line", "avg", ""),
        ("stat", "last", ""),
        ("heartbeat", "count", "60"),
    ] {
        click(&b, "#add-widget").await;
        wait_for(&b, "#widget-editor").await;
        let script = format!(
            "document.querySelector('#widget-type').value = '{kind}';
             document.querySelector('#widget-agg').value = '{agg}';
             document.querySelector('#widget-metrics option').selected = true;
             document.querySelector('#widget-interval').value = '{interval}';
             return 1;"
        );
        b.execute(&script, vec![]).await.unwrap();
        click(&b, "#widget-save").await;
        wait_for(&b, &format!("[data-type={kind}]")).await;
    }
    b.refresh().await.unwrap();
    let started: Value = eval(&b, "performance.now()").await;
    wait_for(&b, "#grid[data-drawn]").await;
    let widgets = b
        .find_all(Locator::Css("#grid [data-widget]"))
        .await
        .unwrap();
    assert_eq!(widgets.len(), 3, "three widgets after a reload");
    wait_text(
        &b,
        "[data-type=stat] .stat-value",
        "109",
        Duration::from_secs(10),
    )
    .await;
    assert!(b
        .find(Locator::Css("[data-type=line] canvas"))
        .await
        .is_ok());
    let beats = b
        .find_all(Locator::Css("[data-type=heartbeat] .strip .beat"))
        .await
        .unwrap();
    assert!(
        !beats.is_empty(),
        "the heartbeat strip shows the minute that had points"
    );
    let drawn: Value = eval(&b, "Number(document.querySelector('#grid').dataset.drawn)").await;
    eprintln!(
        "dashboard of 3 widgets drawn {:.0} ms after navigation start (script reached at {:.0} ms)",
        drawn.as_f64().unwrap(),
        started.as_f64().unwrap()
    );
    // A custom range, kept in the URL, survives a reload.
    b.execute(
        "const s = document.querySelector('#dashboard-range'); s.value = 'custom';
         s.dispatchEvent(new Event('change')); return 1;",
        vec![],
    )
    .await
    .unwrap();
    let url = b.current_url().await.unwrap();
    assert!(url.query().unwrap_or("").contains("range=custom"), "{url}");
    b.refresh().await.unwrap();
    wait_for(&b, "#grid[data-drawn]").await;
    let shown: Value = eval(&b, "document.querySelector('#dashboard-range').value").await;
    assert_eq!(shown, json!("custom"));
    wait_text(
        &b,
        "[data-type=stat] .stat-value",
        "109",
        Duration::from_secs(10),
    )
    .await;
    page_done(&driver, &b, &shots, "07-dashboard").await;

    // Widgets move by dragging the title bar and resize by dragging the corner; saved.
    let url = b.current_url().await.unwrap();
    let dash_id = url.path().rsplit('/').next().unwrap().to_owned();
    let pitch: Value = b
        .execute(
            "const g = document.querySelector('#grid'); return (g.clientWidth - 11 * 12) / 12 + 12;",
            vec![],
        )
        .await
        .unwrap();
    let pitch = pitch.as_f64().unwrap();
    let title = wait_for(&b, "[data-type=line] header h3").await;
    drag(&b, title, Some(15.0), 3.0 * pitch, 0.0).await;
    let moved = stored_dashboard(&c, &dash_id, |d| d["widgets"][0]["x"] == 3).await;
    assert_eq!(
        moved["widgets"][0]["x"], 3,
        "dragged 3 columns right: {moved}"
    );
    wait_for(&b, "#grid[data-drawn]").await;
    let corner = wait_for(&b, "[data-type=stat] .resize-handle").await;
    drag(&b, corner, None, 2.0 * pitch, 52.0).await;
    let resized = stored_dashboard(&c, &dash_id, |d| d["widgets"][1]["w"] == 8).await;
    assert_eq!(
        (
            resized["widgets"][1]["w"].clone(),
            resized["widgets"][1]["h"].clone()
        ),
        (json!(8), json!(5)),
        "resized 2 columns wider and a row higher: {resized}"
    );
    wait_for(&b, "#grid[data-drawn]").await;

    // A share link, made on the dashboard, opens it signed out, live, and in an iframe form.
    click(&b, "#share summary").await;
    click(&b, "#create-share").await;
    let share_url = wait_for(&b, "#share-url").await.text().await.unwrap();
    assert!(
        share_url.starts_with(&format!("{}/share/shl_", s.url)),
        "{share_url}"
    );
    wait_for(&b, "#share-links tbody tr").await;
    page_done(&driver, &b, &shots, "08-dashboard-share").await;
    click(&b, "#sign-out").await;
    wait_for(&b, "#sign-in").await;
    b.goto(&share_url).await.unwrap();
    wait_for(&b, "#grid[data-drawn]").await;
    let widgets = b
        .find_all(Locator::Css("#grid [data-widget]"))
        .await
        .unwrap();
    assert_eq!(widgets.len(), 3, "the shared dashboard's three widgets");
    wait_text(
        &b,
        "[data-type=stat] .stat-value",
        "109",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        b.find(Locator::Css("#sign-in")).await.is_err(),
        "no sign-in on a share link"
    );
    let body = json!({"projectId": "demo", "metrics": [{"metricId": "daily_signups",
        "metricName": "Daily Signups", "value": 150, "unit": "count", "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    wait_text(
        &b,
        "[data-type=stat] .stat-value",
        "150",
        Duration::from_secs(10),
    )
    .await;
    page_done(&driver, &b, &shots, "09-shared").await;
    b.goto(&format!("{share_url}/embed")).await.unwrap();
    wait_for(&b, "#grid[data-drawn]").await;
    assert!(b.find(Locator::Css("main.embed")).await.is_ok());
    assert!(
        b.find(Locator::Css("header.top")).await.is_err(),
        "an embed has no app header"
    );
    page_done(&driver, &b, &shots, "10-embed").await;

    // Signed out: the app's pages ask to sign in again.
    b.goto(&s.url).await.unwrap();
    wait_for(&b, "#sign-in").await;
    page_done(&driver, &b, &shots, "11-signed-out").await;

    // Dark mode, as a system set to dark shows it (Chromium's media emulation).
    let id = b.session_id().await.unwrap().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/session/{id}/goog/cdp/execute", driver.url))
        .header("Content-Type", "application/json")
        .body(
            json!({"cmd": "Emulation.setEmulatedMedia",
            "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    fill(&b, "#username", "ann").await;
    fill(&b, "#password", "pass word 1").await;
    click(&b, "#sign-in button[type=submit]").await;
    wait_for(&b, "#sign-out").await;
    b.goto(&format!("{}/projects/demo/metrics/daily_signups", s.url))
        .await
        .unwrap();
    wait_text(&b, "#last-value", "150", Duration::from_secs(10)).await;
    let bg: Value = eval(&b, "getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(bg, json!("rgb(17, 20, 25)"), "the dark theme's background");
    page_done(&driver, &b, &shots, "12-metric-dark").await;
    b.close().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn alerts_in_chromium() {
    use crate::alerts::{Receiver, ALLOWED};
    if browser_missing() {
        return;
    }
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.alert_interval = Duration::from_secs(1);
        c.alert_allow_hosts = vec![ALLOWED.into()];
    })
    .await;
    let c = s.client();
    let key = c.setup("ops").await;
    let rx = Receiver::start(ALLOWED).await;
    let body = |v: f64| {
        json!({"projectId": "ops", "metrics": [{"metricId": "api_ms",
        "metricName": "API latency", "unit": "ms", "value": v, "timestamp": now_ms()}]})
    };
    assert_eq!(c.post(&key, &body(42.0)).await.status, 200);
    let driver = start_driver().await;
    let b = open_browser(&driver).await;
    first_account(&b, &s).await;
    click(&b, "#sign-in button[type=submit]").await;
    wait_for(&b, "#create-project").await;
    b.goto(&format!("{}/projects/ops/alerts", s.url))
        .await
        .unwrap();
    wait_text(&b, "#rules .empty", "No rule yet. A rule watches one metric: a threshold (latency above a line), an absence (a cron job that stopped reporting) or a change (signups down on last week).", Duration::from_secs(10)).await;

    // A signed webhook channel: its secret shown once, then a test delivered.
    fill(&b, "#channel-name", "Ops receiver").await;
    b.execute(
        "document.querySelector('#channel-type').value = 'webhook'; return 1;",
        vec![],
    )
    .await
    .unwrap();
    fill(&b, "#channel-url", &rx.url).await;
    click(&b, "#channel-save").await;
    let secret = wait_for(&b, "#channel-secret-value")
        .await
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    click(&b, "#channel-list .send-test").await;
    wait_for(&b, "#channel-list .test-result").await;
    let start = Instant::now();
    while !eval(
        &b,
        "document.querySelector('#channel-list .test-result').textContent",
    )
    .await
    .as_str()
    .unwrap_or("")
    .starts_with("delivered")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the test was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.received().len(), 1);

    // An email channel: its own fields once the type is email.
    fill(&b, "#channel-name", "Ops mail").await;
    b.execute(
        "const t = document.querySelector('#channel-type'); t.value = 'email';
         t.dispatchEvent(new Event('change')); return 1;",
        vec![],
    )
    .await
    .unwrap();
    fill(&b, "#email-to", "ops@example.test, oncall@example.test").await;
    fill(&b, "#email-from", "alerts@example.test").await;
    fill(&b, "#smtp-host", "smtp.example.test").await;
    click(&b, "#channel-save").await;
    wait_for(&b, "#channel-list tr:nth-child(2)").await;
    let listed = eval(&b, "document.querySelector('#channel-list').innerText").await;
    assert!(
        listed
            .as_str()
            .unwrap()
            .contains("smtp://smtp.example.test:587"),
        "{listed}"
    );

    // A threshold rule from the form, on that channel; a value over the line fires it.
    fill(&b, "#rule-name", "API slow").await;
    fill(&b, "#rule-metric", "api_ms").await;
    b.execute("document.querySelector('#rule-agg').value = 'last'; document.querySelector('#rule-value').value = '100'; return 1;", vec![]).await.unwrap();
    let channels = c.get("/api/v1/projects/ops/channels").await.body;
    let receiver = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["name"] == "Ops receiver")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    click(&b, &format!("#rule-channels input[value='{receiver}']")).await;
    page_done(&driver, &b, &shots, "13-alerts-form").await;
    click(&b, "#rule-save").await;
    wait_for(&b, "#rule-list tr[data-rule]").await;
    assert_eq!(c.post(&key, &body(150.5)).await.status, 200);
    wait_for(&b, "#rule-list tr[data-state=firing]").await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].body["type"], "alert.firing");
    assert_eq!(got[1].body["data"]["value"], 150.5);
    let row = eval(
        &b,
        "document.querySelector('#rule-list tr[data-rule]').innerText",
    )
    .await;
    assert!(
        row.as_str().unwrap().contains("last over 5m > 100"),
        "{row}"
    );
    click(&b, "#rule-list details.history summary").await;
    let change = wait_for(&b, "#rule-list ul.changes li")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        change.contains("→ firing (150.5)"),
        "newest change first: {change}"
    );
    page_done(&driver, &b, &shots, "14-alerts-firing").await;
    // The metric's chart shades the firing time and names the rule.
    b.goto(&format!("{}/projects/ops/metrics/api_ms?range=1h", s.url))
        .await
        .unwrap();
    wait_for(&b, "#metric-chart[data-bands='1'] canvas").await;
    wait_text(
        &b,
        "#metric-rules",
        "Alert rules on this metric (firing times shaded): API slow (firing)",
        Duration::from_secs(10),
    )
    .await;
    page_done(&driver, &b, &shots, "15-metric-with-alert").await;
    b.close().await.unwrap();
    s.stop().await;
}
