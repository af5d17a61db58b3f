//! Proves the test doubles behave like the real services before other tests rely on them.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, ChatId, ChatKind, ChatPublic, InputFile, Message, MessageEntityKind, MessageId, ParseMode,
    PublicChatKind, PublicChatSupergroup, ThreadId,
};
use teloxide::{ApiError, RequestError};

use crate::support::s3::S3Server;
use crate::support::telegram::{
    BOT_ID, BOT_ID_2, BOT_ID_3, BOT_USERNAME, BOT_USERNAME_2, BOT_USERNAME_3, FakeTelegram, Fault, TOKEN, TOKEN_2,
    TOKEN_3, render_html,
};

fn document_file(bytes: &[u8], name: &'static str) -> InputFile {
    InputFile::memory(bytes.to_vec()).file_name(name)
}

/// POSTs `body` as JSON to `method` of the bot with `token`: the HTTP status and the envelope.
async fn call(tg: &FakeTelegram, token: &str, method: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/bot{token}/{method}", tg.url()))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_else(|e| panic!("{method} answer: {e}")))
}

/// A sendDocument whose multipart body is exactly `total` bytes long (the file padded to
/// fit), as the status and the answer.
async fn raw_upload(tg: &FakeTelegram, total: usize) -> (u16, Value) {
    let boundary = "tgploy-selftest-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n1\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"document\"; filename=\"f.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let file = total.checked_sub(head.len() + tail.len()).expect("room for the file");
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b'x', file));
    body.extend(tail.into_bytes());
    assert_eq!(body.len(), total);
    let resp = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/sendDocument", tg.url()))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("an envelope"))
}

/// The description of an API error teloxide has no variant for.
fn unknown_api_error<T: std::fmt::Debug>(result: Result<T, RequestError>) -> String {
    match result {
        Err(RequestError::Api(ApiError::Unknown(description))) => description,
        other => panic!("expected an API error teloxide does not know, got {other:?}"),
    }
}

