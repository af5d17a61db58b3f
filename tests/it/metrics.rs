//! Prometheus metrics: `/metrics` on `serve-webhook` and `dashboard`, scraped over HTTP
//! and read with a Prometheus text parser; the values against the ledger after a sync,
//! after faults (a 429, an outage, refused webhook requests); the bearer token; the
//! textfile output of `status --prometheus`; no secret anywhere; and the example Grafana
//! dashboard and alert rules against what is exposed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::dashboard_client::Dash;
use crate::harness::{PART_SIZE, WEBHOOK_TOKEN, World, data};
use crate::support::{s3, telegram};
use crate::webhook::{body, post, rustfs_record};

const METRICS_TOKEN: &str = "scrape-me-6f2a91";

/// A parsed scrape: every sample by metric name and labels.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("not the Prometheus text format: {e}")))
    }

    /// The value of `metric` with exactly these labels.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        use prometheus_parse::Value;
        self.0.samples.iter().find_map(|s| {
            let same = s.metric == metric
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
            match (&s.value, same) {
                (Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v), true) => Some(*v),
                _ => None,
            }
        })
    }

    #[track_caller]
    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(metric, labels).unwrap_or_else(|| panic!("no {metric}{labels:?}"))
    }

    /// The metric names, with the label names of each.
    fn families(&self) -> BTreeSet<(String, BTreeSet<String>)> {
        self.0.samples.iter().map(|s| (s.metric.clone(), s.labels.keys().cloned().collect())).collect()
    }

    /// The metric names, with the families declared without samples yet.
    fn names(&self) -> BTreeSet<String> {
        self.0.samples.iter().map(|s| s.metric.clone()).chain(self.0.docs.keys().cloned()).collect()
    }

    fn histogram_count(&self, metric: &str) -> f64 {
        self.0
            .samples
            .iter()
            .find_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) if s.metric == metric => {
                    buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no histogram {metric}"))
    }
}

async fn scrape(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("{url}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("GET /metrics");
    let status = resp.status().as_u16();
    let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, kind, resp.text().await.unwrap_or_default())
}

fn sum(w: &World, sql: &str) -> f64 {
    w.query(sql)[0][0].parse().unwrap()
}

