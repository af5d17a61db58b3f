//! A client for `tgploy dashboard` over real HTTP, as a browser would use it: cookies,
//! CSRF tokens, second-factor codes in the order the server takes them, live streams
//! (Server-Sent Events) read event by event. Shared by the dashboard tests, the browser
//! test and the dashboard benchmarks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{ServerProc, World, data};

pub const PASSWORD: &str = "correct horse battery staple";

/// Hands out second-factor codes in the order the server accepts them: each for a later
/// time step than the one before (a code works once), within the window the server
/// takes (the previous, current and next step).
pub struct Codes {
    secret: String,
    last_step: i64,
}

impl Codes {
    pub fn new(secret: &str) -> Codes {
        Codes { secret: secret.to_string(), last_step: 0 }
    }

    /// A code for a step not used yet, waiting for the clock where needed.
    pub async fn next(&mut self) -> String {
        loop {
            let now = tgploy::time::now();
            let current = now / 30;
            let step = (self.last_step + 1).max(current - 1);
            // The previous step's code stops working at the next boundary: not close to it.
            let risky = step < current && now % 30 >= 25;
            if step > current + 1 || risky {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            self.last_step = step;
            return tgploy::totp::code_at(&self.secret, (step * 30) as u64).unwrap();
        }
    }

    /// A code the server accepted already (for replay tests).
    pub fn used(&self) -> String {
        tgploy::totp::code_at(&self.secret, (self.last_step * 30) as u64).unwrap()
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let start = self.body.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + 19;
        self.body[start..start + 64].to_string()
    }

    #[track_caller]
    pub fn status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    #[track_caller]
    pub fn shows(&self, text: &str) -> &Self {
        assert!(self.body.contains(text), "the page does not show {text:?}:\n{}", self.body);
        self
    }

    /// The path of the stylesheet the page links to (`/static/app.HASH.css`).
    #[track_caller]
    pub fn stylesheet(&self) -> String {
        let link = self.body.split("<link rel=\"stylesheet\" href=\"").nth(1);
        let path = link.and_then(|rest| rest.split('"').next());
        path.unwrap_or_else(|| panic!("the page links no stylesheet:\n{}", self.body)).to_string()
    }

    /// The path of the script the page loads (`/static/live.HASH.js`).
    #[track_caller]
    pub fn script(&self) -> String {
        let tag = self.body.split("<script src=\"").nth(1);
        let path = tag.and_then(|rest| rest.split('"').next());
        path.unwrap_or_else(|| panic!("the page loads no script:\n{}", self.body)).to_string()
    }

    #[track_caller]
    pub fn hides(&self, text: &str) -> &Self {
        assert!(!self.body.contains(text), "the page shows {text:?}:\n{}", self.body);
        self
    }
}

/// A browser without a browser: keeps cookies, sends the Origin a browser sends.
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub origin: Option<String>,
    /// Says the requests come through a reverse proxy on the dashboard's host, from this
    /// address (`X-Forwarded-For`).
    pub forwarded_for: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Client {
            http,
            base: base.to_string(),
            cookies: BTreeMap::new(),
            origin: Some(base.to_string()),
            forwarded_for: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Reply {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookie.is_empty() { req } else { req.header("cookie", cookie.join("; ")) };
        let req = match &self.forwarded_for {
            Some(from) => req.header("x-forwarded-for", from),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Reply { status, headers, body: resp.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin);
        }
        self.send(req).await
    }

    /// Fills in the sign-in form and sends it.
    pub async fn sign_in(&mut self, password: &str, code: &str) -> Reply {
        let token = self.get("/login").await.csrf();
        self.post("/login", &[("csrf", &token), ("password", password), ("code", code)]).await
    }

    /// The CSRF token of a signed-in page.
    pub async fn token(&mut self) -> String {
        self.get("/security").await.status(200).csrf()
    }
}

/// A world with a delivered bucket, a dashboard password, a second factor, and the
/// dashboard running.
pub struct Dash {
    pub w: World,
    pub codes: Codes,
    pub server: ServerProc,
    pub enrolment: tgploy::totp::Enrolment,
    /// Recovery codes not used yet: signing in with one leaves the time steps alone.
    recovery: Vec<String>,
}

impl Dash {
    pub async fn start() -> Dash {
        let w = World::new().await;
        Dash::start_in(w).await
    }