#[tokio::test]
async fn support_selftest_telegram_speaks_teloxide() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), "tgploy_test_bot");
    assert!(me.user.is_bot);

    let first = bot.send_message(ChatId(42), "  hello  ").await.expect("send text");
    assert_eq!(first.id.0, 1);
    assert_eq!(first.text(), Some("hello"));
    assert!(first.chat.is_private());

    let caption = "<b>bucket</b>/key &lt;1&gt; &amp; <a href=\"https://example.com/x\">link</a> ✓";
    let doc = bot
        .send_document(ChatId(42), document_file(b"abc", "backup.tar.zst"))
        .caption(caption)
        .parse_mode(ParseMode::Html)
        .await
        .expect("send document");
    assert_eq!(doc.id.0, 2, "message ids increase per chat");
    let document = doc.document().expect("message carries the document");
    assert_eq!(document.file_name.as_deref(), Some("backup.tar.zst"));
    assert_eq!(document.file.size, 3);
    assert_eq!(doc.caption(), Some("bucket/key <1> & link ✓"));
    let kinds: Vec<_> = doc.caption_entities().expect("entities").iter().map(|e| e.kind.clone()).collect();
    assert!(matches!(kinds[0], MessageEntityKind::Bold));
    assert!(matches!(kinds[1], MessageEntityKind::TextLink { .. }));

    // Supergroup and channel chats get their own numbering and their own chat shape.
    let group = bot
        .send_document(ChatId(-1_001_234_567_890), document_file(b"xyz", "b.bin"))
        .await
        .expect("send to supergroup");
    assert_eq!(group.id.0, 1);
    assert!(group.chat.is_supergroup());
    let channel = bot
        .send_message(teloxide::types::Recipient::ChannelUsername("@tgploy_chan".into()), "hi")
        .await
        .expect("send to channel");
    assert!(channel.chat.is_channel());

    let docs = tg.documents();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].bytes(), b"abc");
    assert_eq!(docs[0].caption.as_deref(), Some(caption));
    assert_eq!(docs[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(docs[0].chat_id, "42");
    assert_eq!(docs[1].chat_id, "-1001234567890");
    assert_eq!(tg.messages().len(), 4);
    assert_eq!(tg.calls("sendDocument"), 2);
    assert_eq!(tg.calls("SENDMESSAGE"), 2);

    // getFile, then the download at the documented URL: the path's slashes as slashes.
    let file = bot.get_file(document.file.id.clone()).await.expect("getFile");
    assert_eq!(file.size, 3);
    assert!(file.path.contains('/'), "{}", file.path);
    let http = reqwest::Client::new();
    let documented = http.get(format!("{}/file/bot{TOKEN}/{}", tg.url(), file.path)).send().await.expect("download");
    assert_eq!(documented.status().as_u16(), 200);
    assert_eq!(documented.bytes().await.expect("body").as_ref(), b"abc");
    // teloxide's own download sends the path as one %2F-encoded segment, which a server
    // or proxy that does not decode %2F answers with 404: so does the fake.
    let encoded = file.path.replace('/', "%2F");
    let refused = http.get(format!("{}/file/bot{TOKEN}/{encoded}", tg.url())).send().await.expect("download");
    assert_eq!(refused.status().as_u16(), 404);
    let mut downloaded = Vec::new();
    assert!(bot.download_file(&file.path, &mut downloaded).await.is_err());
    tg.set_download_limit(2);
    let err = bot.get_file(document.file.id.clone()).await.unwrap_err();
    assert!(err.to_string().contains("file is too big"), "{err}");

    // Resending by file_id is accepted like on the real API.
    let again =
        bot.send_document(ChatId(7), InputFile::file_id(document.file.id.clone())).await.expect("resend by file_id");
    assert_eq!(again.document().expect("doc").file.id, document.file.id);
}

/// The raw answers, checked against teloxide's `Message` type (not only via a teloxide call).
#[tokio::test]
async fn support_selftest_telegram_raw_answers_deserialize() {
    let tg = FakeTelegram::start().await;
    let http = reqwest::Client::new();
    let base = format!("{}/bot{TOKEN}", tg.url());

    let text: serde_json::Value = http
        .post(format!("{base}/sendMessage"))
        .json(&serde_json::json!({"chat_id": 5, "text": "<i>x</i>", "parse_mode": "HTML"}))
        .send()
        .await
        .expect("sendMessage")
        .json()
        .await
        .expect("json");
    assert_eq!(text["ok"], true);
    let msg: Message = serde_json::from_value(text["result"].clone()).expect("Message");
    assert_eq!(msg.text(), Some("x"));

    // A plain multipart upload with the file directly in the `document` field.
    let form = reqwest::multipart::Form::new()
        .text("chat_id", "-1001")
        .text("caption", "plain <not html>")
        .part("document", reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("raw.bin"));
    let doc: serde_json::Value = http
        .post(format!("{base}/senddocument"))
        .multipart(form)
        .send()
        .await
        .expect("sendDocument")
        .json()
        .await
        .expect("json");
    let msg: Message = serde_json::from_value(doc["result"].clone()).expect("Message");
    assert_eq!(msg.caption(), Some("plain <not html>"));
    assert_eq!(msg.document().expect("document").file.size, 10);
    assert_eq!(doc["result"]["document"]["mime_type"], "application/octet-stream");

    // Faults: 5xx carries the envelope, Drop closes without an answer, Hang never answers.
    tg.inject("sendMessage", Fault::ServerError(502), 1);
    let resp = http
        .post(format!("{base}/sendMessage"))
        .json(&serde_json::json!({"chat_id": 5, "text": "x"}))
        .send()
        .await
        .expect("502 answer");
    assert_eq!(resp.status().as_u16(), 502);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}));

    tg.inject("sendmessage", Fault::Drop, 1);
    tg.inject("sendmessage", Fault::Hang, 1);
    let err = http
        .post(format!("{base}/sendMessage"))
        .json(&serde_json::json!({"chat_id": 5, "text": "x"}))
        .send()
        .await
        .expect_err("dropped connection");
    assert!(!err.is_timeout(), "{err:?}");
    let started = Instant::now();
    let err = http
        .post(format!("{base}/sendMessage"))
        .timeout(Duration::from_millis(300))
        .json(&serde_json::json!({"chat_id": 5, "text": "x"}))
        .send()
        .await
        .expect_err("hung request");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(tg.calls("sendMessage"), 4);
    assert_eq!(tg.messages().len(), 2, "faulted calls accept nothing");

    let unknown = http.post(format!("{base}/sendPhoto")).send().await.expect("404");
    assert_eq!(unknown.status().as_u16(), 404);
    assert!(tg.wait_for_calls("sendphoto", 1, Duration::from_secs(1)).await);
    assert!(tg.wait_for_documents(1, Duration::from_secs(1)).await);
    assert!(!tg.wait_for_documents(2, Duration::from_millis(50)).await);
}

