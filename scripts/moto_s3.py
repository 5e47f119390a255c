"""Sets up and reads the local S3 server (moto) the way the SAM template sets up AWS: a
versioned bucket whose ObjectCreated events for the uploads prefix go to an SQS queue, and the
ID-number key in Secrets Manager. Used by tests/s3.rs; talks to the server named by
AWS_ENDPOINT_URL with boto3 (installed with moto).

  moto_s3.py setup BUCKET QUEUE PREFIX     create them and the notification
  moto_s3.py secret NAME VALUE             store the ID-number key
  moto_s3.py receive QUEUE [WAIT]          print the queue's messages as the SQS event Lambda gets
  moto_s3.py versions BUCKET KEY           print each version of an object: id, size, sha256
"""

import hashlib
import json
import sys
import time

import boto3


def clients():
    return boto3.client("s3"), boto3.client("sqs")


def setup(bucket, queue, prefix):
    s3, sqs = clients()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
            ]
        },
    )
    # S3 announces a new notification with a test event: drain it as Lambda would skip it.
    sqs.purge_queue(QueueUrl=url)


def secret(name, value):
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)


def versions(bucket, key):
    s3 = boto3.client("s3")
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    out = []
    for v in listed:
        if v["Key"] != key:
            continue
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
        out.append(
            {
                "version": v["VersionId"],
                "latest": v["IsLatest"],
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        )
    print(json.dumps(out))


def receive(queue, wait):
    _, sqs = clients()
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = []
    deadline = time.time() + wait
    while time.time() < deadline:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        for m in got:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": arn.split(":")[3],
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if records and not got:
            break
    print(json.dumps({"Records": records}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "setup":
        setup(*sys.argv[2:5])
    elif command == "secret":
        secret(*sys.argv[2:4])
    elif command == "versions":
        versions(*sys.argv[2:4])
    elif command == "receive":
        receive(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 10)
    else:
        sys.exit(f"unknown command {command}")
