//! Prometheus metrics: `GET /metrics` on `serve-webhook` and `dashboard` (with
//! `metrics.enabled`), and `status --prometheus` for node_exporter's textfile collector.
//!
//! The ledger is the one source, so that every process shows the same figures and
//! one-shot runs count as much as the servers: what the ledger holds (deliveries by
//! bucket and state, bytes, the last successful runs, dead deliveries, alerts waiting,
//! the freshness watches) is read at each scrape; what happened (Telegram's answers and
//! flood waits, documents and parts sent, S3 errors, webhook requests and their
//! durations) is counted in memory by each process ([`count`], [`observe_request`]) and
//! added to the ledger's `counters` table ([`flush`]) when a run ends, every few seconds
//! in the servers, and before each scrape. The text is the Prometheus text format
//! (0.0.4) of the Prometheus project's client library, which node_exporter also reads.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::freshness::{self, WatchStatus};
use crate::ledger::{Counter, Counts, Ledger};
use crate::run::RunKind;

/// The content type of what [`render`] returns.
pub(crate) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every family's name starts with this.
const PREFIX: &str = "tgploy";

/// A label and the values always shown for it (at 0 until counted).
type Shown = Option<(&'static str, &'static [&'static str])>;

/// Counters: name (the text says `tgploy_NAME_total`), help, and the label values that
/// are always shown.
const COUNTERS: &[(&str, &str, Shown)] = &[
    (
        TELEGRAM_ANSWERS,
        "Bot API answers by class: ok, 429 (flood control), 4xx (refused), outage (5xx or no answer)",
        Some(("class", &["ok", "429", "4xx", "outage"])),
    ),
    (FLOOD_WAIT_SECONDS, "Seconds flood control (429 retry_after) asked the bots to wait", None),
    (DOCUMENTS_SENT, "Documents Telegram accepted: parts, manifests, ledger snapshots", None),
    (PARTS_SENT, "Parts of objects Telegram accepted", None),
    (PACKS_SENT, "Packs Telegram accepted: small objects sent together as one tar document", None),
    (PACK_MEMBERS_SENT, "Objects sent in packs (divided by packs sent: objects per pack)", None),
    (
        S3_ERRORS,
        "S3 requests that failed, by kind",
        Some(("kind", &["unreachable", "denied", "not_found", "changed", "invalid", "other"])),
    ),
    (WEBHOOK_EVENTS_ACCEPTED, "Bucket events serve-webhook recorded in the ledger before answering 2xx", None),
    (
        WEBHOOK_REQUESTS_REFUSED,
        "Requests serve-webhook refused, by reason",
        Some(("reason", &["token", "malformed", "too_large", "busy", "failed"])),
    ),
];

pub(crate) const TELEGRAM_ANSWERS: &str = "telegram_answers";
pub(crate) const FLOOD_WAIT_SECONDS: &str = "telegram_flood_wait_seconds";
pub(crate) const DOCUMENTS_SENT: &str = "documents_sent";
pub(crate) const PARTS_SENT: &str = "parts_sent";
pub(crate) const PACKS_SENT: &str = "packs_sent";
pub(crate) const PACK_MEMBERS_SENT: &str = "pack_members_sent";
pub(crate) const S3_ERRORS: &str = "s3_errors";
pub(crate) const WEBHOOK_EVENTS_ACCEPTED: &str = "webhook_events_accepted";
pub(crate) const WEBHOOK_REQUESTS_REFUSED: &str = "webhook_requests_refused";

/// The receiver's request durations: a histogram with these upper bounds (seconds).
const DURATION: &str = "webhook_request_duration_seconds";
const DURATION_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

type Labels = Vec<(String, String)>;

/// What this process counted and has not added to the ledger yet.
static PENDING: LazyLock<Mutex<BTreeMap<(String, Labels), f64>>> = LazyLock::new(Mutex::default);

fn pending() -> std::sync::MutexGuard<'static, BTreeMap<(String, Labels), f64>> {
    PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts `by` more of the counter `name` (one of the constants above) with `labels`.
pub(crate) fn count(name: &str, pairs: &[(&str, &str)], by: f64) {
    *pending().entry((name.to_string(), labels(pairs))).or_default() += by;
}

/// Counts one request of the webhook receiver that took `took`.
pub(crate) fn observe_request(took: Duration) {
    let secs = took.as_secs_f64();
    let le = DURATION_BOUNDS.iter().find(|b| secs <= **b).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
    let mut p = pending();
    *p.entry((format!("{DURATION}_bucket"), vec![("le".into(), le)])).or_default() += 1.0;
    *p.entry((format!("{DURATION}_sum"), Vec::new())).or_default() += secs;
    *p.entry((format!("{DURATION}_count"), Vec::new())).or_default() += 1.0;
}

/// Adds what this process counted to the ledger's counters. What cannot be written
/// stays pending for the next flush.
pub(crate) fn flush(ledger: &Ledger) -> Result<()> {
    let taken = std::mem::take(&mut *pending());
    if taken.is_empty() {
        return Ok(());
    }
    let increments: Vec<Counter> =
        taken.iter().map(|((name, labels), by)| (name.clone(), labels.clone(), *by)).collect();
    if let Err(e) = ledger.add_to_counters(&increments) {
        let mut p = pending();
        for ((name, labels), by) in taken {
            *p.entry((name, labels)).or_default() += by;
        }
        return Err(e);
    }
    Ok(())
}

/// Everything a scrape shows, read from the ledger.
#[derive(Debug)]
pub struct Snapshot {
    per_bucket: BTreeMap<String, Counts>,
    totals: Counts,
    last_success: Vec<(&'static str, i64)>,
    alerts_waiting: u64,
    watches: Vec<WatchStatus>,
    counters: Vec<Counter>,
}

/// Reads a snapshot (after adding what this process counted).
pub fn gather(ledger: &Ledger, cfg: &Config, now: i64) -> Result<Snapshot> {
    if let Err(e) = flush(ledger) {
        tracing::warn!("cannot add this process's counts to the ledger yet: {e}");
    }
    let (totals, per_bucket) = ledger.counts()?;
    let mut last_success = Vec::new();
    for kind in RunKind::ALL {
        if let (_, Some(ok)) = ledger.last_runs(kind.as_str())? {
            last_success.push((kind.as_str(), ok.finished_at));
        }
    }
    Ok(Snapshot {
        per_bucket: per_bucket.into_iter().collect(),
        totals,
        last_success,
        alerts_waiting: ledger.unsent_alert_count()?,
        watches: freshness::check(ledger, cfg, now)?,
        counters: ledger.counters()?,
    })
}

/// The snapshot in the Prometheus text format.
pub fn render(snapshot: Snapshot) -> Result<String> {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .map_err(|e| Error::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(text)
}

/// One family of gauges: its name, help, and samples (labels, value).
fn gauges(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, samples: &[(Labels, f64)]) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        gauges(
            &mut encoder,
            "build_info",
            "The version of tgploy that answers",
            &[(labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1.0)],
        )?;
        let mut deliveries = Vec::new();
        let mut bytes = Vec::new();
        for (bucket, c) in &self.per_bucket {
            for (state, n) in [
                ("pending", c.pending),
                ("sending", c.sending),
                ("sent", c.sent),
                ("failed", c.failed),
                ("dead", c.dead),
                ("skipped", c.skipped),
            ] {
                deliveries.push((labels(&[("bucket", bucket), ("state", state)]), n as f64));
            }
            bytes.push((labels(&[("bucket", bucket)]), c.sent_bytes as f64));
        }
        gauges(&mut encoder, "deliveries", "Deliveries in the ledger by bucket and state", &deliveries)?;
        gauges(&mut encoder, "delivered_bytes", "Bytes of the objects delivered, by bucket", &bytes)?;
        gauges(
            &mut encoder,
            "dead_deliveries",
            "Deliveries that failed max_attempts times and wait for `retry --dead`",
            &[(Vec::new(), self.totals.dead as f64)],
        )?;
        gauges(
            &mut encoder,
            "alerts_waiting",
            "Alerts not yet sent to the admin chat",
            &[(Vec::new(), self.alerts_waiting as f64)],
        )?;
        let last: Vec<(Labels, f64)> =
            self.last_success.iter().map(|(kind, at)| (labels(&[("kind", kind)]), *at as f64)).collect();
        gauges(
            &mut encoder,
            "last_success_timestamp_seconds",
            "When the last successful run of each kind ended",
            &last,
        )?;
        let place = |w: &WatchStatus| labels(&[("bucket", &w.bucket), ("prefix", &w.prefix)]);
        let newest: Vec<(Labels, f64)> =
            self.watches.iter().filter_map(|w| Some((place(w), w.newest_unix? as f64))).collect();
        gauges(
            &mut encoder,
            "newest_object_timestamp_seconds",
            "S3 last-modified time of the newest object of each freshness watch (expect_every)",
            &newest,
        )?;
        let max_age: Vec<(Labels, f64)> =
            self.watches.iter().map(|w| (place(w), w.watch.limit().as_secs_f64())).collect();
        gauges(
            &mut encoder,
            "watch_max_age_seconds",
            "How old the newest object of each watch may be (its period and grace)",
            &max_age,
        )?;
        let overdue: Vec<(Labels, f64)> =
            self.watches.iter().map(|w| (place(w), if w.overdue { 1.0 } else { 0.0 })).collect();
        gauges(&mut encoder, "watch_overdue", "1 when a watch got no new object in time", &overdue)?;

        let stored: BTreeMap<(&str, &Labels), f64> =
            self.counters.iter().map(|(name, labels, value)| ((name.as_str(), labels), *value)).collect();
        for (name, help, shown) in COUNTERS {
            let mut samples: BTreeMap<Labels, f64> = BTreeMap::new();
            match shown {
                None => {
                    samples.insert(Vec::new(), 0.0);
                }
                Some((label, values)) => {
                    for v in *values {
                        samples.insert(labels(&[(label, v)]), 0.0);
                    }
                }
            }
            for ((stored_name, stored_labels), value) in &stored {
                if stored_name == name {
                    *samples.entry((*stored_labels).clone()).or_default() += value;
                }
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, value) in &samples {
                if labels.is_empty() {
                    family.encode_counter::<Labels, f64, f64>(value, None)?;
                } else {
                    family.encode_family(labels)?.encode_counter::<Labels, f64, f64>(value, None)?;
                }
            }
        }

        // The receiver's durations: each bucket's own count, which the encoder shows
        // cumulative.
        let bucket_name = format!("{DURATION}_bucket");
        let le_count = |le: &str| stored.get(&(bucket_name.as_str(), &labels(&[("le", le)]))).copied().unwrap_or(0.0);
        let mut buckets: Vec<(f64, u64)> =
            DURATION_BOUNDS.iter().map(|b| (*b, le_count(&b.to_string()) as u64)).collect();
        buckets.push((f64::INFINITY, le_count("+Inf") as u64));
        let single = |suffix: &str| stored.get(&(format!("{DURATION}_{suffix}").as_str(), &Vec::new())).copied();
        let mut family = encoder.encode_descriptor(
            DURATION,
            "How long serve-webhook took to answer a request",
            None,
            MetricType::Histogram,
        )?;
        family.encode_histogram::<Labels>(
            single("sum").unwrap_or(0.0),
            single("count").unwrap_or(0.0) as u64,
            &buckets,
            None,
        )
    }
}

/// Whether a `/metrics` request may be answered: with `metrics.token` set, it must carry
/// `Authorization: Bearer <token>`.
fn authorized(cfg: &Config, headers: &axum::http::HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    match &cfg.metrics_token {
        None => true,
        Some(token) => crate::bearer::token(headers)
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))),
    }
}

