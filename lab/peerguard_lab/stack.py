"""template.yaml stood up in moto, its handlers run in-process as Lambda would run them.

`Stack` creates the template's table, queues and topic through the `Clients` it is given
(in-process `mock_aws` for tests, the emulator's loopback server for the demo), gives each
function the environment the template gives it (parameters, Globals, Refs resolved to the
created resources), routes an event to the functions whose EventBridge rules match it
(moto's matcher) and calls the handler declared for each, in a fresh runtime.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import moto.sqs.models
from moto.events.models import EventPattern

from peerguard.aws.clients import Clients
from peerguard.usecases.pipeline import reset_runtimes
from peerguard_lab import ACCOUNT, REGION
from peerguard_lab.template import ROOT, functions, template

Handler = Callable[[dict[str, Any], Any], Any]

__all__ = [
    "ACCOUNT",
    "REGION",
    "LambdaContext",
    "Stack",
    "create_table",
    "metrics_from_environment",
    "quiet",
    "routes",
    "sqs_clock_ahead",
]


def create_table(dynamodb: Any, name: str, resource: str = "StateTable") -> None:
    """The table exactly as template.yaml declares `resource`: keys, indexes, expiry."""
    props = template()["Resources"][resource]["Properties"]
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
    )
    if "TimeToLiveSpecification" in props:
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"]
        )


def routes(event: Mapping[str, Any]) -> list[str]:
    """The functions whose EventBridge rules match `event` (schedules are not rules)."""
    hits = set()
    for name, fn in functions().items():
        for source in fn["Properties"].get("Events", {}).values():
            if source["Type"] != "EventBridgeRule":
                continue
            pattern = EventPattern.load(json.dumps(source["Properties"]["Pattern"]))
            if pattern.matches_event(dict(event)):  # type: ignore[arg-type]
                hits.add(name)
    return sorted(hits)


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 120_000  # what Lambda reports left of the invocation (fixed here)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Stack:
    """The template's stateful resources in moto, plus its functions, invocable."""

    def __init__(
        self, parameters: Mapping[str, str] | None = None, clients: Clients | None = None
    ) -> None:
        self.template = template()
        self.clients = clients or Clients(boto3.Session(region_name=REGION), default_region=REGION)
        self.sqs = self.clients.client("sqs")
        self.parameters = self._parameters(parameters or {})
        self.physical: dict[str, str] = {}
        self._modules: dict[str, ModuleType] = {}
        self._create_resources()

    # -- resources ------------------------------------------------------------

    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, str]:
        """The template's defaults with `overrides`; a name the template lacks is an error."""
        params = {n: str(p.get("Default", "")) for n, p in self.template["Parameters"].items()}
        unknown = set(overrides) - set(params)
        if unknown:
            raise ValueError(f"not a template parameter: {', '.join(sorted(unknown))}")
        return {**params, **overrides}

    def _create_resources(self) -> None:
        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::DynamoDB::Table":
                create_table(self.clients.client("dynamodb"), name, name)
                self.physical[name] = name
            elif res["Type"] == "AWS::SQS::Queue":
                self.physical[name] = self.sqs.create_queue(QueueName=name)["QueueUrl"]
            elif res["Type"] == "AWS::SNS::Topic":
                topic = self.clients.client("sns").create_topic(Name=name)
                self.physical[name] = topic["TopicArn"]

    def subscribe_queue(self, topic: str = "AlertTopic", raw: bool = True) -> str:
        """An SQS queue subscribed to the topic: raw messages with their attributes, or
        (`raw=False`) the SNS envelope, which keeps the subject."""
        url = str(self.sqs.create_queue(QueueName=f"{topic}-subscriber")["QueueUrl"])
        self.clients.client("sns").subscribe(
            TopicArn=self.physical[topic],
            Protocol="sqs",
            Endpoint=self.queue_arn(url),
            Attributes={"RawMessageDelivery": "true" if raw else "false"},
        )
        return url

    def queue_arn(self, queue: str) -> str:
        url = self.physical.get(queue, queue)
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def messages(self, queue_url_or_name: str) -> list[dict[str, Any]]:
        """Drain a queue: every message body (JSON-decoded when it is JSON) with attributes."""
        url = self.physical.get(queue_url_or_name, queue_url_or_name)
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
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
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

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
                    "awsRegion": self.clients.region,
                }
            )
        return {"Records": records}

    # -- functions --------------------------------------------------------------

    def environment(self, function: str) -> dict[str, str]:
        """The function's variables (Globals, then its own) with every !Ref resolved."""

        def holds(cond: Any) -> bool:
            """A template condition on these parameters (Equals, And, Or, Not, Condition)."""
            ((fn, args),) = (
                self.template["Conditions"][cond] if isinstance(cond, str) else cond
            ).items()
            if fn in ("Condition", "Fn::Condition"):
                return holds(args)
            if fn == "Fn::Equals":
                return resolve("", args[0]) == resolve("", args[1])
            if fn in ("Fn::And", "Fn::Or"):
                return (all if fn == "Fn::And" else any)(holds(a) for a in args)
            if fn == "Fn::Not":
                return not holds(args[0])
            raise ValueError(f"{function}: condition {fn} is not supported")

        def resolve(name: str, value: Any) -> str:
            if not isinstance(value, dict):
                return str(value)
            if set(value) == {"Fn::If"}:  # !If [cond, yes, no]
                cond, yes, no = value["Fn::If"]
                return resolve(name, yes if holds(cond) else no)
            if set(value) == {"Fn::GetAtt"}:  # resources moto does not hold: none
                target = value["Fn::GetAtt"]
                resource = target[0] if isinstance(target, list) else str(target).split(".")[0]
                return self.physical.get(resource, "")
            if set(value) != {"Ref"}:
                raise ValueError(f"{function} {name}: only !Ref is supported, got {value}")
            ref = value["Ref"]
            if ref in self.parameters:
                return self.parameters[ref]
            if ref in self.physical:
                return self.physical[ref]
            raise ValueError(f"{function} {name}: !Ref {ref} names nothing created")

        glob = self.template["Globals"]["Function"]["Environment"]["Variables"]
        own = functions()[function]["Properties"].get("Environment", {}).get("Variables", {})
        return {k: resolve(k, v) for k, v in {**glob, **own}.items()}

    def routes(self, event: Mapping[str, Any]) -> list[str]:
        return routes(event)

    def handler(self, function: str) -> Handler | None:
        """The function's handler, loaded from its CodeUri; None while its code lacks it."""
        props = functions()[function]["Properties"]
        module_name, attr = props["Handler"].rsplit(".", 1)
        if function not in self._modules:
            path = ROOT / props["CodeUri"] / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(f"peerguard_lab_{function}", path)
            assert spec is not None and spec.loader is not None, f"no handler code at {path}"
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[function] = module
        found = getattr(self._modules[function], attr, None)
        return found if callable(found) else None

    def has_handler(self, function: str) -> bool:
        """False while the function's code does not define its handler yet."""
        return self.handler(function) is not None

    def invoke(self, function: str, event: dict[str, Any], remaining_ms: int | None = None) -> Any:
        """Call the handler as Lambda would: the template's environment, clients that reach
        only moto, and a new cold start (the runtimes are reset before and after).
        `remaining_ms`: what the context says is left of the invocation (default 120 s)."""
        env = {
            **self.environment(function),
            # Lambda sets these; Powertools idempotency keys start with the function name, so
            # two functions handling the same event keep separate records.
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_REGION": self.clients.region,
        }
        if self.clients.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.clients.endpoint_url
        with _environment(env):
            # Loaded (on first use) with the environment set, as Lambda imports it.
            handler = self.handler(function)
            if handler is None:
                return {"status": "not-run", "reason": f"{function} has no handler in its code yet"}
            reset_runtimes(self.clients.session)  # the handler's clients: this stack's session
            try:
                context = LambdaContext(function)
                if remaining_ms is not None:
                    context.remaining_ms = remaining_ms
                with metrics_from_environment():
                    return handler(event, context)
            finally:
                reset_runtimes()

    def schedules(self) -> dict[str, list[str]]:
        """The functions the template runs on a schedule, with their Schedule events' names."""
        out: dict[str, list[str]] = {}
        for name, fn in functions().items():
            for event_name, source in fn["Properties"].get("Events", {}).items():
                if source["Type"] == "Schedule":
                    out.setdefault(name, []).append(event_name)
        return out

    def tick(
        self, function: str, when: datetime | None = None, remaining_ms: int | None = None
    ) -> Any:
        """EventBridge Scheduler's tick for `function` (at `when`, default now), invoked as
        the template routes it: refused for a function the template schedules nothing for."""
        if function not in self.schedules():
            raise ValueError(f"{function} has no Schedule event in template.yaml")
        rule = self.schedules()[function][0]
        at = (when or datetime.now(UTC)).astimezone(UTC)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.clients.account_id(),
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.clients.region,
            "resources": [
                f"arn:aws:events:{self.clients.region}:{self.clients.account_id()}:rule/"
                f"{function}-{rule}"
            ],
            "detail": {},
        }
        return self.invoke(function, event, remaining_ms)

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """EventBridge: invoke every function whose rule matches; their results by name."""
        return {name: self.invoke(name, event) for name in self.routes(event)}


@contextlib.contextmanager
def sqs_clock_ahead(seconds: float) -> Iterator[None]:
    """In-process moto's SQS sees a clock `seconds` ahead: delayed messages become receivable."""
    real = moto.sqs.models.unix_time_millis

    def ahead(dt: Any = None) -> float:
        return float(real(dt)) + seconds * 1000

    moto.sqs.models.unix_time_millis = ahead
    try:
        yield
    finally:
        moto.sqs.models.unix_time_millis = real


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def metrics_from_environment() -> Iterator[None]:
    """Powertools reads the metrics namespace and service at import; in this process the
    handlers' modules may have been imported before the template's environment was set."""
    from peerguard.observability import metrics

    saved = (metrics.namespace, metrics.service)
    metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or saved[0]
    metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME") or saved[1]
    try:
        yield
    finally:
        metrics.namespace, metrics.service = saved


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The handlers' JSON logs and EMF metrics go to stdout in Lambda; not in the demo."""
    from peerguard.observability import logger

    handler = logger.registered_handler
    sink = io.StringIO()
    stream = handler.setStream(sink) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        if isinstance(handler, logging.StreamHandler) and stream is not None:
            handler.setStream(stream)
