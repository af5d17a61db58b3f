//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver
//! (`chromedriver`) by fantoccini. It signs in by typing into the form, switches a
//! bucket off and on, checks labels, focus and contrast in the rendered pages, follows a
//! delivery made by another process on the overview without reloading it, and saves
//! screenshots at 1280×800 and 390×844 (into `docs/screenshots/` with `TGPLOY_BLESS=1`,
//! else under the target directory).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::dashboard_client::{Dash, PASSWORD};
use crate::harness::{PART_SIZE, World, data};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    // Killed and waited for on drop, whatever happens next.
    let driver = Driver {
        child: Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}")),
        url,
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok_and(|r| r.status().is_success()) {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{CHROMEDRIVER} did not answer on {}", driver.url);
}

/// A headless Chromium with a fresh profile and none of its background connections
/// (this machine's network refuses them).
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(caps) = caps else { unreachable!() };
    // chromedriver is on loopback: plain HTTP, no TLS stack.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a WebDriver session")
}

/// Makes the viewport (not the window) `width`×`height`: the window is resized by what
/// its frame takes, until the page reports the size asked for (a busy machine applies a
/// resize late).
async fn viewport(c: &Client, width: u32, height: u32) {
    let mut window = (width, height);
    for _ in 0..100 {
        c.set_window_size(window.0, window.1).await.unwrap();
        let inner = c.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.unwrap();
        let (w, h) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
        if (w, h) == (width, height) {
            return;
        }
        // The frame is what the window has beyond the page, once the page has the size
        // of the window asked for last.
        window = ((window.0 + width).saturating_sub(w).max(width), (window.1 + height).saturating_sub(h).max(height));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the viewport never became {width}x{height}");
}

fn screenshot_dir() -> PathBuf {
    if std::env::var_os("TGPLOY_BLESS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    }
}

/// Saves the viewport as `NAME-WIDTH.png`, checking its size.
async fn shoot(c: &Client, name: &str, width: u32, height: u32) {
    shoot_from(c, name, width, height, None).await;
}

/// Saves the viewport as `NAME-WIDTH.png`, scrolled to the top of the page or to the
/// element `from` (a CSS selector).
async fn shoot_from(c: &Client, name: &str, width: u32, height: u32, from: Option<&str>) {
    viewport(c, width, height).await;
    // The audit's focus() may have scrolled a table sideways.
    let reset = "window.scrollTo(0, 0); document.querySelectorAll('.table-wrap').forEach(e => e.scrollLeft = 0); \
                 if (arguments[0]) document.querySelector(arguments[0]).scrollIntoView({ block: 'start' })";
    c.execute(reset, vec![json!(from)]).await.unwrap();
    let png = c.screenshot().await.unwrap();
    let size =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!(size, (width, height), "screenshot {name}");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
}

/// What the rendered page breaks of the look's rules: text under 4.5:1 against what it
/// sits on, inputs without a label, no visible focus, sideways scrolling.
const AUDIT: &str = r#"
const lum = (rgb) => { const c = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
const parse = (s) => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number);
  return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 }; };
const background = (el) => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
  if (c && c.a > 0) return c.rgb; } return [255, 255, 255]; };