#[tokio::test]
async fn support_selftest_telegram_errors_map_like_the_real_api() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();
    let api = |r: Result<Message, RequestError>| match r {
        Err(RequestError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    };

    // The limit is on the whole request body, like nginx's `client_max_body_size` in front
    // of the cloud Bot API: a body of exactly the limit is taken, one byte more is not.
    tg.set_upload_limit(1000);
    let (status, body) = raw_upload(&tg, 1000).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw_upload(&tg, 1001).await;
    assert_eq!(status, 413);
    assert_eq!(body, json!({"ok": false, "error_code": 413, "description": "Request Entity Too Large"}));
    let e = api(bot.send_document(ChatId(1), document_file(&[0; 1000], "big.bin")).await);
    assert_eq!(e, ApiError::RequestEntityTooLarge, "a 1000-byte file does not fit in a 1000-byte body");
    tg.set_upload_limit(crate::support::telegram::DEFAULT_UPLOAD_LIMIT);

    let e = api(bot.send_document(ChatId(1), document_file(b"", "empty.bin")).await);
    assert_eq!(e, ApiError::Unknown("Bad Request: file must be non-empty".into()));

    for (caption, reason) in [
        ("<b>x", "Can't find end tag corresponding to start tag \"b\""),
        ("a <x>b</x>", "Unsupported start tag \"x\" at byte offset 2"),
        ("<b><i>x</b></i>", "Unmatched end tag at byte offset 7"),
        ("a & b", "Unescaped \"&\" at byte offset 2"),
        ("1 < 2", "Unsupported start tag \"\" at byte offset 2"),
    ] {
        let e = api(bot
            .send_document(ChatId(1), document_file(b"x", "x.bin"))
            .caption(caption)
            .parse_mode(ParseMode::Html)
            .await);
        match e {
            ApiError::CantParseEntities(msg) => {
                assert!(msg.starts_with(&format!("Bad Request: can't parse entities: {reason}")), "{caption:?}: {msg}");
            }
            other => panic!("{caption:?}: {other:?}"),
        }
    }

    // The caption limit counts UTF-16 code units after parsing: 512 emoji are 1024 units.
    let emoji = "😀".repeat(512);
    let ok = bot
        .send_document(ChatId(1), document_file(b"x", "x.bin"))
        .caption(format!("<b>{emoji}</b>"))
        .parse_mode(ParseMode::Html)
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let e = api(bot.send_document(ChatId(1), document_file(b"x", "x.bin")).caption(format!("{emoji}a")).await);
    assert_eq!(e, ApiError::Unknown("Bad Request: message caption is too long".into()));

    assert_eq!(api(bot.send_message(ChatId(1), " \n ").await), ApiError::MessageTextIsEmpty);
    assert_eq!(api(bot.send_message(ChatId(1), "x".repeat(4097)).await), ApiError::MessageIsTooLong);
    tg.forbid_chat("-100999");
    assert_eq!(api(bot.send_message(ChatId(-100_999), "x").await), ApiError::ChatNotFound);

    tg.inject("SendMessage", Fault::RetryAfter(7), 1);
    match bot.send_message(ChatId(1), "x").await {
        Err(RequestError::RetryAfter(secs)) => assert_eq!(secs.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    assert!(bot.send_message(ChatId(1), "x").await.is_ok());

    let wrong = Bot::new("123456789:wrong").set_api_url(tg.url().parse().expect("url"));
    match wrong.get_me().await {
        Err(RequestError::Api(ApiError::InvalidToken)) => {}
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

#[test]
fn support_selftest_telegram_html_rules() {
    assert_eq!(
        render_html("<b>a</b> <strong>b</strong> <i>c</i> <em>d</em> <u>e</u> <ins>f</ins> <s>g</s> <strike>h</strike> <del>i</del>").as_deref(),
        Ok("a b c d e f g h i")
    );
    assert_eq!(
        render_html("<tg-spoiler>s</tg-spoiler><span class=\"tg-spoiler\">t</span><code>c</code><pre><code class=\"language-rust\">p</code></pre>").as_deref(),
        Ok("stcp")
    );
    assert_eq!(
        render_html("<blockquote expandable>q</blockquote><tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>")
            .as_deref(),
        Ok("q👍")
    );
    assert_eq!(render_html("&lt;&gt;&amp;&quot;&#39;&#x41;").as_deref(), Ok("<>&\"'A"));
    assert_eq!(render_html("a > b").as_deref(), Ok("a > b"));
    assert!(render_html("<span>x</span>").is_err());
    assert!(render_html("<a href=x>y</a>").is_ok());
    assert!(render_html("</b>").is_err());
    assert!(render_html("<b>x</b").is_err());
    assert!(render_html("&nbsp;").is_err());
    assert!(render_html("<a href=\"a&b\">x</a>").is_err());
    assert!(render_html("<p>x</p>").is_err());
}

async fn list_all(s3: &S3Server, bucket: &str, max_keys: i32) -> Vec<aws_sdk_s3::types::Object> {
    let client = s3.client();
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(max_keys)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        objects.extend(page.contents().iter().cloned());
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    objects
}

#[tokio::test]
async fn support_selftest_s3_plain_listing_and_ranged_get() {
    let s3 = S3Server::start().await;
    s3.create_bucket("data").await;
    let etag = s3.put("data", "dir/a.txt", b"0123456789".to_vec()).await;
    assert_eq!(etag, "781e5e245d69b566979b86e28d23f2c7");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("b.bin");
    std::fs::write(&path, vec![7u8; 1000]).expect("write");
    let file_etag = s3.put_file("data", "b.bin", &path).await;
    assert_eq!(file_etag.len(), 32);

    let objects = list_all(&s3, "data", 1000).await;
    let keys: Vec<_> = objects.iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b.bin", "dir/a.txt"]);
    assert!(objects.iter().all(|o| o.e_tag().is_none()), "s3s-fs lists no ETag");
    assert_eq!(objects[1].size(), Some(10));
    assert_eq!(s3.list_count(), 1);

    let client = s3.client();
    let head = client.head_object().bucket("data").key("dir/a.txt").send().await.expect("head");
    assert_eq!(head.e_tag(), Some("\"781e5e245d69b566979b86e28d23f2c7\""));
    assert_eq!(s3.head_count(), 1);

    let ranged =
        client.get_object().bucket("data").key("dir/a.txt").range("bytes=2-5").send().await.expect("ranged get");
    let body = ranged.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"2345");
    assert_eq!(s3.get_requests(), [("data".to_owned(), "dir/a.txt".to_owned(), Some("bytes=2-5".to_owned()))]);

    s3.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast_fail = aws_sdk_s3::Client::from_conf(
        client.config().to_builder().retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()).build(),
    );
    let err = fast_fail.list_buckets().send().await;
    assert!(err.is_err(), "stopped server still answers");
}

#[tokio::test]
async fn support_selftest_s3_listed_etags_and_pagination() {
    let s3 = S3Server::start_with_listed_etags().await;
    s3.create_bucket("many").await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let key = format!("k{i:03}");
        let etag = s3.put("many", &key, format!("body {i}").into_bytes()).await;
        expected.push((key, format!("\"{etag}\"")));
    }
    let objects = list_all(&s3, "many", 10).await;
    let listed: Vec<_> = objects
        .iter()
        .map(|o| (o.key().expect("key").to_owned(), o.e_tag().expect("listed ETag").to_owned()))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(s3.list_count(), 3);
    assert_eq!(s3.head_count(), 0, "ETag filling is not a client HeadObject");
}

/// Throughput check for big uploads and multipart puts; run with `--ignored --nocapture`.
#[tokio::test]
#[ignore = "slow: moves a few hundred MiB"]
async fn support_selftest_big_transfers() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();
    let part = vec![0xA5u8; 19 * 1024 * 1024];
    let started = Instant::now();
    for i in 0..10 {
        bot.send_document(ChatId(1), InputFile::memory(part.clone()).file_name(format!("p{i}")))
            .await
            .expect("upload part");
    }
    let elapsed = started.elapsed();
    println!("10 x 19 MiB via teloxide: {elapsed:?}");
    assert_eq!(tg.documents()[9].size, part.len() as u64);

    let started = Instant::now();
    let e = bot.send_document(ChatId(1), InputFile::memory(vec![0u8; 60_000_000]).file_name("big")).await.unwrap_err();
    println!("60 MB rejected with {e:?} in {:?}", started.elapsed());

    let s3 = S3Server::start().await;
    s3.create_bucket("big").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    std::fs::write(&path, vec![3u8; 70 * 1024 * 1024]).expect("write");
    let started = Instant::now();
    let etag = s3.put_file("big", "big.bin", &path).await;
    println!("70 MiB multipart put: {etag} in {:?}", started.elapsed());
    assert!(etag.ends_with("-2"), "{etag}");
}

