"""Stand template.yaml up in moto and run its handlers in-process, as Lambda would.

`Stack` creates the template's table, topic and queues, computes each function's
environment from the template (parameters, Globals, Refs resolved to the moto resources),
routes an event to the functions whose EventBridge rules match it (moto's matcher), and
calls the handler declared for that function. `sample` loads an event from events/ with real
ids substituted and fresh event ids; `sqs_event` turns queue messages into the event the SQS
event source mapping would invoke the function with; `sqs_clock_ahead` lets delayed messages
(the grace queue's) become visible without waiting.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import moto.sqs.models
from moto.events.models import EventPattern

from peerguard.demo.replay import from_sample
from peerguard.usecases.pipeline import reset_runtimes
from tests.cfn import ROOT, functions, template

REGION = "us-east-1"
EVENTS = ROOT / "events"


def sample(stem: str, ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """events/<stem>.json with the story's ids replaced by `ids` (in requestParameters and
    responseElements) and a fresh `id` and detail.eventID, as a new CloudTrail record has."""
    return from_sample(json.loads((EVENTS / f"{stem}.json").read_text()), ids or {})


@contextmanager
def sqs_clock_ahead(seconds: float) -> Iterator[None]:
    """moto's SQS sees a clock `seconds` ahead: delayed messages become receivable."""
    real = moto.sqs.models.unix_time_millis

    def ahead(dt: Any = None) -> float:
        return float(real(dt)) + seconds * 1000

    moto.sqs.models.unix_time_millis = ahead
    try:
        yield
    finally:
        moto.sqs.models.unix_time_millis = real


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"


class Stack:
    """The template's stateful resources in moto, plus its functions' environments."""

    def __init__(self, parameters: dict[str, str] | None = None) -> None:
        self.template = template()
        self.parameters = {
            name: str(p.get("Default", "")) for name, p in self.template["Parameters"].items()
        }
        self.parameters.update(parameters or {})
        self.physical: dict[str, str] = {}
        self._create_resources()
        self._modules: dict[str, ModuleType] = {}

    # -- resources ------------------------------------------------------------

    def _create_resources(self) -> None:
        ddb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        for name, res in self.template["Resources"].items():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::DynamoDB::Table":
                ddb.create_table(
                    TableName=name,
                    AttributeDefinitions=props["AttributeDefinitions"],
                    KeySchema=props["KeySchema"],
                    BillingMode=props["BillingMode"],
                    GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
                )
                ttl = props["TimeToLiveSpecification"]
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
                self.physical[name] = name
            elif res["Type"] == "AWS::SQS::Queue":
                self.physical[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
            elif res["Type"] == "AWS::SNS::Topic":
                self.physical[name] = sns.create_topic(Name=name)["TopicArn"]

    def subscribe_queue(self, topic: str = "AlertTopic") -> str:
        """An SQS queue receiving the topic's messages raw, with their attributes."""
        sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        url = sqs.create_queue(QueueName=f"{topic}-subscriber")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=self.physical[topic],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def messages(self, queue_url_or_name: str) -> list[dict[str, Any]]:
        """Drain a queue: every message body (JSON-decoded when it is JSON) with attributes."""
        url = self.physical.get(queue_url_or_name, queue_url_or_name)
        sqs = boto3.client("sqs", region_name=REGION)
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return out
            for m in got:
                try:
                    body = json.loads(m["Body"])
                except json.JSONDecodeError:
                    body = m["Body"]
                out.append({"body": body, "attributes": m.get("MessageAttributes", {}), "raw": m})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def queue_arn(self, queue: str) -> str:
        sqs = boto3.client("sqs", region_name=REGION)
        url = self.physical.get(queue, queue)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def sqs_event(self, queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The Lambda event for messages received from `queue` (from `messages`)."""
        arn = self.queue_arn(queue)
        records = []
        for m in messages:
            raw = m["raw"]
            records.append(
                {
                    "messageId": raw["MessageId"],
                    "receiptHandle": raw["ReceiptHandle"],
                    "body": raw["Body"],
                    "attributes": raw.get("Attributes", {}),
                    "messageAttributes": raw.get("MessageAttributes", {}),
                    "md5OfBody": raw["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
            )
        return {"Records": records}

    # -- environment ----------------------------------------------------------

    def _resolve(self, value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            return self.parameters.get(ref) or self.physical.get(ref, "")
        if isinstance(value, dict) and "Fn::If" in value:
            cond, yes, no = value["Fn::If"]
            return self._resolve(yes if self.condition(cond) else no)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else str(target).split(".")[0]
            return self.physical.get(name, "")  # resources moto does not hold: none
        return str(value)

    def condition(self, name: str) -> bool:
        """A condition of the template, evaluated on this stack's parameters."""
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expr: Any) -> bool:
        ((fn, args),) = expr.items()
        if fn in ("Condition", "Fn::Condition"):
            return self.condition(args)
        if fn == "Fn::Equals":
            return self._resolve(args[0]) == self._resolve(args[1])
        if fn == "Fn::And":
            return all(self._truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in args)
        if fn == "Fn::Not":
            return not self._truth(args[0])
        raise ValueError(f"condition function {fn} is not understood by the harness")

    def environment(self, function: str) -> dict[str, str]:
        glob = self.template["Globals"]["Function"]["Environment"]["Variables"]
        own = functions()[function]["Properties"].get("Environment", {}).get("Variables", {})
        return {k: self._resolve(v) for k, v in {**glob, **own}.items()}

    # -- functions --------------------------------------------------------------

    def routes(self, event: dict[str, Any]) -> list[str]:
        """The functions whose EventBridge rules match `event`."""
        hits = []
        for name, fn in functions().items():
            for source in fn["Properties"].get("Events", {}).values():
                if source["Type"] != "EventBridgeRule":
                    continue
                pattern = EventPattern.load(json.dumps(source["Properties"]["Pattern"]))
                if pattern.matches_event(event):  # type: ignore[arg-type]
                    hits.append(name)
        return sorted(set(hits))

    def has_handler(self, function: str) -> bool:
        """False while the function's code does not define its handler yet."""
        attr = functions()[function]["Properties"]["Handler"].rsplit(".", 1)[1]
        self.handler_module(function)
        return hasattr(self._modules[function], attr)

    def handler_module(self, function: str) -> ModuleType:
        if function not in self._modules:
            props = functions()[function]["Properties"]
            module, _ = props["Handler"].rsplit(".", 1)
            path = ROOT / props["CodeUri"] / f"{module}.py"
            spec = importlib.util.spec_from_file_location(f"e2e_{function}", path)
            assert spec and spec.loader
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            self._modules[function] = mod
        return self._modules[function]

    def handler(self, function: str) -> Callable[[dict[str, Any], Any], Any]:
        attr = functions()[function]["Properties"]["Handler"].rsplit(".", 1)[1]
        return getattr(self.handler_module(function), attr)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Call the function's handler with the environment the template gives it."""
        # Lambda sets the function name; Powertools idempotency keys start with it, so two
        # functions handling the same event keep separate records.
        env = {**self.environment(function), "AWS_LAMBDA_FUNCTION_NAME": function}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        reset_runtimes()
        try:
            return self.handler(function)(event, LambdaContext(function))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            reset_runtimes()

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """EventBridge: invoke every function whose rule matches; their results by name."""
        return {name: self.invoke(name, event) for name in self.routes(event)}