/// Every secret the test world holds.
fn secrets() -> Vec<&'static str> {
    let bot = telegram::TOKEN.split_once(':').unwrap().1;
    vec![bot, s3::SECRET_KEY, WEBHOOK_TOKEN, METRICS_TOKEN]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_match_the_ledger_and_count_what_went_wrong() {
    let mut w = World::new().await.with_admin();
    w.set_env("TGPLOY_METRICS_ENABLED", "true");
    w.set_env("TGPLOY_METRICS_TOKEN", METRICS_TOKEN);
    w.config_file("[buckets.dumps]\nexpect_every = \"24h\"\n");
    for b in ["dumps", "media"] {
        w.s3.create_bucket(b).await;
    }
    w.s3.put("dumps", "db.sql.gz", data(PART_SIZE as usize * 3 + 5, 1)).await;
    w.s3.put("dumps", "small", data(100, 2)).await;
    w.s3.put("media", "a.jpg", data(5000, 3)).await;
    // Flood control answers one upload with a wait of a second.
    w.tg.inject("sendDocument", telegram::Fault::RetryAfter(1), 1);
    w.sync().await.success();

    let server = w.start_webhook(&[]);
    let url = server.url.clone();
    // The token is required, and only that one.
    assert_eq!(scrape(&url, None).await.0, 401);
    assert_eq!(scrape(&url, Some("not-it")).await.0, 401);
    let (status, kind, text) = scrape(&url, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let m = Scrape::parse(&text);

    // What the ledger holds.
    for bucket in ["dumps", "media"] {
        let sent = sum(&w, &format!("SELECT count(*) FROM deliveries WHERE bucket = '{bucket}' AND state = 'sent'"));
        assert_eq!(m.get("tgploy_deliveries", &[("bucket", bucket), ("state", "sent")]), sent, "{bucket}");
        let bytes = sum(&w, &format!("SELECT sum(size) FROM deliveries WHERE bucket = '{bucket}' AND state = 'sent'"));
        assert_eq!(m.get("tgploy_delivered_bytes", &[("bucket", bucket)]), bytes, "{bucket}");
        assert_eq!(m.get("tgploy_deliveries", &[("bucket", bucket), ("state", "failed")]), 0.0);
    }
    assert_eq!(m.get("tgploy_parts_sent_total", &[]), sum(&w, "SELECT count(*) FROM parts"));
    assert_eq!(m.get("tgploy_documents_sent_total", &[]), w.tg.documents().len() as f64);
    let last_sync = sum(&w, "SELECT max(finished_at) FROM runs WHERE kind = 'sync' AND error IS NULL");
    assert_eq!(m.get("tgploy_last_success_timestamp_seconds", &[("kind", "sync")]), last_sync);
    assert_eq!(m.get("tgploy_dead_deliveries", &[]), 0.0);
    assert_eq!(m.get("tgploy_telegram_answers_total", &[("class", "429")]), 1.0);
    assert!(m.get("tgploy_telegram_flood_wait_seconds_total", &[]) >= 1.0);
    assert!(m.get("tgploy_telegram_answers_total", &[("class", "ok")]) >= w.tg.documents().len() as f64);
    let newest = sum(&w, "SELECT max(last_modified_ms) / 1000 FROM deliveries WHERE bucket = 'dumps'");
    assert_eq!(m.get("tgploy_newest_object_timestamp_seconds", &[("bucket", "dumps"), ("prefix", "")]), newest);
    assert_eq!(m.get("tgploy_watch_overdue", &[("bucket", "dumps"), ("prefix", "")]), 0.0);
    assert_eq!(m.get("tgploy_watch_max_age_seconds", &[("bucket", "dumps"), ("prefix", "")]), 26.4 * 3600.0);

    // The receiver: a refused token, a malformed body, one event accepted.
    assert_eq!(post(&format!("{url}/webhook"), Some("wrong"), "{}").await.0, 401);
    assert_eq!(post(&format!("{url}/webhook"), Some(WEBHOOK_TOKEN), "not json").await.0, 400);
    let documents = w.tg.documents().len();
    let etag = w.s3.put("media", "b.jpg", data(700, 4)).await;
    let event = body(vec![rustfs_record("media", "b.jpg", &etag, 700, "s3:ObjectCreated:Put")]);
    assert_eq!(post(&format!("{url}/webhook"), Some(WEBHOOK_TOKEN), serde_json::to_vec(&event).unwrap()).await.0, 200);
    let m = Scrape::parse(&scrape(&url, Some(METRICS_TOKEN)).await.2);
    assert_eq!(m.get("tgploy_webhook_requests_refused_total", &[("reason", "token")]), 1.0);
    assert_eq!(m.get("tgploy_webhook_requests_refused_total", &[("reason", "malformed")]), 1.0);
    assert_eq!(m.get("tgploy_webhook_events_accepted_total", &[]), 1.0);
    assert_eq!(m.histogram_count("tgploy_webhook_request_duration_seconds"), 3.0);
    assert_eq!(m.get("tgploy_webhook_request_duration_seconds_count", &[]), 3.0);
    // Its batch delivers the event's object, and is recorded as a run.
    assert!(w.tg.wait_for_documents(documents + 1, Duration::from_secs(30)).await, "the event was not delivered");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.query("SELECT count(*) FROM runs WHERE kind = 'webhook'") == [["0"]] {
        assert!(std::time::Instant::now() < deadline, "the batch was never recorded as a run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.stop("TERM", Duration::from_secs(30)).await.0, 0);

    // An outage: Telegram answers 502 to everything; the run stops, the answers count.
    w.tg.set_outage(telegram::Fault::ServerError(502));
    w.s3.put("media", "c.jpg", data(900, 5)).await;
    w.sync().await.code(4);
    w.tg.clear_faults();

    // The textfile for one-shot runs: the same families as the endpoint, the same
    // figures, written whole.
    let file = w.dir.path().join("tgploy.prom");
    w.run(&["status", "--prometheus", file.to_str().unwrap()]).await.success();
    let textfile = std::fs::read_to_string(&file).unwrap();
    let from_file = Scrape::parse(&textfile);
    assert!(from_file.get("tgploy_telegram_answers_total", &[("class", "outage")]) > 0.0);
    assert_eq!(from_file.get("tgploy_webhook_events_accepted_total", &[]), 1.0, "the server's counts were kept");
    let last_batch = sum(&w, "SELECT max(finished_at) FROM runs WHERE kind = 'webhook' AND error IS NULL");
    assert!(last_batch > 0.0, "the server recorded its batch as a run");
    assert_eq!(from_file.get("tgploy_last_success_timestamp_seconds", &[("kind", "webhook")]), last_batch);
    let stdout = w.run(&["status", "--prometheus"]).await;
    stdout.success();
    assert_eq!(Scrape::parse(&stdout.stdout).families(), from_file.families());
    let server = w.start_webhook(&[]);
    let (_, _, endpoint) = scrape(&server.url, Some(METRICS_TOKEN)).await;
    let endpoint = Scrape::parse(&endpoint);
    assert_eq!(endpoint.families(), from_file.families(), "the endpoint and the textfile have the same families");
    // (The server delivers what the outage left pending as it starts: only what it
    // cannot change is compared.)
    let labels = [("bucket", "dumps"), ("state", "sent")];
    assert_eq!(endpoint.get("tgploy_deliveries", &labels), from_file.get("tgploy_deliveries", &labels));
    let labels = [("bucket", "dumps")];
    assert_eq!(endpoint.get("tgploy_delivered_bytes", &labels), from_file.get("tgploy_delivered_bytes", &labels));
    assert_eq!(server.stop("TERM", Duration::from_secs(30)).await.0, 0);
    let leftovers: Vec<_> =
        crate::restore::leftovers(w.dir.path()).into_iter().filter(|n| n.starts_with(".tgploy-metrics")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    for text in [&text, &textfile, &stdout.stdout] {
        for secret in secrets() {
            assert!(!text.contains(secret), "a secret in the metrics");
        }
    }

    // The dashboard answers the same, outside its sessions; without `metrics.enabled`,
    // neither server has a /metrics.
    let d = Dash::start_in(w).await;
    let (status, _, text) = scrape(&d.server.url, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(Scrape::parse(&text).families(), from_file.families());
    assert!(secrets().iter().all(|secret| !text.contains(secret)), "a secret in the dashboard's metrics");
    assert_eq!(scrape(&d.server.url, None).await.0, 401);
    let mut w = d.w;
    w.unset_env("TGPLOY_METRICS_ENABLED");
    let server = w.start_webhook(&[]);
    let (status, _, text) = scrape(&server.url, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("metrics.enabled"), "{text}");
}

/// The metric names an expression uses (`tgploy_…`).
fn names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tgploy_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_dashboard_and_alert_rules_use_only_what_is_exposed() {
    let w = World::new().await;
    let out = w.run(&["status", "--prometheus"]).await;
    out.success();
    let exposed = Scrape::parse(&out.stdout);
    let mut known = exposed.names();
    // A histogram is one sample to the parser; PromQL reads its series.
    for suffix in ["_bucket", "_sum", "_count"] {
        known.insert(format!("tgploy_webhook_request_duration_seconds{suffix}"));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring");

    let rules_text = std::fs::read_to_string(root.join("prometheus-alerts.yaml")).unwrap();
    let rules = &yaml_rust2::YamlLoader::load_from_str(&rules_text).expect("the alert rules are YAML")[0];
    let mut alerts = BTreeMap::new();
    for group in rules["groups"].as_vec().expect("groups") {
        assert!(group["name"].as_str().is_some());
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert").to_string();
            let expr = rule["expr"].as_str().expect("expr");
            assert!(rule["annotations"]["summary"].as_str().is_some(), "{name}: a summary");
            for metric in names_in(expr) {
                assert!(known.contains(&metric), "{name} uses {metric}, which tgploy does not expose");
            }
            alerts.insert(name, expr.to_string());
        }
    }
    let sync = alerts.values().find(|e| e.contains("tgploy_last_success_timestamp_seconds{kind=\"sync\"}"));
    assert!(
        sync.is_some_and(|e| e.contains("7200") || e.contains("2 * 3600")),
        "no successful sync in 2 h: {alerts:?}"
    );
    assert!(alerts.values().any(|e| e.contains("tgploy_dead_deliveries") && e.contains("> 0")), "{alerts:?}");

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap())
            .expect("the Grafana dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut used = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{} has no targets", panel["title"]));
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{}: a target without expr", panel["title"]));
            for metric in names_in(expr) {
                assert!(
                    known.contains(&metric),
                    "panel {} uses {metric}, which tgploy does not expose",
                    panel["title"]
                );
                used.insert(metric);
            }
        }
    }
    for family in ["tgploy_deliveries", "tgploy_telegram_answers_total", "tgploy_newest_object_timestamp_seconds"] {
        assert!(used.contains(family), "the dashboard shows {family}");
    }
}