/// Flood control: a sliding window per (bot, chat), refusals with the real 429 envelope, nothing
/// stored for a refused message.
#[tokio::test]
async fn support_selftest_telegram_flood_control() {
    let tg = FakeTelegram::start_with_bots(&[(TOKEN_2, BOT_USERNAME_2)]).await;
    let text = |chat: i64| json!({"chat_id": chat, "text": "x"});
    // Off by default: any number of messages goes through.
    for _ in 0..5 {
        assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 200);
    }

    tg.set_flood_limit(2, Duration::from_secs(3));
    let first = Instant::now();
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 200, "earlier messages do not count");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 200);
    let (status, body) = call(&tg, TOKEN, "sendMessage", text(1)).await;
    assert_eq!(status, 429, "{body}");
    let secs = body["parameters"]["retry_after"].as_u64().expect("retry_after");
    // The first message leaves the window 3 s after it was sent, at least 1.5 s from now.
    let left = Duration::from_secs(3).saturating_sub(first.elapsed());
    assert!((1..=2).contains(&secs) && Duration::from_secs(secs) >= left, "{secs} s, {left:?} left");
    assert_eq!(
        body,
        json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": {"retry_after": secs},
        })
    );
    // Documents count against the same window, and a refused one is not stored.
    match tg.bot().send_document(ChatId(1), document_file(b"doc", "d.bin")).await {
        Err(RequestError::RetryAfter(after)) => assert_eq!(u64::from(after.seconds()), secs),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    assert!(tg.documents().is_empty());
    // Other chats, and other bots in the same chat, have windows of their own.
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(2)).await.0, 200);
    assert_eq!(call(&tg, TOKEN_2, "sendMessage", text(1)).await.0, 200);
    assert_eq!(call(&tg, TOKEN_2, "sendMessage", text(1)).await.0, 200);
    assert_eq!((tg.flood_refusals(), tg.flood_refusals_for(TOKEN), tg.flood_refusals_for(TOKEN_2)), (2, 2, 0));

    // After retry_after the first message has left the window, the second has not: one more
    // message fits, the next is refused again (a window that restarted would take two).
    tokio::time::sleep(Duration::from_secs(secs)).await;
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 200);
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 429);
    assert_eq!(tg.flood_refusals_for(TOKEN), 3);

    tg.clear_flood_limit();
    assert_eq!(call(&tg, TOKEN, "sendMessage", text(1)).await.0, 200);
    assert_eq!(tg.flood_refusals(), 3);
    assert_eq!(tg.messages().len(), 5 + 2 + 1 + 2 + 1 + 1, "refused messages are not stored");
}

