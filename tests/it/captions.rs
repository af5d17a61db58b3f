//! Captions for keys no S3 test server can store (1024 bytes), sent through the real sink
//! to the fake Bot API, which rejects what Telegram would reject.

use tgploy::config::{ChatRef, Destination, Secret, TelegramSettings};
use tgploy::sink::caption::{CaptionInfo, document_caption, manifest_caption};
use tgploy::sink::{Addressee, TelegramSink};

use crate::support::telegram::{self, FakeTelegram};

#[tokio::test(flavor = "multi_thread")]
async fn captions_of_1024_byte_keys_are_accepted() {
    let tg = FakeTelegram::start().await;
    let backup = Destination { chat: ChatRef::Id(-1_004_200), topic: None };
    let sink = TelegramSink::new(&TelegramSettings {
        bots: vec![Secret::new(telegram::TOKEN)],
        backup: backup.clone(),
        admin: None,
        api_url: tg.url(),
        messages_per_minute: 0,
        max_flood_wait: std::time::Duration::from_secs(60),
    })
    .unwrap();
    let to = Addressee::new(&backup, "telegram.backup_chat_id", true);
    let keys = [
        "k".repeat(1024),
        "<&>".repeat(341) + "x",
        "😀".repeat(256),
        format!("{}/{}", "dir &amp; <b>".repeat(80), "name<>&.tar"),
    ];
    for key in &keys {
        assert!(key.len() >= 1000, "{}", key.len());
        let name = key.rsplit('/').next().unwrap();
        let sha = "0".repeat(64);
        for part in [None, Some((12, 999, 1 << 40, 19 << 20))] {
            let caption = document_caption(&CaptionInfo {
                bucket: "a-bucket-name-of-sixty-three-characters-which-is-the-s3-maximum",
                key,
                etag: "d41d8cd98f00b204e9800998ecf8427e-1000",
                size: 1 << 40,
                last_modified: Some("2026-11-27T21:49:19Z".into()),
                part,
                base_name: name,
                sha256: &sha,
                // The longest captions: an encrypted part says how to decrypt it too.
                decrypts_to: part.map(|_| name),
            });
            sink.send_bytes(&to, b"x".to_vec(), "x", &caption).await.unwrap_or_else(|e| panic!("{e}: {caption}"));
        }
        let caption = manifest_caption("bucket", key, 999, 1 << 40, &sha, name, Some(name));
        sink.send_bytes(&to, b"{}".to_vec(), "m.tgploy.json", &caption).await.unwrap();
    }
    let docs = tg.documents();
    assert_eq!(docs.len(), keys.len() * 3);
    // What Telegram shows still names the key's start and end.
    let shown = docs[0].rendered_caption.clone().unwrap();
    assert!(shown.contains("kkkk…kkkk"), "{shown}");
}
