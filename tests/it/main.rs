//! Integration tests, compiled as one binary: a real S3 server (s3s-fs) and a fake Bot
//! API in this process, the built `tgploy` run against them.

mod bots;
mod browser;
mod captions;
mod claims;
mod cli;
mod container;
mod dashboard;
mod dashboard_client;
mod faults;
mod freshness;
mod harness;
mod live;
mod metrics;
mod private_state;
mod probe;
mod restore;
mod restore_all;
mod setup;
mod shell;
mod support;
mod support_selftest;
mod sync;
mod webhook;