/// A lost answer: the message is sent and stored, the client gets no answer, and sending it
/// again stores a second copy. `Fault::Drop` still sends nothing.
#[tokio::test]
async fn support_selftest_telegram_lost_answer() {
    let tg = FakeTelegram::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/bot{TOKEN}/sendDocument", tg.url());
    let form = || {
        reqwest::multipart::Form::new()
            .text("chat_id", "42")
            .part("document", reqwest::multipart::Part::bytes(b"sent twice".to_vec()).file_name("twice.bin"))
    };

    tg.inject("sendDocument", Fault::Drop, 1);
    let err = http.post(&url).multipart(form()).send().await.expect_err("dropped connection");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(tg.documents().is_empty(), "a dropped request sends nothing");
    assert_eq!(tg.lost_answers(), 0);

    tg.inject("sendDocument", Fault::LoseAnswer, 1);
    let err = http.post(&url).multipart(form()).send().await.expect_err("lost answer");
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    assert_eq!(tg.lost_answers(), 1);
    let docs = tg.documents();
    assert_eq!(docs.len(), 1, "the document went out although no answer came");
    assert_eq!(docs[0].bytes(), b"sent twice");
    assert_eq!(tg.calls("sendDocument"), 2);

    // The client cannot tell, retries, and Telegram keeps both.
    let resp = http.post(&url).multipart(form()).send().await.expect("answered retry");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["result"]["message_id"], 2);
    let docs = tg.documents();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].bytes(), b"sent twice");
    assert_ne!(docs[0].file_id, docs[1].file_id);

    tg.inject("sendMessage", Fault::LoseAnswer, 1);
    match tg.bot().send_message(ChatId(42), "answer lost").await {
        Err(RequestError::Network(_)) => {}
        other => panic!("expected a network error, got {other:?}"),
    }
    assert_eq!(tg.messages().last().and_then(|m| m.text.clone()).as_deref(), Some("answer lost"));
    assert_eq!(tg.lost_answers(), 2);
}

