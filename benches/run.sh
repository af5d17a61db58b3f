#!/usr/bin/env bash
# Rerunnable benchmarks: a 1 GiB object delivered from an in-process S3 server (s3s-fs)
# to the fake Bot API, and a no-op `sync` over 10,000 already-delivered objects. Figures
# are printed on lines starting with BENCH. Peak memory comes from /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --release --test it -- --ignored --nocapture --test-threads 1 bench_ "$@" 2>&1 | grep -E '^BENCH|test result|panicked'
