//! Freshness watches (`expect_every`): a backup job that stopped producing backups is
//! noticed by `sync` (one alert, then a recovery note), `status --check`, `status`, the
//! heartbeat and the dashboard.

use std::time::{Duration, SystemTime};

use crate::dashboard_client::Dash;
use crate::harness::{World, data};

/// Makes an object in the test S3 server look `age` old: s3s-fs gives each object its
/// file's modification time as its Last-Modified.
pub(crate) fn age_object(w: &World, bucket: &str, key: &str, age: Duration) {
    let path = w.s3.root().join(bucket).join(key);
    let file = std::fs::File::options().write(true).open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.set_modified(SystemTime::now() - age).unwrap();
}

const HOUR: Duration = Duration::from_secs(3600);

fn stale_alerts(w: &World) -> Vec<String> {
    w.admin_messages().into_iter().filter(|m| m.contains("no new backup")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_job_that_stopped_is_noticed_once_then_its_recovery() {
    let mut w = World::new().await.with_admin();
    w.config_file("[buckets.dumps]\nexpect_every = { \"db/\" = \"24h\", \"wal/\" = \"15m\" }\n");
    w.s3.create_bucket("dumps").await;
    w.s3.put("dumps", "db/2026-11-28.sql.gz", data(300, 1)).await;
    age_object(&w, "dumps", "db/2026-11-28.sql.gz", 27 * HOUR);
    w.s3.put("dumps", "db/2026-11-27.sql.gz", data(300, 2)).await;
    age_object(&w, "dumps", "db/2026-11-27.sql.gz", 50 * HOUR);
    w.s3.put("dumps", "wal/000000010000000A", data(100, 3)).await;

    // The deliveries succeed: the sync does; the watch of db/ is overdue (27 h > 24 h
    // and its tenth), the one of wal/ is not.
    let out = w.run(&["sync", "--json"]).await;
    out.success();
    let report = out.json();
    let watches = report["watches"].as_array().unwrap();
    assert_eq!(watches.len(), 2);
    let db = watches.iter().find(|x| x["prefix"] == "db/").unwrap();
    assert_eq!((db["overdue"].as_bool(), db["newest_key"].as_str()), (Some(true), Some("db/2026-11-28.sql.gz")));
    assert_eq!(watches.iter().find(|x| x["prefix"] == "wal/").unwrap()["overdue"], false);
    let alerts = stale_alerts(&w);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains("no new backup in dumps/db/ for 27 h; expected every 24 h; newest: db/2026-11-28.sql.gz at"),
        "{}",
        alerts[0]
    );

    // Monitoring sees it; a second sync within `alert_interval` does not alert again.
    let check = w.run(&["status", "--check"]).await;
    check.code(1);
    let critical: Vec<&str> = check.stdout.lines().filter(|l| l.starts_with("CRITICAL:")).collect();
    assert_eq!(critical.len(), 1, "{}", check.stdout);
    assert!(critical[0].contains("no new backup in dumps/db/ for 27 h"), "{}", critical[0]);
    w.sync().await.success();
    assert_eq!(stale_alerts(&w).len(), 1, "once per alert_interval");

    let status = w.run(&["status"]).await;
    status.success();
    let row = status.stdout.lines().find(|l| l.contains("dumps/db/")).unwrap_or_else(|| panic!("{}", status.stdout));
    assert!(row.contains("OVERDUE") && row.contains("27 h ago (expected every 24 h)"), "{row}");
    let json = w.run(&["status", "--json"]).await.json();
    assert_eq!(json["watches"].as_array().unwrap().iter().filter(|x| x["overdue"] == true).count(), 1);

    w.run(&["heartbeat"]).await.success();
    let beat = w.admin_messages().into_iter().rev().find(|m| m.starts_with("tgploy heartbeat")).unwrap();
    assert!(beat.starts_with("tgploy heartbeat: needs attention"), "{beat}");
    assert!(beat.contains("OVERDUE: no new backup in dumps/db/") && beat.contains("Fresh: dumps/wal/"), "{beat}");

    // The job runs again: a recovery note, and monitoring is content.
    w.s3.put("dumps", "db/2026-11-30.sql.gz", data(300, 4)).await;
    w.sync().await.success();
    let recovered: Vec<String> =
        w.admin_messages().into_iter().filter(|m| m.contains("new backups arrive again in dumps/db/")).collect();
    assert_eq!(recovered.len(), 1, "{:?}", w.admin_messages());
    assert!(recovered[0].contains("newest db/2026-11-30.sql.gz"), "{}", recovered[0]);
    let check = w.run(&["status", "--check"]).await;
    check.success();
    assert!(check.stdout.starts_with("OK:") && check.stdout.contains("every watch fresh"), "{}", check.stdout);
    w.sync().await.success();
    assert_eq!(w.admin_messages().iter().filter(|m| m.contains("arrive again")).count(), 1, "one recovery note");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_with_nothing_in_it_is_overdue_and_a_bad_period_is_refused() {
    let mut w = World::new().await.with_admin();
    w.config_file("[buckets.logs]\nexpect_every = \"1h\"\nexpect_grace = \"30m\"\n");
    w.s3.create_bucket("logs").await;
    w.sync().await.success();
    let check = w.run(&["status", "--check"]).await;
    check.code(1);
    assert!(check.stdout.contains("CRITICAL: no backup in logs/ at all; expected every 60 min"), "{}", check.stdout);

    // 80 minutes is within the hour and its grace of 30 minutes.
    w.s3.put("logs", "app.log.gz", data(10, 1)).await;
    age_object(&w, "logs", "app.log.gz", Duration::from_secs(80 * 60));
    w.sync().await.success();
    w.run(&["status", "--check"]).await.success();

    for (bad, why) in [
        ("[buckets.logs]\nexpect_every = \"soon\"\n", "expect_every"),
        ("[buckets.logs]\nexpect_every = \"0s\"\n", "a period of 0"),
        ("[buckets.logs]\nexpect_every = {}\n", "an empty table"),
        ("[buckets.logs]\nexpect_every = { \"db/\" = 5 }\n", "`db/`"),
    ] {
        w.config_file(bad);
        let out = w.run(&["status"]).await;
        out.code(2);
        let line = out.stderr.lines().find(|l| l.starts_with("tgploy:")).unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(line.contains(why) && line.contains("config.toml"), "{bad}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_each_watch_and_names_an_overdue_one() {
    let mut w = World::new().await;
    w.config_file("[buckets.backups]\nexpect_every = { \"db/\" = \"12h\", \"etc/\" = \"1h\" }\n");
    let mut d = Dash::start_in(w).await;
    // The ledger keeps each version's Last-Modified as it was listed: make etc/hosts old.
    let five_hours_ago = (tgploy::time::now() - 5 * 3600) * 1000;
    d.w.execute(&format!("UPDATE deliveries SET last_modified_ms = {five_hours_ago} WHERE key = 'etc/hosts'"));
    let mut c = d.signed_in().await;
    for page in ["/", "/buckets"] {
        let reply = c.get(page).await;
        reply.status(200).shows("Freshness").shows("backups/db/").shows("badge-fresh");
        reply.shows("badge-overdue").shows("no new backup in backups/etc/ for 5 h; expected every 60 min");
    }
}
