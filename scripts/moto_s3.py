"""Sets up and reads the local S3 server (moto) the way the SAM template sets up AWS: a
bucket whose ObjectCreated events for the uploads prefix go to an SQS queue. Used by
tests/s3.rs; talks to the server named by AWS_ENDPOINT_URL with boto3 (installed with moto).

  moto_s3.py setup BUCKET QUEUE PREFIX   create both and the notification
  moto_s3.py receive QUEUE [WAIT]        print the queue's messages as the SQS event Lambda gets
"""

import json
import sys
import time

import boto3


def clients():
    return boto3.client("s3"), boto3.client("sqs")


def setup(bucket, queue, prefix):
    s3, sqs = clients()
    s3.create_bucket(Bucket=bucket)
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
    elif command == "receive":
        receive(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 10)
    else:
        sys.exit(f"unknown command {command}")
