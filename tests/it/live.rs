//! The live dashboard over real HTTP: `GET /live/PAGE` follows a delivery made by
//! another process part by part and a run from its start, needs a signed-in session of
//! the dashboard's own origin, ends when the session does, carries no secret, and picks
//! up from `Last-Event-ID` without repeating itself.

use std::time::Duration;

use crate::dashboard_client::{Dash, PASSWORD, Sse, Stream};
use crate::harness::{self, PART_SIZE, data};
use crate::support::{s3, telegram};

/// `data-done` of the in-flight row of delivery `id` in a region's HTML.
fn parts_done(html: &str, id: &str) -> Option<(u32, u32)> {
    let row = html.split("<tr ").find(|row| row.starts_with(&format!("data-delivery=\"{id}\"")))?;
    let attr = |name: &str| -> Option<u32> { row.split(&format!("{name}=\"")).nth(1)?.split('"').next()?.parse().ok() };
    Some((attr("data-done")?, attr("data-total")?))
}

/// The id of the first delivery in flight in a region's HTML.
fn first_in_flight(html: &str) -> Option<String> {
    Some(html.split("<tr data-delivery=\"").nth(1)?.split('"').next()?.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_follows_a_delivery_part_by_part_and_a_run_from_its_start_and_carries_no_secret() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in().await;
    let token = c.token().await;
    let mut overview = Stream::open(&c, "overview", None).await;
    assert_eq!(overview.status, 200);
    assert_eq!(overview.headers["content-type"], "text/event-stream");
    assert_eq!(overview.headers["cache-control"], "no-cache");
    assert_eq!(overview.headers["x-accel-buffering"], "no");
    assert!(overview.headers["content-security-policy"].to_str().unwrap().contains("connect-src 'self'"));
    let first = overview.update(Duration::from_secs(10)).await;
    assert_eq!(first.retry, Some(3000), "the browser waits 3 s before it reconnects");
    assert!(first.id.as_deref().is_some_and(|id| id.contains('.')), "{first:?}");
    for region in ["live-cards", "live-inflight", "live-charts", "live-latest", "live-runs"] {
        assert!(first.region(region).is_some(), "the first update is whole: {region}");
    }
    assert!(first.region("live-inflight").unwrap().contains("Nothing in flight."));
    let mut logs = Stream::open(&c, "logs", None).await;
    logs.update(Duration::from_secs(10)).await;

    // A 6-part object, delivered by `tgploy sync` in another process, a part a second.
    d.w.tg.set_upload_rate(Some(PART_SIZE));
    d.w.s3.put("backups", "db/big.sql.gz", data(6 * PART_SIZE as usize, 77)).await;
    let sync = d.w.spawn(&["sync"]);

    // The logs show the run as soon as it starts.
    let running = logs
        .until(Duration::from_secs(20), |e| {
            e.comment.is_none() && e.region("live-runs").is_some_and(|r| r.contains("badge-running"))
        })
        .await;
    assert!(running.region("live-runs").unwrap().contains("<strong>sync</strong>"));

    // The overview shows it in flight, its parts counted as Telegram accepts them.
    let mut seen = Vec::new();
    let mut id = None;
    let sent = overview
        .until(Duration::from_secs(60), |e| {
            let Some(update) = e.comment.is_none().then(|| e.update()) else { return false };
            if let Some(flying) = update["regions"]["live-inflight"].as_str() {
                if id.is_none() {
                    id = first_in_flight(flying);
                }
                if let Some(done) = id.as_deref().and_then(|id| parts_done(flying, id)) {
                    seen.push(done);
                }
            }
            let latest = update["regions"]["live-latest"].as_str().unwrap_or("");
            id.as_deref().is_some_and(|id| latest.contains(&format!("data-delivery=\"{id}\"")))
        })
        .await;
    let id = id.expect("the delivery was seen in flight");
    assert!(seen.iter().all(|(_, total)| *total == 6), "6 parts in all: {seen:?}");
    let done: Vec<u32> = seen.iter().map(|(done, _)| *done).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "the count only goes up: {done:?}");
    assert!(done.iter().collect::<std::collections::BTreeSet<_>>().len() >= 3, "it advanced part by part: {done:?}");
    // Sent: out of flight, into the latest deliveries, in the same update.
    let flying = sent.region("live-inflight").unwrap_or_default();
    assert!(!flying.contains(&format!("data-delivery=\"{id}\"")), "{flying}");
    assert!(sent.region("live-latest").unwrap().contains("big.sql.gz"));
    harness::wait_exit(sync, Duration::from_secs(60)).await.success();

    // The run, finished, with its outcome.
    logs.until(Duration::from_secs(20), |e| {
        e.comment.is_none()
            && e.region("live-runs").is_some_and(|r| !r.contains("badge-running") && r.contains("badge-ok"))
    })
    .await;

    // No secret went down either stream.
    let hash = d.w.query("SELECT hash FROM dashboard_password")[0][0].clone();
    let mut secrets = vec![
        ("bot token", telegram::TOKEN.split_once(':').unwrap().1.to_string()),
        ("S3 secret", s3::SECRET_KEY.to_string()),
        ("webhook token", harness::WEBHOOK_TOKEN.to_string()),
        ("TOTP secret", d.enrolment.secret_base32.clone()),
        ("password hash", hash.rsplit('$').next().unwrap().to_string()),
        ("password", PASSWORD.to_string()),
        ("session id", c.cookies["tgploy_session"].clone()),
        ("CSRF token", token),
    ];
    secrets.extend(d.unused_recovery_codes().into_iter().map(|code| ("recovery code", code)));
    for stream in [&overview, &logs] {
        let headers = format!("{:?}", stream.headers);
        for (what, secret) in &secrets {
            assert!(!stream.wire.contains(secret.as_str()), "the {what} went down the stream");
            assert!(!headers.contains(secret.as_str()), "the {what} is in a header");
        }
        assert!(!stream.wire.contains("name=\"csrf\"") && !stream.wire.contains("<form"), "no form, no token");
    }

    // Stopping the server ends its streams: it stops at once.
    let (code, logs_text) = d.server.stop("TERM", Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{logs_text}");
    assert!(overview.next(Duration::from_secs(5)).await.is_none(), "the stream ended with the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_needs_a_live_session_and_the_dashboards_own_origin() {
    let mut d = Dash::start().await;
    let anonymous = d.client();
    let refused = Stream::open(&anonymous, "overview", None).await;
    assert_eq!(refused.status, 401);
    assert!(!refused.headers["content-type"].to_str().unwrap().contains("event-stream"));

    let mut forged = d.client();
    forged.cookies.insert("tgploy_session".into(), "ab".repeat(32));
    assert_eq!(Stream::open(&forged, "overview", None).await.status, 401);

    let c = d.signed_in().await;
    assert_eq!(Stream::open(&c, "security", None).await.status, 404, "only pages with live parts");
    let cookie = format!("tgploy_session={}", c.cookies["tgploy_session"]);
    let http = reqwest::Client::new();
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let resp = http
            .get(format!("{}/live/overview", d.server.url))
            .header("cookie", &cookie)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{name}: {value}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("data:") && !body.contains("live-cards"), "nothing for another origin: {body}");
    }
    let mut ok = Stream::open(&c, "overview", None).await;
    assert_eq!(ok.status, 200);
    ok.update(Duration::from_secs(10)).await;

    // A session idle for 30 minutes has ended: no stream for it, no page either.
    let mut late = d.signed_in().await;
    let idle = tgploy::time::now() - tgploy::dashboard::auth::IDLE_SECS - 1;
    d.w.execute(&format!("UPDATE dashboard_sessions SET last_seen_at = {idle}"));
    assert_eq!(Stream::open(&late, "overview", None).await.status, 401);
    assert_eq!(late.get("/").await.location(), "/login?expired=1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_session_is_signed_out_or_expires() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in().await;
    let mut stream = Stream::open(&c, "retry", None).await;
    stream.update(Duration::from_secs(10)).await;
    // Nothing changes: a comment keeps proxies from closing the stream.
    let quiet = stream.until(Duration::from_secs(20), |e| e.comment.is_some()).await;
    assert_eq!(quiet.comment.as_deref(), Some("keep-alive"));

    let token = c.token().await;
    assert_eq!(c.post("/logout", &[("csrf", &token)]).await.location(), "/login");
    let end = stream.until(Duration::from_secs(10), |e| e.event.as_deref() == Some("end")).await;
    assert_eq!(end.data, "signed-out");
    assert!(stream.next(Duration::from_secs(5)).await.is_none(), "then it ends");

    // Twelve hours after sign-in, however busy.
    let c = d.signed_in().await;
    let mut stream = Stream::open(&c, "files", None).await;
    stream.update(Duration::from_secs(10)).await;
    d.w.execute(&format!("UPDATE dashboard_sessions SET created_at = {}", tgploy::time::now() - 12 * 3600 - 1));
    let end = stream.until(Duration::from_secs(10), |e| e.event.as_deref() == Some("end")).await;
    assert_eq!(end.data, "expired");
    assert!(stream.next(Duration::from_secs(5)).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_picks_up_from_last_event_id_with_nothing_missed_or_repeated() {
    let mut d = Dash::start().await;
    let c = d.signed_in().await;
    let alert = |n: i64| format!("INSERT INTO alerts (subject, text, created_at) VALUES ('s{n}', 'alert {n}', {n})");
    let waiting = |e: &Sse| {
        let cards = e.region("live-cards").unwrap_or_default();
        cards.split("Alerts waiting").nth(1).and_then(|r| r.split("class=\"big\">").nth(1)).map(|r| r[..1].to_string())
    };

    let mut stream = Stream::open(&c, "overview", None).await;
    let first = stream.update(Duration::from_secs(10)).await;
    let first_id = first.id.clone().unwrap();
    assert_eq!(waiting(&first).as_deref(), Some("0"));
    drop(stream);

    // Missed while away: what changed since the update it has, and only that.
    d.w.execute(&alert(1));
    let mut stream = Stream::open(&c, "overview", Some(&first_id)).await;
    let change = stream.update(Duration::from_secs(10)).await;
    let second_id = change.id.clone().unwrap();
    assert_ne!(second_id, first_id);
    assert_eq!(waiting(&change).as_deref(), Some("1"), "{}", change.data);
    assert!(change.region("live-latest").is_none(), "an unchanged region is not sent again: {}", change.data);
    drop(stream);

    // Back with the newest update: nothing is repeated, the next change comes first.
    let mut stream = Stream::open(&c, "overview", Some(&second_id)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.w.execute(&alert(2));
    let mut ids = Vec::new();
    let next = stream
        .until(Duration::from_secs(10), |e| {
            ids.extend(e.id.clone());
            e.comment.is_none() && waiting(e).as_deref() == Some("2")
        })
        .await;
    assert!(!ids.contains(&second_id), "the update it had is not sent again: {ids:?}");
    let third_id = next.id.clone().unwrap();
    drop(stream);

    // From further back, or from another process (a restart): the whole.
    for last in [first_id.as_str(), "0badc0de.1", "garbage"] {
        let mut stream = Stream::open(&c, "overview", Some(last)).await;
        let whole = stream.update(Duration::from_secs(10)).await;
        // The newest update (a later one only if the ledger moved on meanwhile).
        let seq = |id: &str| id.split_once('.').and_then(|(_, seq)| seq.parse::<u64>().ok()).unwrap();
        assert!(seq(whole.id.as_deref().unwrap()) >= seq(&third_id), "{last}: {:?}", whole.id);
        assert!(whole.region("live-latest").is_some() && whole.region("live-charts").is_some(), "{last}: whole");
        assert_eq!(waiting(&whole).as_deref(), Some("2"));
    }
}
