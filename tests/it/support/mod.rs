//! Test doubles shared by the integration tests: a fake Telegram Bot API and a real in-process S3.
#![allow(dead_code)]

pub mod s3;
pub mod telegram;
