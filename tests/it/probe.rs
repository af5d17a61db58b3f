//! `tgploy probe`, the healthcheck of the long-running servers: against `serve-webhook`
//! and the dashboard, and what it says when nothing healthy answers.

use crate::dashboard_client::{Client, Dash};
use crate::harness::World;

#[tokio::test(flavor = "multi_thread")]
async fn probe_passes_on_a_running_webhook_server_and_says_why_it_fails() {
    let mut w = World::new().await;
    let server = w.start_webhook(&[]);

    let out = w.run(&["probe", &format!("{}/healthz", server.url)]).await;
    out.success();
    assert!(out.stdout.starts_with(&format!("OK: {}/healthz answered 200 in ", server.url)), "{}", out.stdout);

    // Without a URL: serve-webhook's /healthz at webhook.listen.
    let listen = server.url.trim_start_matches("http://").to_string();
    w.set_env("TGPLOY_WEBHOOK_LISTEN", &listen);
    w.run(&["probe"]).await.success();
    w.set_env("TGPLOY_WEBHOOK_LISTEN", &format!("0.0.0.0:{}", listen.rsplit(':').next().unwrap()));
    let out = w.run(&["probe"]).await;
    out.success();
    assert!(out.stdout.contains("http://127.0.0.1:"), "every address is asked over loopback: {}", out.stdout);

    // Given a URL it needs no settings, not even a config file that loads.
    w.set_env("TGPLOY_CONFIG", &w.dir.path().join("missing.toml").display().to_string());
    w.run(&["probe", &format!("{}/healthz", server.url)]).await.success();
    w.run(&["probe"]).await.code(2);
    w.unset_env("TGPLOY_CONFIG");

    // An answer that is not 2xx, and no answer at all: one line, exit 1.
    let out = w.run(&["probe", &format!("{}/nothing-here", server.url)]).await;
    out.code(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("answered 404 Not Found"), "{}", out.stderr);
    server.kill();
    let out = w.run(&["probe", "--timeout", "2s"]).await;
    out.code(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("did not answer") && out.stderr.contains("refused"), "{}", out.stderr);

    let out = w.run(&["probe", "localhost:8080/healthz"]).await;
    out.code(2);
    assert!(out.stderr.contains("is not an http:// or https:// URL"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_answers_healthz_without_a_session() {
    let d = Dash::start().await;
    let health = Client::new(&d.server.url).get("/healthz").await;
    health.status(200);
    assert_eq!(health.body, "ok");
    assert_eq!(health.headers["cache-control"], "no-store");
    assert!(health.set_cookies().is_empty(), "no session for a probe");
    let out = d.w.run(&["probe", &format!("{}/healthz", d.server.url)]).await;
    out.success();
    // The dashboard's other pages send strangers to sign in: not healthy for a probe.
    let out = d.w.run(&["probe", &format!("{}/", d.server.url)]).await;
    out.code(1);
    assert!(out.stderr.contains("answered 303"), "{}", out.stderr);
    // A ledger that cannot be read is not healthy.
    d.w.execute("ALTER TABLE deliveries RENAME TO deliveries_gone");
    let out = d.w.run(&["probe", &format!("{}/healthz", d.server.url)]).await;
    out.code(1);
    assert!(out.stderr.contains("answered 503") && out.stderr.contains("ledger"), "{}", out.stderr);
}
