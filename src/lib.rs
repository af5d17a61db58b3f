//! tgploy: an off-site disaster-recovery courier from S3-compatible buckets to Telegram.
//!
//! The library does the work and never sees the command line: the binary (`src/main.rs`,
//! with `cli.rs` and `commands/`) parses the arguments, calls one library function per
//! command, renders its report and exits with the code its error maps to. Only
//! [`ledger`] speaks SQL, only [`source`] speaks S3, only [`sink`] speaks Telegram;
//! [`run`], [`deliver`], [`sync`] and the other operations sit in between.
//! `ARCHITECTURE.md` is the map.

pub(crate) mod alert;
pub(crate) mod alongside;
pub(crate) mod backoff;
pub(crate) mod bearer;
pub mod buckets;
pub mod config;
pub(crate) mod crypt;
pub mod dashboard;
pub mod deliver;
pub mod doctor;
pub mod error;
pub mod filter;
pub mod freshness;
pub mod heartbeat;
pub mod ledger;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod output;
pub(crate) mod owner;
pub(crate) mod private_files;
pub mod probe;
pub(crate) mod progress;
pub mod restore;
pub mod retry;
pub mod run;
pub mod scan;
pub mod setup;
pub(crate) mod shell;
pub mod shutdown;
pub mod sink;
pub mod sizes;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod sync;
pub mod time;
pub mod totp;
pub mod verify;
pub mod webhook;

pub use error::{Error, ExitCode, Result};
