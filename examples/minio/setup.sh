#!/bin/sh
# MinIO equivalent of examples/rustfs/: a webhook target named "primary" and a bucket
# rule for new objects, with the MinIO client `mc`.
#   usage: setup.sh ALIAS BUCKET TOKEN
# Or set the target through MinIO's environment instead of `mc admin config set`:
#   MINIO_NOTIFY_WEBHOOK_ENABLE_PRIMARY=on
#   MINIO_NOTIFY_WEBHOOK_ENDPOINT_PRIMARY=http://127.0.0.1:8080/webhook
#   MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_PRIMARY=<token>
#   MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_PRIMARY=/var/lib/minio/notify-queue
set -eu
alias=$1
bucket=$2
token=$3
mc admin config set "$alias" notify_webhook:primary \
    endpoint="http://127.0.0.1:8080/webhook" \
    auth_token="$token" \
    queue_dir="/var/lib/minio/notify-queue"
mc admin service restart "$alias"
mc event add "$alias/$bucket" arn:minio:sqs::primary:webhook --event put
mc event list "$alias/$bucket"