/// Writes the text for node_exporter's textfile collector: into a temporary file beside
/// `path`, then renamed over it.
pub fn write_textfile(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Error::local(format!(
            "cannot write the metrics to {}: {e}; check the directory and its permissions",
            path.display()
        ))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".tgploy-metrics-").tempfile_in(dir).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    // The collector runs as another user: the file is for reading, like any .prom file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(fail)?;
    }
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Warns when `/metrics` is on without a token on an address beyond this machine.
pub(crate) fn warn_if_open(cfg: &Config, addr: std::net::SocketAddr) {
    if cfg.metrics_enabled && cfg.metrics_token.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "/metrics answers anyone who reaches {addr}: set `metrics.token` (TGPLOY_METRICS_TOKEN) and give it to \
             the scraper"
        );
    }
}

/// How often the servers add their counts to the ledger.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The answer to `GET /metrics` on the servers: 404 unless `metrics.enabled`, 401
/// without the token `metrics.token` names, the text otherwise.
pub(crate) async fn response(
    cfg: &Config,
    ledger: &std::sync::Arc<Ledger>,
    headers: &axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    if !cfg.metrics_enabled {
        return (StatusCode::NOT_FOUND, "metrics are off: set `metrics.enabled = true` (TGPLOY_METRICS_ENABLED)\n")
            .into_response();
    }
    if !authorized(cfg, headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this needs `Authorization: Bearer <metrics.token>`\n",
        )
            .into_response();
    }
    let cfg = cfg.clone();
    match Ledger::blocking(ledger, move |l| render(gather(l, &cfg, crate::time::now())?)).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!("metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be read from the ledger; the log says why\n")
                .into_response()
        }
    }
}

/// Adds this process's counts to the ledger every `every` until the process ends (the
/// servers' background task).
pub(crate) async fn flush_every(ledger: std::sync::Arc<Ledger>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = Ledger::blocking(&ledger, flush).await {
            tracing::warn!("cannot add counts to the ledger yet: {e}");
        }
    }
}