    pub async fn start_in(mut w: World) -> Dash {
        w.s3.create_bucket("backups").await;
        w.s3.put("backups", "db/dump.sql.gz", data(150 * 1024, 1)).await;
        w.s3.put("backups", "etc/hosts", data(100, 2)).await;
        w.sync().await.success();
        w.set_dashboard_password(PASSWORD, None).await.success();
        let enrolment = w.enrol_totp();
        let server = w.start_dashboard();
        Dash {
            codes: Codes::new(&enrolment.secret_base32),
            recovery: enrolment.recovery_codes[1..].to_vec(),
            w,
            server,
            enrolment,
        }
    }

    /// The recovery codes no sign-in used yet.
    pub fn unused_recovery_codes(&self) -> Vec<String> {
        self.recovery.clone()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.server.url)
    }

    /// A client with a session, signed in with a recovery code.
    pub async fn signed_in(&mut self) -> Client {
        let code = self.recovery.pop().expect("a recovery code left");
        self.signed_in_with(&code).await
    }

    /// A client with a session, signed in with the next time step's code.
    pub async fn signed_in_with_code(&mut self) -> Client {
        let code = self.codes.next().await;
        self.signed_in_with(&code).await
    }

    async fn signed_in_with(&mut self, code: &str) -> Client {
        let mut c = self.client();
        let reply = c.sign_in(PASSWORD, code).await;
        assert_eq!((reply.status, reply.location()), (303, "/"), "{}", reply.body);
        c
    }

    pub fn enabled(&self, bucket: &str) -> String {
        self.w.query(&format!("SELECT enabled FROM buckets WHERE name = '{bucket}'"))[0][0].clone()
    }
}

/// One event of a stream: a comment, or an event with its fields.
#[derive(Debug, Clone, Default)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
    pub comment: Option<String>,
}

impl Sse {
    /// The update's live parts (`{"regions": …, "fields": …}`).
    pub fn update(&self) -> Value {
        assert_eq!(self.event.as_deref(), Some("update"), "{self:?}");
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.data))
    }

    /// A region's HTML, if the update has it.
    pub fn region(&self, id: &str) -> Option<String> {
        self.update()["regions"][id].as_str().map(str::to_string)
    }
}

/// An open stream, read event by event.
pub struct Stream {
    /// Kept while the stream is read: its connection goes with it.
    _http: reqwest::Client,
    resp: reqwest::Response,
    buf: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Everything it carried, to look for secrets in.
    pub wire: String,
}

impl Stream {
    /// Opens `/live/PAGE` with the client's cookies, and `Last-Event-ID` when given.
    pub async fn open(c: &Client, page: &str, last: Option<&str>) -> Stream {
        let cookie: Vec<String> = c.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let http = reqwest::Client::new();
        let mut req = http
            .get(format!("{}/live/{page}", c.base))
            .header("cookie", cookie.join("; "))
            .header("sec-fetch-site", "same-origin")
            .header("accept", "text/event-stream");
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        let resp = req.send().await.expect("GET /live");
        Stream {
            _http: http,
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            resp,
            buf: String::new(),
            wire: String::new(),
        }
    }

    /// The next event or comment; `None` when the stream ended. Panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut sse = Sse::default();
                for line in block.lines().filter(|l| !l.is_empty()) {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match name {
                        "" => sse.comment = Some(value.to_string()),
                        "id" => sse.id = Some(value.to_string()),
                        "event" => sse.event = Some(value.to_string()),
                        "retry" => sse.retry = value.parse().ok(),
                        "data" => {
                            if !sse.data.is_empty() {
                                sse.data.push('\n');
                            }
                            sse.data.push_str(value);
                        }
                        other => panic!("an unknown field {other:?} in {block:?}"),
                    }
                }
                return Some(sse);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {timeout:?}; have {:?}", self.buf));
            match chunk.expect("read the stream") {
                Some(bytes) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
                    self.wire.push_str(&text);
                    self.buf.push_str(&text);
                }
                None => return None,
            }
        }
    }

    /// The next update (comments skipped).
    pub async fn update(&mut self, timeout: Duration) -> Sse {
        loop {
            let sse = self.next(timeout).await.expect("the stream ended");
            if sse.comment.is_none() {
                return sse;
            }
        }
    }

    /// Events until one that `wanted` says is the one; panics after `timeout` in all.
    pub async fn until(&mut self, timeout: Duration, mut wanted: impl FnMut(&Sse) -> bool) -> Sse {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let sse = self.next(left).await.expect("the stream ended");
            if wanted(&sse) {
                return sse;
            }
        }
    }
}
