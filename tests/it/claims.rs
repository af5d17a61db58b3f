//! Claims in the ledger, below the run lock: two deliverers working the same pending
//! deliveries at once (as `sync` and `serve-webhook` do) send each object once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tgploy::config::{Config, Overrides};
use tgploy::deliver::{DeliveryReport, Engine, EngineOptions};
use tgploy::filter::Filter;
use tgploy::ledger::{Ledger, State};
use tgploy::scan::scan_bucket;
use tgploy::shutdown::Shutdown;
use tgploy::source::S3Source;

use crate::harness::{PART_SIZE, World, data};

/// Records the bucket's objects as pending, as `sync` does before it delivers.
async fn record_pending(cfg: &Config, ledger: &Arc<Ledger>, source: &S3Source, bucket: &str) {
    let filter = Filter::new(cfg.filter_for(bucket)).unwrap();
    scan_bucket(ledger, source, bucket, &filter, Some(State::Pending)).await.unwrap();
}

/// Delivers `ids` with a fresh engine on its own connection to the ledger, as one run.
async fn deliver(cfg: &Config, ledger: Arc<Ledger>, source: &S3Source, ids: Vec<i64>) -> DeliveryReport {
    let options = EngineOptions { concurrency: 2, progress: false };
    let engine = Engine::new(cfg, ledger, source.clone(), Shutdown::new(), options).unwrap();
    let mut report = DeliveryReport::default();
    engine.deliver(ids, false, &mut report).await.unwrap();
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn two_deliverers_on_the_same_deliveries_send_each_once() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    for i in 0..10 {
        w.s3.put("bkt", &format!("o{i}"), data(PART_SIZE as usize + 7, i)).await;
    }
    w.tg.set_delay(Duration::from_millis(30));
    let env = w.env.clone();
    let cfg = Config::load_with(&Overrides::default(), &|k| env.get(k).cloned()).unwrap();
    let source = S3Source::new(&cfg.require_s3().unwrap());

    let setup = Arc::new(Ledger::open(&w.ledger_path()).unwrap());
    record_pending(&cfg, &setup, &source, "bkt").await;
    let ids = setup.claimable(&["bkt".to_string()], 0).unwrap();
    assert_eq!(ids.len(), 10);

    // Two connections, as two processes would have; both are handed every id.
    let run = |reverse: bool| {
        let cfg = cfg.clone();
        let source = source.clone();
        let path = w.ledger_path();
        let mut ids = ids.clone();
        if reverse {
            ids.reverse();
        }
        async move { deliver(&cfg, Arc::new(Ledger::open(&path).unwrap()), &source, ids).await }
    };
    let (a, b) = tokio::join!(run(false), run(true));
    assert_eq!(a.sent + b.sent, 10, "each delivery sent by exactly one of them");
    assert!(a.failed.is_empty() && b.failed.is_empty());

    let mut count: HashMap<String, usize> = HashMap::new();
    for d in w.tg.documents() {
        *count.entry(d.file_name).or_default() += 1;
    }
    assert_eq!(count.len(), 30);
    assert!(count.values().all(|&n| n == 1), "{count:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_gone_from_s3_before_delivery_is_skipped_and_the_new_one_is_sent() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "over", data(10, 1)).await;
    w.s3.put("bkt", "deleted", data(10, 2)).await;
    let env = w.env.clone();
    let cfg = Config::load_with(&Overrides::default(), &|k| env.get(k).cloned()).unwrap();
    let source = S3Source::new(&cfg.require_s3().unwrap());
    let ledger = Arc::new(Ledger::open(&w.ledger_path()).unwrap());
    record_pending(&cfg, &ledger, &source, "bkt").await;

    // Between the listing and the delivery, one object is overwritten, one deleted.
    let newer = data(20, 3);
    w.s3.put("bkt", "over", newer.clone()).await;
    w.s3.client().delete_object().bucket("bkt").key("deleted").send().await.unwrap();

    let ids = ledger.claimable(&["bkt".to_string()], 0).unwrap();
    let report = deliver(&cfg, ledger.clone(), &source, ids).await;
    assert_eq!((report.sent, report.vanished, report.failed.len()), (0, 2, 0));
    let rows = w.query(
        "SELECT key, state, last_error LIKE '%deleted%' OR last_error LIKE '%changed%' FROM deliveries ORDER BY key",
    );
    assert_eq!(rows, [["deleted", "skipped", "1"], ["over", "skipped", "1"]]);
    assert!(w.tg.documents().is_empty());

    w.sync().await.success();
    let docs = w.tg.documents();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].bytes(), newer);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_progress_counts_each_byte_once_resumed_parts_included() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let big = PART_SIZE as usize * 6 + 11;
    w.s3.put("bkt", "big.bin", data(big, 1)).await;
    // A run that dies after a few parts of the big object.
    w.tg.set_delay(Duration::from_millis(150));
    let mut child = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(3, Duration::from_secs(30)).await);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    w.tg.set_delay(Duration::ZERO);
    w.s3.put("bkt", "small.bin", data(1000, 2)).await;
    w.s3.put("bkt", "empty.bin", Vec::new()).await;

    let env = w.env.clone();
    let cfg = Config::load_with(&Overrides::default(), &|k| env.get(k).cloned()).unwrap();
    let source = S3Source::new(&cfg.require_s3().unwrap());
    let ledger = Arc::new(Ledger::open(&w.ledger_path()).unwrap());
    record_pending(&cfg, &ledger, &source, "bkt").await;
    let resumed: u64 = w.query("SELECT COUNT(*) FROM parts")[0][0].parse().unwrap();
    assert!(resumed >= 2, "the big object was part-way");
    let options = EngineOptions { concurrency: 2, progress: false };
    let engine = Engine::new(&cfg, ledger.clone(), source.clone(), Shutdown::new(), options).unwrap();
    engine.take_over_dead_runs().await.unwrap();
    let ids = ledger.claimable(&["bkt".to_string()], tgploy::time::now()).unwrap();
    assert_eq!(ids.len(), 3);
    let mut report = DeliveryReport::default();
    engine.deliver(ids, false, &mut report).await.unwrap();
    assert_eq!(report.sent, 3);
    // Parts sent by the dead run count once (when resumed), the rest as they go out.
    let sizes = big as u64 + 1000;
    assert_eq!(report.progress_bytes, (sizes, sizes));
}
