//! S3 event notifications as RustFS, MinIO and AWS send them.
//!
//! RustFS/MinIO: `{"EventName", "Key", "Records": [...]}`; AWS: `{"Records": [...]}`. In
//! each record, `s3.object.key` is form-URL-encoded (`+` for space, `%2F` for `/`) and
//! `eTag` may come without quotes. Event bodies carry the uploader's request headers
//! (`requestParameters`, a SigV4 `authorization` among them): only the fields below are
//! read, and a body is never logged or stored.

use serde::Deserialize;

use crate::source::trim_etag;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "Records")]
    records: Option<Vec<Record>>,
    /// AWS sends `s3:TestEvent` when a notification is configured.
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: Option<BucketEntity>,
    object: Option<ObjectEntity>,
}

#[derive(Debug, Deserialize)]
struct BucketEntity {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ObjectEntity {
    key: Option<String>,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
}

/// One record of an event notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `s3:ObjectCreated:Put`, … (the `s3:` prefix added where AWS leaves it out).
    pub(crate) name: String,
    pub(crate) bucket: String,
    /// Decoded.
    pub(crate) key: String,
    pub(crate) size: Option<u64>,
    pub(crate) etag: Option<String>,
    pub(crate) time_ms: Option<i64>,
}

impl Event {
    /// Only new objects are delivered; deletions and the rest are accepted and ignored.
    pub(crate) fn is_object_created(&self) -> bool {
        self.name.starts_with("s3:ObjectCreated:")
    }
}

/// Parses a notification body; the error is a short reason for a 400 answer.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let Some(records) = envelope.records else {
        if envelope.event.as_deref() == Some("s3:TestEvent") {
            return Ok(Vec::new());
        }
        return Err("no Records in the body".into());
    };
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let s3 = r.s3.ok_or_else(|| format!("record {i} has no s3 entity"))?;
            let bucket = s3
                .bucket
                .and_then(|b| b.name)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| format!("record {i} has no bucket name"))?;
            let object = s3.object.ok_or_else(|| format!("record {i} has no object"))?;
            let raw_key =
                object.key.filter(|k| !k.is_empty()).ok_or_else(|| format!("record {i} has no object key"))?;
            let key = crate::source::decode_key(&raw_key)
                .ok_or_else(|| format!("record {i}: object key is not valid UTF-8 once decoded"))?;
            let name = r.event_name.unwrap_or_default();
            let name = if name.starts_with("s3:") || name.is_empty() { name } else { format!("s3:{name}") };
            Ok(Event {
                name,
                bucket,
                key,
                size: object.size,
                etag: object.etag.map(|e| trim_etag(&e)).filter(|e| !e.is_empty()),
                time_ms: r
                    .event_time
                    .and_then(|t| humantime::parse_rfc3339_weak(&t).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/rustfs-events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::to_vec(&v["body"]).unwrap()
    }

    #[test]
    fn real_rustfs_events_decode() {
        let e = parse(&fixture("01-Put.json")).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].bucket, "backups");
        assert_eq!(e[0].key, "db/dump 1.sql.gz");
        assert_eq!(e[0].etag.as_deref(), Some("98e5c8640da90012a8a41aa1f56f4d05"));
        assert_eq!(e[0].size, Some(11));
        assert!(e[0].is_object_created());
        assert!(e[0].time_ms.is_some());

        assert_eq!(parse(&fixture("02-Put.json")).unwrap()[0].key, "ü/weird & <x>.tar");
        let multipart = parse(&fixture("03-CompleteMultipartUpload.json")).unwrap();
        assert_eq!(multipart[0].etag.as_deref(), Some("10c443cc1e42357b5aa9cce937994712-3"));
        assert_eq!(multipart[0].name, "s3:ObjectCreated:CompleteMultipartUpload");
    }

    #[test]
    fn aws_form_and_event_names() {
        let body = br#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"a%2Bb+c"}}},
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","eTag":"\"abc\""}}}]}"#;
        let e = parse(body).unwrap();
        assert_eq!(e[0].key, "a+b c");
        assert!(!e[0].is_object_created());
        assert!(e[1].is_object_created());
        assert_eq!(e[1].etag.as_deref(), Some("abc"));
        assert!(parse(br#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap().is_empty());
    }

    #[test]
    fn bad_bodies_say_why() {
        assert!(parse(b"{").unwrap_err().contains("malformed JSON"));
        assert!(parse(b"{}").unwrap_err().contains("no Records"));
        assert!(parse(br#"{"Records":[{"s3":{"object":{"key":"k"}}}]}"#).unwrap_err().contains("no bucket"));
        assert!(
            parse(br#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{}}}]}"#)
                .unwrap_err()
                .contains("no object key")
        );
        assert!(parse(br#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"%FF"}}}]}"#).is_err());
    }
}