/// Several bots: each known token answers as its own bot, files belong to the bot that received
/// them, and one bot can be kept out of a chat the others may use.
#[tokio::test]
async fn support_selftest_telegram_several_bots() {
    let tg = FakeTelegram::start_with_bots(&[(TOKEN_2, BOT_USERNAME_2)]).await;
    let (one, two, three) = (tg.bot(), tg.bot_for(TOKEN_2), tg.bot_for(TOKEN_3));
    match three.get_me().await {
        Err(RequestError::Api(ApiError::InvalidToken)) => {}
        other => panic!("a token not added yet must be refused, got {other:?}"),
    }
    tg.add_bot(TOKEN_3, BOT_USERNAME_3);
    for (bot, id, username) in
        [(&one, BOT_ID, BOT_USERNAME), (&two, BOT_ID_2, BOT_USERNAME_2), (&three, BOT_ID_3, BOT_USERNAME_3)]
    {
        let me = bot.get_me().await.expect("getMe");
        assert_eq!((me.user.id.0, me.username()), (id as u64, username));
    }

    // The same bytes from two bots: two files, each with an id of its own bot.
    let a = one.send_document(ChatId(42), document_file(b"same", "a.bin")).await.expect("bot 1 sends");
    let b = two.send_document(ChatId(42), document_file(b"same", "b.bin")).await.expect("bot 2 sends");
    assert_eq!((a.id.0, b.id.0), (1, 1), "each bot has its own private chat with the user");
    assert_eq!(b.from.as_ref().map(|u| u.id.0), Some(BOT_ID_2 as u64));
    let (file_a, file_b) = (a.document().expect("doc").file.id.clone(), b.document().expect("doc").file.id.clone());
    assert_ne!(file_a, file_b);
    let owners: Vec<_> = tg.documents().iter().map(|d| (d.bot_id, d.file_id.clone())).collect();
    assert_eq!(owners, [(BOT_ID, file_a.0.clone()), (BOT_ID_2, file_b.0.clone())]);

    // A supergroup is one chat for all bots: one numbering.
    let group = ChatId(-1_001_000_000_001);
    assert_eq!(one.send_message(group, "one").await.expect("bot 1").id.0, 1);
    assert_eq!(two.send_message(group, "two").await.expect("bot 2").id.0, 2);
    let senders: Vec<_> = tg.messages().iter().map(|m| m.bot_id).collect();
    assert_eq!(senders, [BOT_ID, BOT_ID_2, BOT_ID, BOT_ID_2]);

    // Another bot's file id: getFile refuses it, resending refuses it, its path is not found.
    assert_eq!(
        unknown_api_error(one.get_file(file_b.clone()).await),
        "Bad Request: wrong file_id or the file is temporarily unavailable"
    );
    match one.send_document(ChatId(7), InputFile::file_id(file_b.clone())).await {
        Err(RequestError::Api(ApiError::WrongFileIdOrUrl)) => {}
        other => panic!("expected WrongFileIdOrUrl, got {other:?}"),
    }
    let path = two.get_file(file_b.clone()).await.expect("own file").path;
    let http = reqwest::Client::new();
    let download = |token: &str| http.get(format!("{}/file/bot{token}/{path}", tg.url())).send();
    let own = download(TOKEN_2).await.expect("download");
    assert_eq!(own.status().as_u16(), 200);
    assert_eq!(own.bytes().await.expect("body").as_ref(), b"same");
    assert_eq!(download(TOKEN).await.expect("download").status().as_u16(), 404);
    assert_eq!(download(TOKEN_3).await.expect("download").status().as_u16(), 404);
    assert_eq!(download("423456789:unknown").await.expect("download").status().as_u16(), 401);

    // One bot outside a chat, the others still in it.
    tg.forbid_chat_for_bot(TOKEN_2, "-1001000000001");
    let (status, body) = call(&tg, TOKEN_2, "sendMessage", json!({"chat_id": group.0, "text": "x"})).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"ok": false, "error_code": 403, "description": "Forbidden: bot is not a member of the supergroup chat"})
        )
    );
    assert!(one.send_message(group, "still in").await.is_ok());
    assert!(three.send_message(group, "also in").await.is_ok());
    tg.forbid_chat_for_bot(TOKEN_2, "@tgploy_chan");
    let channel = teloxide::types::Recipient::ChannelUsername("@TGPLOY_chan".into());
    assert_eq!(
        unknown_api_error(two.send_chat_action(channel.clone(), ChatAction::UploadDocument).await),
        "Forbidden: bot is not a member of the channel chat"
    );
    assert!(one.send_message(channel, "channel").await.is_ok());
    tg.forbid_chat_for_bot(TOKEN_3, "42");
    match three.send_message(ChatId(42), "x").await {
        Err(RequestError::Api(ApiError::ChatNotFound)) => {}
        other => panic!("expected ChatNotFound, got {other:?}"),
    }
    assert!(one.send_message(ChatId(42), "x").await.is_ok());
    // forbid_chat keeps every bot out.
    tg.forbid_chat("-1001000000002");
    for bot in [&one, &two, &three] {
        match bot.send_message(ChatId(-1_001_000_000_002), "x").await {
            Err(RequestError::Api(ApiError::ChatNotFound)) => {}
            other => panic!("expected ChatNotFound, got {other:?}"),
        }
    }
}

