//! Integration tests, compiled as one binary: a real S3 server (s3s-fs) and a fake Bot
//! API in this process, the built `tgploy` run against them.

// A test crate: its helpers are crate-wide, undocumented, and may unwrap.
#![allow(unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod bots;
mod browser;
mod captions;
// The binary's command line, compiled here too: tests parse with it.
mod claims;
mod cli;
#[path = "../../src/cli.rs"]
mod command_line;
mod container;
mod dashboard;
mod dashboard_client;
mod faults;
mod freshness;
mod harness;
mod live;
mod metrics;
mod outside;
mod packs;
mod private_state;
mod probe;
mod restore;
mod restore_all;
mod setup;
mod shell;
mod support;
mod support_selftest;
mod sync;
mod tidy;
mod webhook;