const problems = [];
for (const el of document.querySelectorAll('body *')) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  const style = getComputedStyle(el);
  if (!own || style.visibility === 'hidden' || el.offsetParent === null && style.position !== 'fixed') continue;
  if (el.closest('.visually-hidden, .skip')) continue;
  const fg = parse(style.color).rgb, bg = background(el);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} for "${el.textContent.trim().slice(0, 30)}"`);
}
for (const input of document.querySelectorAll('input:not([type=hidden]), select')) {
  if (!input.labels || input.labels.length === 0) problems.push(`no label for ${input.name}`);
  input.focus();
  const s = getComputedStyle(input);
  if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2) problems.push(`no visible focus on ${input.name}`);
  input.blur();
}
if (document.documentElement.scrollWidth > window.innerWidth) problems.push(`scrolls sideways: ${document.documentElement.scrollWidth}px`);
if (window.innerWidth >= 1280) for (const wrap of document.querySelectorAll('.table-wrap'))
  if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(`a table is wider than the page: ${wrap.getAttribute('aria-label')}`);
if (document.styleSheets.length !== 1 || document.styleSheets[0].cssRules.length < 50) problems.push('the stylesheet did not load');
return problems;
"#;

async fn audit(c: &Client, page: &str) {
    // Focus styles apply only while the page has the focus, which some headless
    // Chromium builds give a page only after an input event: a click on its heading,
    // which does nothing else.
    c.find(Locator::Css("h1")).await.unwrap().click().await.unwrap();
    assert_eq!(c.execute("return document.hasFocus()", vec![]).await.unwrap(), json!(true), "{page}: no focus");
    let problems = c.execute(AUDIT, vec![]).await.unwrap();
    assert_eq!(problems, json!([]), "{page}");
}

/// What the browser's console said since the last call, warnings and errors only
/// (chromedriver's log endpoint): a missing icon, a refused style, a failed request.
async fn console_problems(c: &Client, driver: &Driver) -> Vec<String> {
    let session = c.session_id().await.unwrap().expect("a session id");
    let log: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["value"].as_array().unwrap_or_else(|| panic!("no browser log: {log}"));
    entries
        .iter()
        .filter(|e| matches!(e["level"].as_str(), Some("WARNING" | "SEVERE")))
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn heading(c: &Client) -> String {
    c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap()
}

/// A ledger that looks like a few days of backups: three buckets (one off, one with a
/// chat of its own), deliveries in one and several parts over the last week, a failure,
/// a dead delivery, runs and a heartbeat.
async fn backups() -> World {
    let mut w = World::new().await.with_admin();
    // Photos go to a chat of their own; two places are watched for fresh backups, and
    // the nginx configuration stopped coming a day and a half ago.
    w.config_file(
        "[buckets.media]\nchat_id = -1009876543210\n\n\
         [buckets.db-dumps]\nexpect_every = { \"postgres/\" = \"24h\" }\n\n\
         [buckets.configs]\nexpect_every = \"24h\"\n",
    );
    for bucket in ["db-dumps", "media", "configs"] {
        w.s3.create_bucket(bucket).await;
    }
    for (i, day) in (20..28).enumerate() {
        let size = 40 * 1024 + i * 37 * 1024;
        w.s3.put("db-dumps", &format!("postgres/main-2026-11-{day}.sql.gz"), data(size, i as u64)).await;
    }
    for n in 0..5 {
        w.s3.put("media", &format!("photos/2026/11/IMG_{:04}.jpg", 4100 + n), data(20_000 + n * 9000, 50 + n as u64))
            .await;
    }
    w.s3.put("configs", "nginx/sites.tar.gz", data(3000, 90)).await;
    crate::freshness::age_object(&w, "configs", "nginx/sites.tar.gz", Duration::from_secs(36 * 3600));
    w.sync().await.success();
    w.tg.set_upload_limit(1);
    w.s3.put("db-dumps", "postgres/main-2026-11-28.sql.gz", data(300 * 1024, 99)).await;
    w.s3.put("media", "photos/2026/11/IMG_4200.jpg", data(5000, 98)).await;
    w.sync().await.code(1);
    w.tg.set_upload_limit(50 * 1024 * 1024);
    w.execute("UPDATE deliveries SET state = 'dead', attempts = 8, next_attempt_at = NULL WHERE key LIKE '%IMG_4200%'");
    w.execute("UPDATE buckets SET enabled = 0 WHERE name = 'configs'");
    // What was delivered, spread over the last week: the overview draws it hour by hour.
    w.execute(
        "UPDATE deliveries SET created_at = created_at - (id % 6) * 86400 - (id * 5 % 11) * 3600,
            sent_at = sent_at - (id % 6) * 86400 - (id * 5 % 11) * 3600 WHERE state = 'sent'",
    );
    w.run(&["heartbeat"]).await.success();
    w
}

/// Whether the browser tests run: they need Debian's Chromium, unless told to skip.
fn browser_wanted() -> bool {
    if std::env::var("TGPLOY_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TGPLOY_SKIP_BROWSER_TESTS=1");
        return false;
    }
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser test needs Debian's chromium and chromium-driver: `{INSTALL}` (as .ci/run does), \
         or set TGPLOY_SKIP_BROWSER_TESTS=1 to skip it"
    );
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_signs_in_switches_a_bucket_off_and_on_and_takes_screenshots() {
    if !browser_wanted() {
        return;
    }
    let mut d = Dash::start_in(backups().await).await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let base = d.server.url.clone();

    // Sign in by typing, like a person.
    c.goto(&format!("{base}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"), "signed-out visitors go to the sign-in");
    viewport(&c, 390, 844).await;
    audit(&c, "sign-in").await;
    shoot(&c, "login", 390, 844).await;
    sign_in(&c, &mut d).await;
    assert_eq!(heading(&c).await, "OVERVIEW", "text-transform shows headings in capitals");

    for (page, name) in [("/", "overview"), ("/buckets", "buckets"), ("/files", "files"), ("/retry", "retry")] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        for (width, height) in [(1280, 800), (390, 844)] {
            viewport(&c, width, height).await;
            audit(&c, &format!("{page} at {width}px")).await;
            shoot(&c, name, width, height).await;
            if page == "/" {
                shoot_from(&c, "overview-charts", width, height, Some("#live-charts")).await;
                shoot_from(&c, "overview-freshness", width, height, Some("#live-watches")).await;
            }
        }
    }
    for page in ["/logs", "/security", "/settings"] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        for (width, height) in [(1280, 800), (390, 844)] {
            viewport(&c, width, height).await;
            audit(&c, &format!("{page} at {width}px")).await;
        }
    }
    // Every page loaded its stylesheet and its icon; nothing was refused or missing.
    let icon = "const i = new Image(); i.onload = () => arguments[0]([i.naturalWidth, i.naturalHeight]); \
                i.onerror = () => arguments[0]('no icon'); i.src = document.querySelector('link[rel=icon]').href;";
    assert_eq!(c.execute_async(icon, vec![]).await.unwrap(), json!([32, 32]), "the icon");
    assert_eq!(console_problems(&c, &driver).await, Vec::<String>::new(), "the console");

    // Switch db-dumps off (a fresh code), then on again.
    viewport(&c, 1280, 800).await;
    c.goto(&format!("{base}/buckets")).await.unwrap();
    let off = r#"form[action="/buckets/disable"]:has(input[name=bucket][value="db-dumps"])"#;
    let form = c.find(Locator::Css(off)).await.unwrap();
    let code = d.codes.next().await;
    form.find(Locator::Css("input[name=code]")).await.unwrap().send_keys(&code).await.unwrap();
    form.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    // The page that answers carries its own notice: wait for it, not for the one before.
    let notice = notice_saying(&c, "disabled bucket db-dumps").await;
    assert!(notice.contains("disabled bucket db-dumps"), "{notice}");
    assert_eq!(d.enabled("db-dumps"), "0");
    let on = r#"form[action="/buckets/enable"]:has(input[name=bucket][value="db-dumps"])"#;
    c.find(Locator::Css(on))
        .await
        .unwrap()
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = notice_saying(&c, "enabled bucket db-dumps").await;
    assert!(notice.contains("enabled bucket db-dumps"), "{notice}");
    assert_eq!(d.enabled("db-dumps"), "1");

    // Signing out lands on the sign-in page, and the pages are closed again.
    c.find(Locator::Css("form[action=\"/logout\"] button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#password")).await.unwrap();
    c.goto(&format!("{base}/files")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    c.close().await.unwrap();
    eprintln!("screenshots in {}", screenshot_dir().display());
}

/// Types the password and a code into the sign-in page shown, and sends it; the
/// overview answers.
async fn sign_in(c: &Client, d: &mut Dash) {
    c.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    let code = d.codes.next().await;
    c.find(Locator::Css("#code")).await.unwrap().send_keys(&code).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    // Only signed-in pages have the sidebar (the sign-in page has a heading too).
    let signed_in = tokio::time::timeout(Duration::from_secs(30), c.wait().for_element(Locator::Css(".sidebar"))).await;
    if !matches!(signed_in, Ok(Ok(_))) {
        panic!("not signed in: {}", c.source().await.unwrap_or_default());
    }
    assert_eq!(c.current_url().await.unwrap().path(), "/");
}

/// The delivery in flight of `key` on the overview: its id, the parts done and in all as
/// its row says them, and its part counter's text.
const IN_FLIGHT: &str = r#"
const row = [...document.querySelectorAll('#live-inflight tr[data-delivery]')].find(r => r.textContent.includes(arguments[0]));
return row ? [row.dataset.delivery, Number(row.dataset.done), Number(row.dataset.total), row.querySelector('.parts').textContent] : null;
"#;

/// Whether delivery `id` is out of flight and among the latest deliveries, as sent.
const SENT: &str = r#"
const row = document.querySelector(`#live-latest tr[data-delivery="${arguments[0]}"]`);
return !!row && !!row.querySelector('.badge-sent') && !document.querySelector(`#live-inflight tr[data-delivery="${arguments[0]}"]`);
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_follows_a_delivery_part_by_part_without_a_reload() {
    if !browser_wanted() {
        return;
    }
    let mut d = Dash::start().await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("{}/", d.server.url)).await.unwrap();
    sign_in(&c, &mut d).await;
    // The page is loaded once: a mark on its window stays as long as it is not reloaded
    // or left.
    c.execute("window.tgployMark = 'this page'", vec![]).await.unwrap();
    let status = c.wait().for_element(Locator::Css("#live-status[data-state=on]")).await.unwrap();
    assert_eq!(status.text().await.unwrap(), "Live");

    // Objects of 8 parts, delivered by `tgploy sync` in another process, a part a second.
    d.w.tg.set_upload_rate(Some(PART_SIZE));
    for (width, height) in [(1280, 800), (390, 844)] {
        viewport(&c, width, height).await;
        let key = format!("db/live-{width}.sql.gz");
        d.w.s3.put("backups", &key, data(8 * PART_SIZE as usize, width as u64)).await;
        let sync = d.w.spawn(&["sync"]);
        let mut counts = Vec::new();
        let mut id = None;
        let mut audited = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while id.is_none() || counts.last().is_some_and(|(done, _)| *done < 8) {
            assert!(std::time::Instant::now() < deadline, "{key} in flight: {counts:?}");
            let row = c.execute(IN_FLIGHT, vec![json!(key)]).await.unwrap();
            if let Some([delivery, done, total, text]) = row.as_array().map(|r| r.as_slice()) {
                let (done, total) = (done.as_u64().unwrap(), total.as_u64().unwrap());
                assert_eq!(text.as_str().unwrap(), format!("{done} of {total}"), "the counter says it");
                id = delivery.as_str().map(str::to_string);
                if counts.last() != Some(&(done, total)) {
                    counts.push((done, total));
                }
                if done >= 3 && !audited {
                    audited = true;
                    audit(&c, &format!("the overview with a delivery in flight at {width}px")).await;
                    if width == 1280 {
                        shoot(&c, "overview-live", width, height).await;
                    }
                }
            } else if id.is_some() {
                break; // out of flight
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let id = id.unwrap_or_else(|| panic!("{key} was never seen in flight"));
        assert!(counts.iter().all(|(_, total)| *total == 8), "{counts:?}");
        assert!(counts.windows(2).all(|w| w[0].0 < w[1].0), "the counter only goes up: {counts:?}");
        assert!(counts.len() >= 3, "the counter advanced part by part: {counts:?}");
        let sent = async {
            while c.execute(SENT, vec![json!(id)]).await.unwrap() != json!(true) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), sent)
            .await
            .unwrap_or_else(|_| panic!("{key} never showed as sent"));
        crate::harness::wait_exit(sync, Duration::from_secs(60)).await.success();
    }
    let kept = c.execute("return [window.tgployMark, performance.getEntriesByType('navigation').length]", vec![]);
    assert_eq!(kept.await.unwrap(), json!(["this page", 1]), "the window never navigated");
    assert_eq!(c.current_url().await.unwrap().path(), "/");

    // On the buckets page a code half typed stays: a bucket switched elsewhere is
    // announced, and its switch waits for a reload.
    c.goto(&format!("{}/buckets", d.server.url)).await.unwrap();
    c.wait().for_element(Locator::Css("#live-status[data-state=on]")).await.unwrap();
    let code = c.find(Locator::Css("#code-0")).await.unwrap();
    code.send_keys("12").await.unwrap();
    d.w.execute("UPDATE buckets SET enabled = 0 WHERE name = 'backups'");
    let shown = "return !document.getElementById('live-buckets-changed').hidden";
    let announced = async {
        while c.execute(shown, vec![]).await.unwrap() != json!(true) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), announced).await.expect("the change was announced");
    assert_eq!(code.prop("value").await.unwrap().as_deref(), Some("12"), "what was typed stays");
    assert_eq!(console_problems(&c, &driver).await, Vec::<String>::new(), "the console");
    c.close().await.unwrap();
}

/// The text of the notice that says `text`, once the page showing it has loaded.
async fn notice_saying(c: &Client, text: &str) -> String {
    let xpath = format!("//*[contains(concat(' ', @class, ' '), ' notice ') and contains(., '{text}')]");
    c.wait().for_element(Locator::XPath(&xpath)).await.unwrap().text().await.unwrap()
}