/// Forum topics: messages, documents and chat actions go to a topic the forum has, and are
/// refused for any other topic or outside a forum.
#[tokio::test]
async fn support_selftest_telegram_forum_topics() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();
    let forum = ChatId(-1_001_000_000_010);
    let plain = ChatId(-1_001_000_000_011);
    tg.set_forum("-1001000000010", &[5, 7]);
    let topic = |id: i32| ThreadId(MessageId(id));

    let text = bot.send_message(forum, "in topic 5").message_thread_id(topic(5)).await.expect("topic 5");
    assert_eq!(text.thread_id, Some(topic(5)));
    assert!(text.is_topic_message);
    assert!(matches!(
        text.chat.kind,
        ChatKind::Public(ChatPublic {
            kind: PublicChatKind::Supergroup(PublicChatSupergroup { is_forum: true, .. }),
            ..
        })
    ));
    let created = text.reply_to_message().and_then(Message::forum_topic_created).expect("topic creation");
    assert_eq!(created.name, "Topic 5");
    let doc = bot
        .send_document(forum, document_file(b"t", "t.bin"))
        .message_thread_id(topic(7))
        .await
        .expect("document to topic 7");
    assert_eq!(doc.thread_id, Some(topic(7)));
    let general = bot.send_message(forum, "general").await.expect("general topic");
    assert_eq!(general.thread_id, None);
    assert!(!general.is_topic_message);

    // A topic the forum lacks, the General topic by id, or a topic in a private chat
    // (`check_message_topic` asks `getForumTopic` there too): refused, nothing stored.
    for (chat, thread) in [(forum, 9), (forum, 1), (ChatId(42), 5)] {
        let e = unknown_api_error(bot.send_message(chat, "x").message_thread_id(topic(thread)).await);
        assert_eq!(e, "Bad Request: message thread not found", "{chat} {thread}");
        let e = unknown_api_error(
            bot.send_document(chat, document_file(b"x", "x.bin")).message_thread_id(topic(thread)).await,
        );
        assert_eq!(e, "Bad Request: message thread not found", "{chat} {thread}");
    }
    let threads: Vec<_> = tg.messages().iter().map(|m| m.thread_id).collect();
    assert_eq!(threads, [Some(5), Some(7), None], "refused messages are not stored");
    let docs = tg.documents();
    assert_eq!((docs.len(), docs[0].thread_id), (1, Some(7)));

    // Since Bot API 9.3, a chat that is no forum (a plain supergroup, a basic group, a
    // channel) takes any topic and drops it: the message lands in the main chat, and the
    // answer says so (no message_thread_id, not a topic message).
    for chat in [plain, ChatId(-4242)] {
        let m = bot.send_message(chat, "dropped").message_thread_id(topic(5)).await.expect("sent to the main chat");
        assert_eq!((m.chat.id, m.thread_id, m.is_topic_message), (chat, None, false), "{chat}");
        let d = bot
            .send_document(chat, document_file(b"d", "d.bin"))
            .message_thread_id(topic(5))
            .await
            .expect("document to the main chat");
        assert_eq!((d.thread_id, d.is_topic_message), (None, false), "{chat}");
    }
    let landed: Vec<_> = tg.messages().iter().skip(3).map(|m| (m.chat_id.clone(), m.thread_id)).collect();
    let main = |c: &str| (c.to_string(), None);
    assert_eq!(landed, [main("-1001000000011"), main("-1001000000011"), main("-4242"), main("-4242")]);

    // sendChatAction checks the chat, never the topic (`process_send_chat_action_query`).
    for (chat, thread) in [(forum, 5), (forum, 1), (forum, 9), (plain, 5)] {
        let ok = bot.send_chat_action(chat, ChatAction::UploadDocument).message_thread_id(topic(thread)).await;
        assert!(ok.is_ok(), "{chat} {thread}: {ok:?}");
    }

    // getChat says which chats are forums.
    for (chat, forum_flag) in [("-1001000000010", Some(true)), ("-1001000000011", None), ("-4242", None)] {
        let (status, body) = call(&tg, TOKEN, "getChat", json!({"chat_id": chat})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["is_forum"].as_bool(), forum_flag, "{chat}: {body}");
    }

    // The raw answer, as the real API writes it.
    let (status, body) =
        call(&tg, TOKEN, "sendMessage", json!({"chat_id": forum.0, "text": "raw", "message_thread_id": 7})).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!((&result["message_thread_id"], &result["is_topic_message"]), (&json!(7), &json!(true)));
    assert_eq!(result["chat"]["is_forum"], true);
    assert_eq!(result["reply_to_message"]["message_id"], 7);
    let msg: Message = serde_json::from_value(result.clone()).expect("Message");
    assert_eq!(msg.thread_id, Some(topic(7)));
}

