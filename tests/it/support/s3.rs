//! A real S3 server (s3s-fs, file-system backed) running inside the test process.
//!
//! The S3 API is served by `s3s_fs::FileSystem` unchanged; a thin wrapper counts the requests
//! tests care about and, optionally, fills the ETag into listings. s3s-fs 0.14 lists objects
//! without an ETag, while RustFS, MinIO and AWS always include one, so tests can exercise both
//! code paths (ETag from the listing vs. ETag from a HeadObject).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub const ACCESS_KEY: &str = "tgploy-test-access";
pub const SECRET_KEY: &str = "tgploy-test-secret-key";

/// Objects bigger than this are uploaded by `put_file` as a multipart upload of parts this big.
const PART_SIZE: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct Stats {
    head: AtomicUsize,
    /// HeadObject answers 500 InternalError while set.
    heads_fail: AtomicBool,
    /// Listings ignore `encoding-type=url` while set, like a server that does not know it.
    no_url_encoding: AtomicBool,
    list: AtomicUsize,
    gets: Mutex<Vec<(String, String, Option<String>)>>,
    /// The `If-Match` of each GET, in order (`None` for an unconditional one).
    get_conditions: Mutex<Vec<Option<String>>>,
    /// Keys whose GetObject answers 503 SlowDownRead, as MinIO does for an object it
    /// cannot read (its disks under that object failed).
    failing_gets: Mutex<std::collections::HashSet<String>>,
}

/// `s3s::S3` implementation that forwards everything to s3s-fs.
struct Wrapper {
    inner: s3s_fs::FileSystem,
    stats: Arc<Stats>,
    listed_etags: bool,
    /// A bucket whose listing is generated rather than read from disk: `(name, objects)`.
    synthetic: Option<(String, usize)>,
}

/// The `i`-th key of a synthetic bucket (zero-padded: listed in order).
pub fn synthetic_key(i: usize) -> String {
    format!("dumps/{i:08}.sql.gz")
}

