"""EventBridge on moto for tests/events.rs, through moto's own boto3.

  eventbridge.py setup URL   a queue `scaling`, and a rule on the default bus that sends
                             every pc-autoscaler event to it; prints nothing
  eventbridge.py drain URL   every message waiting in `scaling`, one JSON event a line
"""

import json
import sys

import boto3

url = sys.argv[2]
options = dict(endpoint_url=url, region_name="us-east-1",
               aws_access_key_id="test", aws_secret_access_key="test")
sqs = boto3.client("sqs", **options)

if sys.argv[1] == "setup":
    queue = sqs.create_queue(QueueName="scaling")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", **options)
    events.put_rule(Name="scaling", EventPattern=json.dumps({"source": ["pc-autoscaler"]}))
    events.put_targets(Rule="scaling", Targets=[{"Id": "queue", "Arn": arn}])
else:
    queue = sqs.get_queue_url(QueueName="scaling")["QueueUrl"]
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            print(message["Body"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