/// A download link lives from its `getFile` for the link's lifetime; then the same path is
/// not found until `getFile` is asked again.
#[tokio::test]
async fn support_selftest_telegram_links_expire_after_their_lifetime() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();
    let sent = bot.send_document(ChatId(1), document_file(b"bytes", "f.bin")).await.expect("send");
    let file_id = sent.document().expect("doc").file.id.clone();
    let (status, body) = call(&tg, TOKEN, "getFile", json!({"file_id": file_id.0})).await;
    assert_eq!(status, 200, "{body}");
    let url = format!("{}/file/bot{TOKEN}/{}", tg.url(), body["result"]["file_path"].as_str().expect("path"));
    let get = |url: String| async move { reqwest::get(&url).await.expect("download").status().as_u16() };
    assert_eq!(get(url.clone()).await, 200);

    tg.set_link_lifetime(Duration::from_millis(300));
    call(&tg, TOKEN, "getFile", json!({"file_id": file_id.0})).await;
    assert_eq!(get(url.clone()).await, 200, "within its lifetime");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(url.clone()).await, 404, "expired");
    call(&tg, TOKEN, "getFile", json!({"file_id": file_id.0})).await;
    assert_eq!(get(url.clone()).await, 200, "a new getFile serves it again");
}

/// deleteMessage (`process_delete_message_query`): a bot deletes its own messages; another
/// bot's, or one that does not exist, are refused as the server refuses them.
#[tokio::test]
async fn support_selftest_telegram_delete_message() {
    let tg = FakeTelegram::start_with_bots(&[(TOKEN_2, BOT_USERNAME_2)]).await;
    let group = "-1001000000077";
    let mine = bot_send(&tg, TOKEN, group).await;
    let theirs = bot_send(&tg, TOKEN_2, group).await;
    let delete = |token: &'static str, id: i64| {
        let tg = &tg;
        async move { call(tg, token, "deleteMessage", json!({"chat_id": group, "message_id": id})).await }
    };
    let (status, body) = delete(TOKEN, theirs).await;
    assert_eq!((status, body["description"].as_str()), (400, Some("Bad Request: message can't be deleted")));
    let (status, body) = delete(TOKEN, mine).await;
    assert_eq!((status, &body["result"]), (200, &json!(true)), "{body}");
    let (status, body) = delete(TOKEN, mine).await;
    assert_eq!((status, body["description"].as_str()), (400, Some("Bad Request: message to delete not found")));
    assert_eq!(tg.deleted(), [(BOT_ID, group.to_string(), mine)]);
    let left: Vec<i64> = tg.messages().iter().map(|m| m.message_id).collect();
    assert_eq!(left, [theirs], "a deleted message is gone from the chat");
}

async fn bot_send(tg: &FakeTelegram, token: &str, chat: &str) -> i64 {
    let (status, body) = call(tg, token, "sendMessage", json!({"chat_id": chat, "text": "x"})).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["message_id"].as_i64().expect("message id")
}

/// A throttled download takes as long as its size at the rate.
#[tokio::test]
async fn support_selftest_telegram_download_rate() {
    let tg = FakeTelegram::start().await;
    let bot = tg.bot();
    let bytes = vec![0x5Au8; 1 << 20];
    let sent = bot.send_document(ChatId(1), InputFile::memory(bytes.clone()).file_name("mib.bin")).await.expect("send");
    let path = bot.get_file(sent.document().expect("doc").file.id.clone()).await.expect("getFile").path;
    let url = format!("{}/file/bot{TOKEN}/{path}", tg.url());

    tg.set_download_rate(Some(4 << 20));
    let started = Instant::now();
    let body = reqwest::get(&url).await.expect("download").bytes().await.expect("body");
    let elapsed = started.elapsed();
    assert!(body == bytes, "the body arrives whole");
    // 1 MiB at 4 MiB/s takes 250 ms; only a lower bound holds on a busy machine.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
}