/// One page of a synthetic bucket's listing, as a real server would send it.
fn synthetic_page(name: &str, objects: usize, input: &ListObjectsV2Input) -> ListObjectsV2Output {
    let from: usize = input.continuation_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
    let max = input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
    let to = (from + max).min(objects);
    let modified = Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000));
    let contents = (from..to)
        .map(|i| Object {
            key: Some(synthetic_key(i)),
            size: Some(1024),
            e_tag: Some(ETag::Strong(format!("{i:032x}"))),
            last_modified: Some(modified.clone()),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    ListObjectsV2Output {
        name: Some(name.to_string()),
        max_keys: Some(max as i32),
        key_count: Some(contents.len() as i32),
        continuation_token: input.continuation_token.clone(),
        is_truncated: Some(to < objects),
        next_continuation_token: (to < objects).then(|| to.to_string()),
        contents: Some(contents),
        ..Default::default()
    }
}

impl Wrapper {
    /// Real servers report the ETag in listings; s3s-fs does not, so ask it per object.
    async fn fill_etags(&self, bucket: &str, objects: &mut [Object]) -> S3Result<()> {
        for object in objects.iter_mut().filter(|o| o.e_tag.is_none()) {
            let Some(key) = object.key.clone() else {
                continue;
            };
            let input = HeadObjectInput { bucket: bucket.to_owned(), key, ..Default::default() };
            let head = internal(input);
            // Deliberately bypasses `self.head_object` so head_count() only counts client requests.
            let out = self.inner.head_object(head).await?;
            object.e_tag = out.output.e_tag;
        }
        Ok(())
    }
}

/// A request the wrapper makes of s3s-fs itself, on no client's behalf.
fn internal<T>(input: T) -> S3Request<T> {
    S3Request {
        input,
        method: Default::default(),
        uri: Default::default(),
        headers: Default::default(),
        extensions: Default::default(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    }
}

type OpFuture<'a, T> = Pin<Box<dyn Future<Output = S3Result<S3Response<T>>> + Send + 'a>>;

// The S3 trait is declared with `#[async_trait]`; without that crate as a dev-dependency the
// methods are written in their desugared form (same generics and bounds as the macro emits).
macro_rules! forward {
    ($($op:ident: $input:ident => $output:ident;)*) => {$(
        fn $op<'life0, 'async_trait>(&'life0 self, req: S3Request<$input>) -> OpFuture<'async_trait, $output>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            self.inner.$op(req)
        }
    )*};
}

impl S3 for Wrapper {
    forward! {
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput;
        copy_object: CopyObjectInput => CopyObjectOutput;
        create_bucket: CreateBucketInput => CreateBucketOutput;
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        put_object: PutObjectInput => PutObjectOutput;
        upload_part: UploadPartInput => UploadPartOutput;
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
    }

    fn head_object<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<HeadObjectInput>,
    ) -> OpFuture<'async_trait, HeadObjectOutput>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.stats.head.fetch_add(1, Ordering::SeqCst);
            if self.stats.heads_fail.load(Ordering::SeqCst) {
                return Err(s3s::s3_error!(InternalError, "injected fault"));
            }
            self.inner.head_object(req).await
        })
    }

    fn get_object<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<GetObjectInput>,
    ) -> OpFuture<'async_trait, GetObjectOutput>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let range = req.headers.get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let entry = (req.input.bucket.clone(), req.input.key.clone(), range);
            self.stats.gets.lock().expect("stats lock poisoned").push(entry);
            let condition = req.input.if_match.as_ref().and_then(|c| c.as_etag()).map(|e| e.value().to_owned());
            self.stats.get_conditions.lock().expect("stats lock poisoned").push(condition.clone());
            if self.stats.failing_gets.lock().expect("stats lock poisoned").contains(&req.input.key) {
                // MinIO's answer to a GET of an object it cannot read (erasure read
                // quorum not met, `InsufficientReadQuorum`): `ErrSlowDownRead` in
                // `cmd/api-errors.go`, 503 SlowDownRead, while it lists and serves the rest.
                let mut e = s3s::S3Error::with_message(
                    s3s::S3ErrorCode::Custom("SlowDownRead".into()),
                    "Resource requested is unreadable, please reduce your request rate",
                );
                e.set_status_code(hyper::StatusCode::SERVICE_UNAVAILABLE);
                return Err(e);
            }
            // s3s-fs ignores If-Match on GET; RustFS, MinIO and AWS answer 412 when the
            // object is no longer that version.
            if let Some(expected) = condition {
                let input = HeadObjectInput {
                    bucket: req.input.bucket.clone(),
                    key: req.input.key.clone(),
                    ..Default::default()
                };
                let head = internal(input);
                let current = self.inner.head_object(head).await?.output.e_tag;
                if current.as_ref().map(|e| e.value()) != Some(expected.as_str()) {
                    return Err(s3s::s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ));
                }
            }
            let mut resp = self.inner.get_object(req).await?;
            // s3s-fs sends a range and then goes on reading the file to its end (its body
            // stream does not stop at the range's length), so a ranged GET costs as much as
            // the rest of the object. Real servers stop: end the body at its length.
            if let (Some(body), Some(len)) = (resp.output.body.take(), resp.output.content_length) {
                let mut remaining = len.max(0) as u64;
                let limited = body
                    .take_while(move |chunk| {
                        let more = remaining > 0;
                        if let Ok(bytes) = chunk {
                            remaining = remaining.saturating_sub(bytes.len() as u64);
                        }
                        std::future::ready(more)
                    })
                    .map(|chunk| chunk.map_err(std::io::Error::other));
                resp.output.body = Some(StreamingBlob::wrap(limited));
            }
            Ok(resp)
        })
    }

    fn list_objects<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<ListObjectsInput>,
    ) -> OpFuture<'async_trait, ListObjectsOutput>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let bucket = req.input.bucket.clone();
            let mut resp = self.inner.list_objects(req).await?;
            if self.listed_etags
                && let Some(contents) = resp.output.contents.as_mut()
            {
                self.fill_etags(&bucket, contents).await?;
            }
            Ok(resp)
        })
    }

    fn list_objects_v2<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<ListObjectsV2Input>,
    ) -> OpFuture<'async_trait, ListObjectsV2Output>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.stats.list.fetch_add(1, Ordering::SeqCst);
            if let Some((name, objects)) = &self.synthetic
                && *name == req.input.bucket
            {
                return Ok(S3Response::new(synthetic_page(name, *objects, &req.input)));
            }
            let bucket = req.input.bucket.clone();
            let mut req = req;
            // Continuation tokens are opaque, as on AWS: s3s-fs uses the last key, which may
            // hold characters XML cannot carry, so it travels hex-encoded.
            if let Some(token) = req.input.continuation_token.take() {
                let raw = hex::decode(&token).ok().and_then(|b| String::from_utf8(b).ok());
                let Some(raw) = raw else {
                    return Err(s3s::s3_error!(InvalidArgument, "The continuation token provided is incorrect"));
                };
                req.input.continuation_token = Some(raw);
            }
            if self.stats.no_url_encoding.load(Ordering::SeqCst) {
                req.input.encoding_type = None;
            }
            let url_encoded = req.input.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
            let mut resp = self.inner.list_objects_v2(req).await?;
            if self.listed_etags
                && let Some(contents) = resp.output.contents.as_mut()
            {
                self.fill_etags(&bucket, contents).await?;
            }
            let out = &mut resp.output;
            out.continuation_token = out.continuation_token.take().map(hex::encode);
            out.next_continuation_token = out.next_continuation_token.take().map(hex::encode);
            // s3s-fs echoes `encoding-type` but encodes nothing; AWS encodes every key (and
            // prefix) when asked. Unasked, keys go into the XML as they are: one with a
            // control character makes the whole listing unreadable XML, as on AWS, moto and
            // RustFS.
            if url_encoded {
                for object in out.contents.iter_mut().flatten() {
                    object.key = object.key.as_deref().map(s3_url_encode);
                }
                for prefix in out.common_prefixes.iter_mut().flatten() {
                    prefix.prefix = prefix.prefix.as_deref().map(s3_url_encode);
                }
                for field in [&mut out.prefix, &mut out.start_after, &mut out.delimiter] {
                    *field = field.as_deref().map(s3_url_encode);
                }
            }
            Ok(resp)
        })
    }
}

