#!/usr/bin/env bash
# Rerunnable benchmarks against the in-process S3 server (s3s-fs) and the fake Bot API.
# Each prints its figures on lines starting with BENCH, with ratios against the raw work
# measured in the same run (shared machines make absolute times move):
#   bench_deliver_large_objects         P1/P2: 1 GiB and 4 GiB objects (BENCH_GIB=1,4) against an
#                                       S3 GET and a plain multipart upload of the same parts;
#                                       peak RSS, the most part files on disk at once
#   bench_restore_1_gib                 restore of 1 GiB, plain and age-encrypted
#   bench_restore_all                   P6: restore --all of 25 objects and restore of 200 MiB at 4 MiB/s
#                                       per download, against the same parts downloaded 4 at a time;
#                                       peak RSS of restore --all over 10,000 objects (BENCH_OBJECTS)
#   bench_sync_10000_small_objects      first sync of many small objects with pacing off, then
#                                       no-op syncs against the listing alone (BENCH_SMALL_OBJECTS)
#   bench_no_op_sync_over_a_million_... P5: peak RSS and time of a no-op sync over 1,000,000
#                                       recorded objects against the listing alone (BENCH_OBJECTS)
#   bench_retry_drains_500_...          retry draining 500 due failures
#   bench_webhook_accepts_events        P4: serve-webhook under 16 senders (BENCH_SECONDS, default 30)
#   bench_three_bots_against_one_...    P7: a batch of small objects (BENCH_MESSAGES, default 150) by
#                                       one bot and by three under the fake's flood limit per (bot,
#                                       chat); 429 answers per 100 messages
#   bench_dashboard_pages_with_...      every dashboard page over 100,000 deliveries, p50/p99
#                                       (BENCH_REQUESTS per page, default 300)
#   bench_live_dashboard_streams        100 live streams of the overview (BENCH_STREAMS) for 5 minutes
#                                       (BENCH_LIVE_SECONDS, default 300) over 100,000 deliveries
#                                       (BENCH_LIVE_DELIVERIES) while sync delivers 128 MiB objects, against
#                                       the same deliveries with no viewer before and after; dashboard CPU and
#                                       RSS, part commit to stream p50/p95
#   bench_packs                         P8: 10,000 objects of 4 KiB (BENCH_PACKED_OBJECTS) at the default
#                                       pace under Telegram's flood limit: messages, Telegram's time, 429s;
#                                       a mixed bucket of 1 KiB - 2 MiB (BENCH_MIXED_OBJECTS, default 600;
#                                       0 leaves it out): messages per small object; restore --all of the
#                                       10,000 against downloading the packs 4 at a time at 4 MiB/s each and
#                                       against writing 10,000 files durably 4 at a time (medians of
#                                       BENCH_ROUNDS, default 3)
# Usage: benches/run.sh [NAME-FILTER...]   (all of them without a filter)
#   BASELINE=<commit> benches/run.sh ...   also measures tgploy built at that commit, in the
#                                          same run, for before/after figures
# Peak memory comes from /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/.."
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(bench_)
if [ -n "${BASELINE:-}" ]; then
    dir="target/baseline/$BASELINE"
    [ -d "$dir" ] || git worktree add --detach "$dir" "$BASELINE" >&2
    (cd "$dir" && cargo build --release --locked >&2)
    export TGPLOY_BASELINE_BIN="$PWD/$dir/target/release/tgploy"
fi
cargo bench --locked --bench e2e -- "${filters[@]}" 2>&1 \
    | grep -E 'BENCH|panicked|error' | sed -E 's/^.*(BENCH)/\1/'
