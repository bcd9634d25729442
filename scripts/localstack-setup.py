"""Three functions with an alias `live` in LocalStack, and 20 minutes of their
ConcurrentExecutions: peaks of 14, 3.5 and 7 (20, 5 and 10 at target 0.7) two and three
minutes ago, half that otherwise. Used by scripts/localstack-check.sh."""
import datetime
import io
import time
import zipfile

import boto3

ep = "http://127.0.0.1:4566"
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
lam = boto3.client("lambda", **kw)
cw = boto3.client("cloudwatch", **kw)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("index.py", "def handler(event, context):\n    return 1\n")
code = buf.getvalue()
now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
for name, peak in [("ls-a", 14.0), ("ls-b", 3.5), ("ls-c", 7.0)]:
    try:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x", Handler="index.handler", Code={"ZipFile": code})
    except lam.exceptions.ResourceConflictException:
        pass
    # In host mode it cannot run the function: it leaves Pending for Failed.
    for _ in range(30):
        if lam.get_function(FunctionName=name)["Configuration"].get("State") != "Pending":
            break
        time.sleep(1)
    version = lam.publish_version(FunctionName=name)["Version"]
    try:
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    except lam.exceptions.ResourceConflictException:
        pass
    data = []
    for minute in range(1, 21):
        data.append({"MetricName": "ConcurrentExecutions", "Dimensions": [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:live"}], "Timestamp": now - datetime.timedelta(minutes=minute), "Value": peak if minute in (3, 4) else peak / 2, "Unit": "Count"})
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
print("localstack: 3 functions and their metrics are set up")