/// A key as S3 writes it with `encoding-type=url`: unreserved characters and `/` as they
/// are, a space as `+`, every other byte of its UTF-8 as `%XX` (AWS's example:
/// `test_file(3).png` lists as `test_file%283%29.png`; botocore decodes with
/// `unquote_plus`).
pub fn s3_url_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub struct S3Server {
    endpoint: String,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
    // Declared last so the server task is gone before the files are removed.
    root: TempDir,
}

impl S3Server {
    /// s3s-fs as is: listings carry no ETag.
    pub async fn start() -> S3Server {
        Self::start_inner(false, None).await
    }

    /// Listings carry quoted ETags, like RustFS, MinIO and AWS.
    pub async fn start_with_listed_etags() -> S3Server {
        Self::start_inner(true, None).await
    }

    /// Also serves the bucket `name`, whose listing shows `objects` generated objects of
    /// 1 KiB with ETags (`synthetic_key(i)`), at the speed of the protocol rather than of
    /// a directory walk: for benchmarks over a million objects.
    pub async fn start_with_synthetic_bucket(name: &str, objects: usize) -> S3Server {
        let server = Self::start_inner(true, Some((name.to_string(), objects))).await;
        server.create_bucket(name).await;
        server
    }

    async fn start_inner(listed_etags: bool, synthetic: Option<(String, usize)>) -> S3Server {
        let root = tempfile::tempdir().expect("create S3 root dir");
        let inner = s3s_fs::FileSystem::new(root.path()).expect("create s3s-fs");
        let stats = Arc::new(Stats::default());
        let wrapper = Wrapper { inner, stats: stats.clone(), listed_etags, synthetic };
        let service = {
            let mut builder = S3ServiceBuilder::new(wrapper);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind S3 listener");
        let addr = listener.local_addr().expect("S3 listener address");

        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            // Owning the connections here means aborting this task (stop/drop) also kills
            // keep-alive connections, so the server becomes unreachable at once.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let conn = http
                            .serve_connection(TokioIo::new(socket), service.clone())
                            .into_owned();
                        conns.spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });

