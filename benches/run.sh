#!/usr/bin/env bash
# Rerunnable benchmarks against the in-process S3 server (s3s-fs) and the fake Bot API:
#   bench_deliver_1_gib_object          time and peak memory to deliver a 1 GiB object
#   bench_restore_1_gib                 time and peak memory to restore a 1 GiB object, plain and
#                                       age-encrypted (19 MiB parts, from the ledger)
#   bench_no_op_sync_over_10000_...     a no-op sync over 10,000 delivered objects
#   bench_retry_drains_500_...          retry draining 500 due failures
#   bench_webhook_accepts_events        serve-webhook under load (BENCH_SECONDS, default 30)
#   bench_dashboard_pages_with_...      every dashboard page over 100,000 deliveries, p50/p99
#                                       (BENCH_REQUESTS per page, default 300)
# Usage: benches/run.sh [NAME-FILTER...]   (all of them without a filter)
# Figures are printed on lines starting with BENCH; peak memory comes from /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/.."
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(bench_)
cargo test --locked --release --test it -- --ignored --nocapture --test-threads 1 "${filters[@]}" 2>&1 \
    | grep -E 'BENCH|test result|panicked' | sed -E 's/^.*(BENCH)/\1/'
