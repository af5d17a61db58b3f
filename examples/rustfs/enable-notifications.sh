#!/bin/sh
# Adds the tgploy notification rule to a bucket on RustFS, with any S3 client's
# PutBucketNotificationConfiguration; here the AWS CLI.
#   usage: enable-notifications.sh BUCKET [ENDPOINT]
# Some RustFS versions want the region in the ARN:
#   arn:rustfs:sqs:us-east-1:primary:webhook
set -eu
bucket=$1
endpoint=${2:-http://127.0.0.1:9000}
here=$(dirname "$0")
aws --endpoint-url "$endpoint" s3api put-bucket-notification-configuration \
    --bucket "$bucket" \
    --notification-configuration "file://$here/bucket-notification.json"
aws --endpoint-url "$endpoint" s3api get-bucket-notification-configuration --bucket "$bucket"