        S3Server { endpoint: format!("http://{addr}"), stats, task, root }
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Directory holding the buckets (one sub-directory per bucket).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tgploy-test"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn create_bucket(&self, name: &str) {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    }

    /// Returns the ETag without quotes.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> String {
        let out = self
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
        trim_etag(out.e_tag())
    }

    /// Streams the file; files above 64 MiB go up as a multipart upload (ETag `md5-N`).
    pub async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> String {
        let size = tokio::fs::metadata(path).await.unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).len();
        let client = self.client();
        if size <= PART_SIZE {
            let body = ByteStream::from_path(path).await.unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            let out = client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
            return trim_etag(out.e_tag());
        }

        let upload = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create multipart upload {bucket}/{key}: {e:?}"));
        let upload_id = upload.upload_id().expect("upload id").to_owned();
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let len = PART_SIZE.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("upload part {number} of {bucket}/{key}: {e:?}"));
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build());
            offset += len;
            number += 1;
        }
        let out = client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .unwrap_or_else(|e| panic!("complete multipart upload {bucket}/{key}: {e:?}"));
        trim_etag(out.e_tag())
    }

    /// HeadObject requests served so far (the ETag filling of listings is not counted).
    pub fn head_count(&self) -> usize {
        self.stats.head.load(Ordering::SeqCst)
    }

    /// The `If-Match` ETag of every GetObject request, in arrival order.
    pub fn get_conditions(&self) -> Vec<Option<String>> {
        self.stats.get_conditions.lock().expect("stats lock poisoned").clone()
    }

    /// `(bucket, key, Range header)` of every GetObject request, in arrival order.
    pub fn get_requests(&self) -> Vec<(String, String, Option<String>)> {
        self.stats.gets.lock().expect("stats lock poisoned").clone()
    }

    /// ListObjectsV2 requests served so far.
    pub fn list_count(&self) -> usize {
        self.stats.list.load(Ordering::SeqCst)
    }

    /// Makes HeadObject answer 500 InternalError (or behave again).
    /// Listings ignore `encoding-type=url` (and do not say they used it), like a server
    /// that does not implement it: keys go into the XML as they are.
    pub fn ignore_url_encoding(&self, ignore: bool) {
        self.stats.no_url_encoding.store(ignore, Ordering::SeqCst);
    }

    pub fn fail_heads(&self, fail: bool) {
        self.stats.heads_fail.store(fail, Ordering::SeqCst);
    }

    /// Makes every GetObject of `key` (in any bucket) answer 503 SlowDownRead.
    pub fn fail_gets_of(&self, key: &str) {
        self.stats.failing_gets.lock().expect("stats lock poisoned").insert(key.to_string());
    }

    /// Makes every GetObject answer again.
    pub fn heal_gets(&self) {
        self.stats.failing_gets.lock().expect("stats lock poisoned").clear();
    }

    /// Closes the listener and every open connection: clients see connection refused/reset.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn trim_etag(etag: Option<&str>) -> String {
    etag.expect("server returned no ETag").trim_matches('"').to_owned()
}
