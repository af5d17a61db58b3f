//! `tgploy dashboard` over real HTTP: sign-in with the password and the second factor,
//! the lock shared with the command line, sessions, CSRF and origin checks, security
//! headers, the pages and their actions, and no secret anywhere.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::dashboard_client::{Client, Dash, PASSWORD, Reply};
use crate::harness::{World, data};
use crate::support::{s3, telegram};

const WRONG: &str = "Wrong password or code.";

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_refuses_to_start_until_a_password_and_the_second_factor_are_set() {
    let mut w = World::new().await;
    let out = w.run(&["dashboard", "--listen", "127.0.0.1:0"]).await;
    out.code(2);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("tgploy:")).collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("`tgploy setup dashboard`") && lines[0].contains("`tgploy setup totp --reset`"),
        "{}",
        lines[0]
    );

    let out = w.run(&["setup", "dashboard", "--non-interactive"]).await;
    out.code(2);
    assert!(out.stderr.contains("TGPLOY_DASHBOARD_PASSWORD"), "{}", out.stderr);
    w.set_dashboard_password("too short", None).await.code(2);
    let out = w.set_dashboard_password(PASSWORD, None).await;
    out.success();
    assert!(out.stdout.contains("tgploy setup totp --reset"), "{}", out.stdout);
    let hash = &w.query("SELECT hash FROM dashboard_password")[0][0];
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!String::from_utf8_lossy(&w.ledger_bytes()).contains(PASSWORD), "only the hash is stored");

    let out = w.run(&["dashboard", "--listen", "127.0.0.1:0"]).await;
    out.code(2);
    assert!(out.stderr.contains("needs a second factor") && out.stderr.contains("`tgploy setup totp --reset`"));

    // Once a second factor is enrolled, replacing the password needs a code; a file
    // works as well as the variable.
    let enrolment = w.enrol_totp();
    let out = w.set_dashboard_password("another good password", None).await;
    out.code(2);
    assert!(out.stderr.contains("needs a second-factor code"), "{}", out.stderr);
    let file = w.dir.path().join("dashboard-password");
    std::fs::write(&file, "from a file, long enough\n").unwrap();
    w.set_env("TGPLOY_DASHBOARD_PASSWORD_FILE", &file.display().to_string());
    let code = tgploy::totp::code_at(&enrolment.secret_base32, tgploy::time::now() as u64).unwrap();
    let out = w.run(&["setup", "dashboard", "--non-interactive", "--otp", &code]).await;
    out.success();
    assert!(out.stdout.contains("replaced"), "{}", out.stdout);
    let hash = &w.query("SELECT hash FROM dashboard_password")[0][0];
    assert!(tgploy::dashboard::auth::password_matches(hash, "from a file, long enough"));
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_needs_the_password_and_a_code_and_one_error_covers_every_wrong_answer() {
    let mut d = Dash::start().await;
    let mut c = d.client();
    let code = d.codes.next().await;

    let wrong_password = c.sign_in("not the password", &code).await;
    wrong_password.status(401).shows(WRONG);
    let wrong_code = c.sign_in(PASSWORD, "000000").await;
    wrong_code.status(401).shows(WRONG);
    let no_code = c.sign_in(PASSWORD, "").await;
    no_code.status(401).shows(WRONG);
    let error =
        |r: &Reply| r.body[r.body.find("role=\"alert\"").unwrap()..].split("</div>").next().unwrap().to_string();
    assert_eq!(error(&wrong_password), error(&wrong_code), "the same words whatever was wrong");
    assert!(!c.cookies.contains_key("tgploy_session"));
    assert_eq!(c.get("/").await.location(), "/login", "no session, no page");

    // The wrong password did not use the code up: it was never checked.
    let ok = c.sign_in(PASSWORD, &code).await;
    assert_eq!((ok.status, ok.location()), (303, "/"), "{}", ok.body);
    let cookie = ok.set_cookies().into_iter().find(|s| s.starts_with("tgploy_session=")).expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback without a public URL: {cookie}");
    let id = c.cookies["tgploy_session"].clone();
    assert_eq!(id.len(), 64, "256 random bits");
    assert!(d.w.query("SELECT id_hash FROM dashboard_sessions").iter().all(|r| r[0] != id), "stored hashed");
    c.get("/").await.status(200).shows("Overview");

    // A recovery code works in place of a code, once.
    let mut other = d.client();
    let recovery = d.enrolment.recovery_codes[0].clone();
    assert_eq!(other.sign_in(PASSWORD, &recovery).await.status, 303);
    let mut third = d.client();
    third.sign_in(PASSWORD, &recovery).await.status(401).shows(WRONG);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_works_once_so_a_replayed_one_is_refused() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in_with_code().await;
    let token = c.token().await;
    assert_eq!(c.post("/logout", &[("csrf", &token)]).await.location(), "/login");
    assert_eq!(c.get("/").await.location(), "/login", "signed out");
    let replayed = d.codes.used();
    c.sign_in(PASSWORD, &replayed).await.status(401).shows(WRONG);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_answers_on_the_command_line_do_not_lock_the_dashboard() {
    let mut d = Dash::start().await;
    for _ in 0..5 {
        d.w.run(&["buckets", "disable", "backups", "--otp", "000000"]).await.code(2);
    }
    let code = d.codes.next().await;
    let out = d.w.run(&["buckets", "disable", "backups", "--otp", &code]).await;
    out.code(2);
    assert!(out.stderr.contains("locked"), "the command line is locked: {}", out.stderr);
    // The dashboard keeps its own count: the operator still signs in.
    let code = d.codes.next().await;
    let mut c = d.client();
    let reply = c.sign_in(PASSWORD, &code).await;
    assert_eq!((reply.status, reply.location()), (303, "/"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_on_the_dashboard_is_throttled_there_and_never_blocks_a_restore() {
    let mut d = Dash::start().await;
    // Anyone who can reach the sign-in page, without the password.
    let mut attacker = d.client();
    attacker.forwarded_for = Some("203.0.113.9".into());
    for _ in 0..3 {
        attacker.sign_in("guess", "123456").await.status(401).shows(WRONG);
    }
    attacker.sign_in("guess", "123456").await.status(401).shows(WRONG);
    // The fifth comes too soon: held back, unchecked, with a time to come back.
    attacker.sign_in("guess", "123456").await.status(429).shows("try again in");
    assert!(d.server.logs().contains("wrong answers from 203.0.113.9"), "{}", d.server.logs());

    // The command line's second factor is untouched: a restore on the host goes ahead.
    let out_dir = d.w.dir.path().join("restored");
    std::fs::create_dir_all(&out_dir).unwrap();
    let code = d.codes.next().await;
    let out = d.w.run(&["restore", "backups/etc/hosts", "--otp", &code, "--out", out_dir.to_str().unwrap()]).await;
    out.success();
    assert_eq!(std::fs::read(out_dir.join("hosts")).unwrap(), data(100, 2));
    assert_eq!(d.w.query("SELECT failures, locked_until FROM totp"), [["0", "0"]]);

    // Another address signs in while the guesser waits.
    let mut operator = d.client();
    operator.forwarded_for = Some("198.51.100.7".into());
    let code = d.codes.next().await;
    assert_eq!(operator.sign_in(PASSWORD, &code).await.status, 303);

    // And `restore --all` works while the guessing goes on: it starts once the guessing
    // has, and the guessing goes on until it ends.
    let (started, guessing_started) = tokio::sync::oneshot::channel();
    let restoring = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let guessing = tokio::spawn({
        let (url, restoring) = (d.server.url.clone(), restoring.clone());
        async move {
            let mut started = Some(started);
            let mut answers = Vec::new();
            for i in 0.. {
                let mut c = Client::new(&url);
                c.forwarded_for = Some(format!("192.0.2.{}", i % 250));
                answers.push(c.sign_in("guess", "654321").await.status);
                if i == 2 {
                    started.take().map(|s| s.send(()));
                }
                if i >= 30 && !restoring.load(Ordering::SeqCst) {
                    break;
                }
            }
            answers
        }
    });
    guessing_started.await.unwrap();
    let all = d.w.dir.path().join("all");
    let code = d.codes.next().await;
    let out = d.w.run(&["restore", "--all", "--otp", &code, "--out", all.to_str().unwrap(), "--json"]).await;
    restoring.store(false, Ordering::SeqCst);
    out.success();
    assert_eq!(out.json()["restored"], 2);
    let answers = guessing.await.unwrap();
    assert!(answers.iter().all(|s| *s == 401 || *s == 429), "every guess was refused: {answers:?}");
    assert_eq!(d.w.query("SELECT failures, locked_until FROM totp"), [["0", "0"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_guesses_at_once_is_throttled_like_the_same_guesses_in_a_row() {
    let d = Dash::start().await;
    // Twelve sign-in forms from one address, posted all at once: only the free attempts
    // and the one after them are checked; the rest are held back unchecked.
    let mut clients: Vec<Client> = (0..12).map(|_| d.client()).collect();
    let mut tokens = Vec::new();
    for c in &mut clients {
        c.forwarded_for = Some("203.0.113.77".into());
        tokens.push(c.get("/login").await.csrf());
    }
    let posts = clients.iter_mut().zip(&tokens).map(|(c, token)| async move {
        c.post("/login", &[("csrf", token), ("password", "guess"), ("code", "123456")]).await
    });
    let replies = futures_util::future::join_all(posts).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 4, "three free attempts and one more, then a wait: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 8, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_their_csrf_token_or_from_another_origin_are_refused() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in().await;
    let mut other = d.signed_in().await;
    let token = c.token().await;
    let others_token = other.token().await;
    let code = d.codes.next().await;

    for forged in ["", "0000000000000000000000000000000000000000000000000000000000000000", others_token.as_str()] {
        let reply = c.post("/buckets/disable", &[("csrf", forged), ("bucket", "backups"), ("code", &code)]).await;
        reply.status(403);
        assert_eq!(d.enabled("backups"), "1");
    }
    c.post("/buckets/disable", &[("bucket", "backups"), ("code", &code)]).await.status(403);

    // The right token from another site's page.
    for origin in ["https://evil.example", "null"] {
        c.origin = Some(origin.to_string());
        let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", &code)]).await;
        reply.status(403);
        assert_eq!(d.enabled("backups"), "1");
    }
    let cross = reqwest::Client::new()
        .post(format!("{}/retry/now", d.server.url))
        .header("cookie", format!("tgploy_session={}", c.cookies["tgploy_session"]))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);

    // The sign-in form's token must match its cookie.
    let mut fresh = d.client();
    fresh.get("/login").await;
    let reply = fresh.post("/login", &[("csrf", &token), ("password", PASSWORD), ("code", "123456")]).await;
    reply.status(403);

    // None of that used the code up: it still disables the bucket, with the token.
    c.origin = Some(d.server.url.clone());
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", &code)]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(d.enabled("backups"), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_after_30_idle_minutes_and_12_hours_after_sign_in() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in().await;
    let token = c.token().await;
    let now = tgploy::time::now();
    d.w.execute(&format!("UPDATE dashboard_sessions SET last_seen_at = {}", now - 30 * 60 - 1));
    let reply = c.get("/").await;
    assert_eq!((reply.status, reply.location()), (303, "/login?expired=1"));
    assert!(d.w.query("SELECT * FROM dashboard_sessions").is_empty(), "the expired session is gone");
    c.get("/login?expired=1").await.shows("Your session ended");

    let mut c = d.signed_in().await;
    let token2 = c.token().await;
    d.w.execute(&format!("UPDATE dashboard_sessions SET created_at = {}", now - 12 * 3600 - 1));
    let reply = c.post("/retry/dead", &[("csrf", &token2)]).await;
    assert_eq!(reply.location(), "/login?expired=1", "busy all along, but 12 hours old");

    // A session that ended takes its token with it.
    let mut c = d.signed_in().await;
    c.post("/retry/now", &[("csrf", &token)]).await.status(403);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_bucket_needs_a_fresh_code_and_enabling_can_skip_what_is_there() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in_with_code().await;
    let token = c.token().await;
    c.get("/buckets").await.status(200).shows("backups").shows("Code to disable");

    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups")]).await;
    reply.status(400).shows("needs a current code");
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", "")]).await;
    reply.status(400);
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", "000000")]).await;
    // The dashboard's wrong codes do not count towards the command line's lock.
    reply.status(403).shows("wrong code").hides("before a 15-minute lock");
    let used = d.codes.used();
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", &used)]).await;
    reply.status(403).shows("already used");
    assert_eq!(d.enabled("backups"), "1");

    let code = d.codes.next().await;
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", &code)]).await;
    assert_eq!(reply.location(), "/buckets?done=disabled&bucket=backups&n=0");
    assert_eq!(d.enabled("backups"), "0");
    c.get(reply.location()).await.shows("disabled bucket backups").shows("only objects from now on");

    // Objects put while it was off are skipped when it comes back "from now on".
    d.w.s3.put("backups", "while-off/1", data(10, 3)).await;
    d.w.s3.put("backups", "while-off/2", data(10, 4)).await;
    let reply = c.post("/buckets/enable", &[("csrf", &token), ("bucket", "backups"), ("from_now", "1")]).await;
    assert_eq!(reply.location(), "/buckets?done=enabled-from-now&bucket=backups&n=4", "{}", reply.body);
    c.get(reply.location()).await.shows("its 4 current objects are recorded as skipped");
    assert_eq!(d.enabled("backups"), "1");
    assert_eq!(d.w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'skipped'"), [["2"]]);
    let before = d.w.tg.documents().len();
    d.w.sync().await.success();
    assert_eq!(d.w.tg.documents().len(), before, "nothing more was sent");

    let reply = c.post("/buckets/enable", &[("csrf", &token), ("bucket", "no-such-bucket")]).await;
    reply.status(400).shows("no bucket named");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_on_any_page_response_or_log_line() {
    let mut d = Dash::start().await;
    let hash = d.w.query("SELECT hash FROM dashboard_password")[0][0].clone();
    let secrets = [
        ("bot token", telegram::TOKEN.split_once(':').unwrap().1.to_string()),
        ("S3 secret", s3::SECRET_KEY.to_string()),
        ("webhook token", crate::harness::WEBHOOK_TOKEN.to_string()),
        ("TOTP secret", d.enrolment.secret_base32.clone()),
        ("password hash", hash.clone()),
        ("password hash's digest", hash.rsplit('$').next().unwrap().to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let mut secrets = secrets.to_vec();
    let mut seen = Vec::new();
    let mut anonymous = d.client();
    for path in ["/login", "/", "/nope", "/static/app.0000.css"] {
        seen.push(anonymous.get(path).await);
    }
    seen.push(anonymous.sign_in("wrong password", "123456").await);
    let mut c = d.signed_in().await;
    secrets.extend(d.unused_recovery_codes().into_iter().map(|code| ("unused recovery code", code)));
    let token = c.token().await;
    let code = d.codes.next().await;
    seen.push(
        c.post("/security/password", &[("csrf", &token), ("current", "wrong"), ("new", "x"), ("repeat", "x")]).await,
    );
    seen.push(c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", "000000")]).await);
    seen.push(c.post("/retry/now", &[("csrf", "forged")]).await);
    for path in ["/", "/buckets", "/files", "/retry", "/logs", "/security", "/settings", "/files?prefix=db"] {
        let reply = c.get(path).await;
        reply.status(200).shows("Sign out");
        seen.push(reply);
    }
    // The stylesheet a signed-in page links to.
    let overview = seen.iter().rev().find(|r| r.body.contains("Sign out")).expect("a signed-in page");
    let stylesheet = c.get(&overview.stylesheet()).await;
    stylesheet.status(200);
    seen.push(stylesheet);
    let settings = c.get("/settings").await;
    settings.shows("telegram.bot_token").shows("s3.secret_key").shows("webhook.secret_token");
    assert!(settings.body.matches("badge-set").count() >= 3, "secrets are shown as set");
    let reply = c.post("/buckets/disable", &[("csrf", &token), ("bucket", "backups"), ("code", &code)]).await;
    seen.push(reply);
    let (_, logs) = d.server.stop("TERM", Duration::from_secs(10)).await;
    for reply in &seen {
        let headers = format!("{:?}", reply.headers);
        for (what, secret) in &secrets {
            assert!(!reply.body.contains(secret.as_str()), "the {what} is on a page:\n{}", reply.body);
            assert!(!headers.contains(secret.as_str()), "the {what} is in a header: {headers}");
        }
    }
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "the {what} is in the log:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let mut d = Dash::start().await;
    let mut c = d.signed_in().await;
    let overview = c.get("/").await;
    let css = overview.stylesheet();
    assert!(css.starts_with("/static/app.") && css.ends_with(".css") && css.len() > "/static/app..css".len() + 8);
    let token = c.token().await;
    let mut replies = vec![
        overview,
        c.get("/login").await,
        c.get("/nope").await,
        c.post("/retry/now", &[("csrf", "forged")]).await,
        c.post("/retry/now", &[("csrf", &token)]).await,
    ];
    let stylesheet = c.get(&css).await;
    stylesheet.status(200);
    assert_eq!(stylesheet.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(stylesheet.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(stylesheet.body.contains("--magenta: #ff006e"));
    c.get("/static/app.0123456789abcdef.css").await.status(404);
    replies.push(stylesheet);
    // The one script, served like the stylesheet: same origin, named by its content.
    let js = replies[0].script();
    assert!(js.starts_with("/static/live.") && js.ends_with(".js") && js.len() > "/static/live..js".len() + 8);
    let script = c.get(&js).await;
    script.status(200);
    assert_eq!(script.headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(script.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(script.body.contains("new EventSource("), "{}", script.body);
    c.get("/static/live.0123456789abcdef.js").await.status(404);
    replies.push(script);
    // Browsers ask every site for its icon: there is one, signed in or not.
    assert!(replies[0].body.contains("<link rel=\"icon\" href=\"/favicon.ico\""));
    let icon = Client::new(&d.server.url).get("/favicon.ico").await;
    icon.status(200);
    assert_eq!(icon.headers["content-type"], "image/x-icon");
    replies.push(icon);
    for r in &replies {
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
        // Scripts and styles only from this origin's files; connections (the live
        // stream) only to this origin.
        for directive in ["style-src 'self';", "script-src 'self';", "connect-src 'self';"] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-") && !csp.contains("data:") && !csp.contains("http"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert!(!r.body.contains(" style=") && !r.body.contains("<style"));
        // No inline script: every script element is the same-origin file, empty.
        let tag = format!("<script src=\"{js}\" defer></script>");
        assert_eq!(r.body.matches("<script").count(), r.body.matches(tag.as_str()).count(), "{}", r.body);
        let handlers = r.body.match_indices(" on").filter(|(i, _)| {
            let rest = &r.body[i + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].starts_with("=\"")
        });
        assert_eq!(handlers.count(), 0, "no inline event handler: {}", r.body);
        assert!(!r.body.contains("javascript:"), "{}", r.body);
    }
    assert_eq!(replies[0].body.matches("<script").count(), 1, "a signed-in page loads the script once");
    assert!(!replies[1].body.contains("<script"), "the sign-in page needs none");
    assert_eq!(replies[0].headers["cache-control"], "no-store", "pages are never cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_show_what_the_ledger_holds_and_the_retry_buttons_make_failures_due() {
    let mut d = Dash::start().await;
    // One delivery fails (413), another dies: the retry queue has both kinds.
    d.w.tg.set_upload_limit(1);
    d.w.s3.put("backups", "fails/a.bin", data(5000, 5)).await;
    d.w.s3.put("backups", "fails/b.bin", data(5000, 6)).await;
    d.w.sync().await.code(1);
    d.w.execute("UPDATE deliveries SET state = 'dead', next_attempt_at = NULL WHERE key = 'fails/b.bin'");
    d.w.tg.set_upload_limit(50 * 1024 * 1024);
    let mut c = d.signed_in().await;
    let token = c.token().await;

    let overview = c.get("/").await;
    overview.status(200).shows("<meta http-equiv=\"refresh\" content=\"30\">").shows("Latest deliveries");
    overview.shows("db/dump.sql.gz").shows("sync").shows(">failed<").shows(">dead<");
    let files = c.get("/files").await;
    files.shows("2</strong> delivered objects match").shows("backups/db/dump.sql.gz");
    let dump = d.w.query("SELECT p.message_id FROM parts p JOIN deliveries d ON d.id = p.delivery_id WHERE d.key = 'db/dump.sql.gz' AND p.idx = 1");
    files.shows(&format!("https://t.me/c/1234567890/{}", dump[0][0]));
    let sha = d.w.query("SELECT sha256 FROM deliveries WHERE key = 'db/dump.sql.gz'")[0][0].clone();
    files.shows(&sha);
    let filtered = c.get("/files?bucket=backups&prefix=etc%2F").await;
    filtered.shows("1</strong> delivered objects match").shows("backups/etc/hosts");
    assert!(!filtered.body.contains("db/dump.sql.gz"));

    let retry = c.get("/retry").await;
    retry.shows("Failed: 1").shows("Dead: 1").shows("fails/a.bin").shows("413");
    let next: i64 =
        d.w.query("SELECT next_attempt_at FROM deliveries WHERE key = 'fails/a.bin'")[0][0].parse().unwrap();
    assert!(next > tgploy::time::now(), "backoff");
    let reply = c.post("/retry/now", &[("csrf", &token)]).await;
    assert_eq!(reply.location(), "/retry?done=due&n=1");
    c.get(reply.location()).await.shows("1 failed deliveries are due now");
    let next: i64 =
        d.w.query("SELECT next_attempt_at FROM deliveries WHERE key = 'fails/a.bin'")[0][0].parse().unwrap();
    assert!(next <= tgploy::time::now());
    let reply = c.post("/retry/dead", &[("csrf", &token)]).await;
    assert_eq!(reply.location(), "/retry?done=revived&n=1");
    d.w.run(&["retry"]).await.success();
    assert_eq!(d.w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"), [["4"]]);

    let logs = c.get("/logs").await;
    logs.shows(">retry<").shows(">sync<").shows("Alerts");
    let settings = c.get("/settings").await;
    settings.shows("TGPLOY_PART_SIZE").shows("dashboard.listen").shows("the flag --listen");
    let security = c.get("/security").await;
    security.shows("this session").shows("enrolled").shows("Recovery codes left");
}

async fn change_password(c: &mut Client, token: &str, current: &str, new: &str, repeat: &str, code: &str) -> Reply {
    let form = [("csrf", token), ("current", current), ("new", new), ("repeat", repeat), ("code", code)];
    c.post("/security/password", &form).await
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_everywhere_and_changing_the_password() {
    let mut d = Dash::start().await;
    let mut a = d.signed_in().await;
    let mut b = d.signed_in().await;
    let token = a.token().await;
    assert_eq!(d.w.query("SELECT COUNT(*) FROM dashboard_sessions"), [["2"]]);

    let code = d.codes.next().await;
    change_password(&mut a, &token, PASSWORD, "a new password", "another one", &code).await.status(400).shows("differ");
    change_password(&mut a, &token, PASSWORD, "short", "short", &code).await.status(400).shows("at least 12");
    let wrong = change_password(&mut a, &token, "wrong password", "a new password!", "a new password!", &code).await;
    wrong.status(403).shows(WRONG);
    let reply = change_password(&mut a, &token, PASSWORD, "a new password!", "a new password!", &code).await;
    assert_eq!(reply.location(), "/security?done=password&n=0", "{}", reply.body);
    a.get(reply.location()).await.shows("the password was changed");
    assert_eq!(d.w.query("SELECT COUNT(*) FROM dashboard_sessions"), [["1"]], "the other session ended");
    assert_eq!(b.get("/").await.location(), "/login?expired=1");
    a.get("/").await.status(200);

    let mut c = d.client();
    let code = d.codes.next().await;
    c.sign_in(PASSWORD, &code).await.status(401);
    let code = d.codes.next().await;
    assert_eq!(c.sign_in("a new password!", &code).await.status, 303);

    let reply = a.post("/security/sign-out-everywhere", &[("csrf", &token)]).await;
    assert_eq!(reply.location(), "/login");
    assert!(d.w.query("SELECT * FROM dashboard_sessions").is_empty());
    assert_eq!(c.get("/").await.location(), "/login?expired=1");
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_an_https_proxy_cookies_are_secure_and_its_origin_is_accepted() {
    let mut w = World::new().await;
    w.set_env("TGPLOY_DASHBOARD_PUBLIC_URL", "https://backups.example.org");
    let mut d = Dash::start_in(w).await;
    let mut c = d.client();
    c.origin = Some("https://backups.example.org".into());
    let code = d.codes.next().await;
    let reply = c.sign_in(PASSWORD, &code).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(reply.set_cookies().iter().all(|s| s.contains("; Secure")), "{:?}", reply.set_cookies());
    let token = c.token().await;
    assert_eq!(c.post("/retry/now", &[("csrf", &token)]).await.status, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_dashboard_cleanly() {
    let d = Dash::start().await;
    let (code, logs) = d.server.stop("TERM", Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("tgploy: dashboard stopped"), "{logs}");
}
