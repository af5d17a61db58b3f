//! Claims in the ledger, below the run lock: two deliverers working the same pending
//! deliveries at once (as `sync` and `serve-webhook` do) send each object once.

use std::collections::HashMap;
use std::time::Duration;

use tgploy::config::{Config, Overrides};
use tgploy::ledger::{Ledger, State};
use tgploy::shutdown::Shutdown;
use tgploy::source::S3Source;
use tgploy::sync::{Batch, DeliveryReport, find_new_versions};

use crate::harness::{PART_SIZE, World, data};

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

    let setup = Ledger::open(&w.ledger_path()).unwrap();
    let (_, new) = find_new_versions(&cfg, &setup, &source, "bkt", false).await.unwrap();
    setup.insert_versions(&new, State::Pending, 0).unwrap();
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
        async move {
            let ledger = Ledger::open(&path).unwrap();
            let mut report = DeliveryReport::default();
            let shutdown = Shutdown::default();
            let batch = Batch {
                cfg: &cfg,
                ledger: &ledger,
                source: &source,
                retrying: false,
                progress: false,
                shutdown: &shutdown,
            };
            batch.deliver(&ids, &mut report).await.unwrap();
            report
        }
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
    let ledger = Ledger::open(&w.ledger_path()).unwrap();
    let (_, new) = find_new_versions(&cfg, &ledger, &source, "bkt", false).await.unwrap();
    ledger.insert_versions(&new, State::Pending, 0).unwrap();

    // Between the listing and the delivery, one object is overwritten, one deleted.
    let newer = data(20, 3);
    w.s3.put("bkt", "over", newer.clone()).await;
    w.s3.client().delete_object().bucket("bkt").key("deleted").send().await.unwrap();

    let ids = ledger.claimable(&["bkt".to_string()], 0).unwrap();
    let mut report = DeliveryReport::default();
    let shutdown = Shutdown::default();
    let batch =
        Batch { cfg: &cfg, ledger: &ledger, source: &source, retrying: false, progress: false, shutdown: &shutdown };
    batch.deliver(&ids, &mut report).await.unwrap();
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
