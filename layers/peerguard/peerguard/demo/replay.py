"""The demo's second act: each scenario's mistake as CloudTrail recorded it, replayed through the
real Lambda handlers, routed as template.yaml routes it, and the messages they send.

Everything stays inside the emulator: the template's table, topic and queues are created in
it, an SQS queue subscribed to the topic stands in for SNS subscribers, and a loopback HTTP
server stands in for Slack (its URL kept in a Secrets Manager secret, as deployed). The
events are the samples in events/ with the scenario's real ids substituted; the handlers run
with the environment the template gives them and `GracePeriodMinutes=0`, so route findings
are announced at once instead of after the grace queue's delay.

The template, the samples and the handlers are in the repository, not in the installed
package: without a checkout the replay says so and is skipped.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import logging
import os
import re
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from peerguard.demo.emulator import ACCOUNT, HOST, REGION, Emulator
from peerguard.demo.scenarios import PARTNER_ACCOUNT, WEST, Scenario

REPO = Path(__file__).resolve().parents[4]  # layers/peerguard/peerguard/demo/replay.py
SAMPLE_ACCOUNT = "123456789012"  # the account every sample in events/ is recorded in
WIDTH = 100

# The stack's parameters for the replay (the rest are the template's defaults).
PARAMETERS = {"GracePeriodMinutes": "0", "PeerRegions": WEST}


class NoCheckout(RuntimeError):
    """template.yaml, events/ or functions/ are missing: the replay needs a repo checkout."""


# -- events from the samples ---------------------------------------------------------------


def _substitute(value: Any, ids: Mapping[str, str]) -> Any:
    """Every occurrence of a key of `ids` replaced by its value, all at once (so a swap of two
    ids works), anywhere in the JSON value."""
    if not ids or value is None:
        return value
    pattern = re.compile("|".join(re.escape(k) for k in sorted(ids, key=len, reverse=True)))
    text = pattern.sub(lambda m: ids[m.group(0)], json.dumps(value))
    return json.loads(text)


def from_sample(
    sample: Mapping[str, Any], ids: Mapping[str, str], account: str | None = None
) -> dict[str, Any]:
    """A sample event with the story's ids (and CIDRs) replaced by `ids` in requestParameters and
    responseElements, a fresh `id` and detail.eventID (as a new record has), and, when
    `account` is given, recorded in that account instead of the sample's."""
    event = copy.deepcopy(dict(sample))
    detail = event.get("detail")
    event["id"] = str(uuid.uuid4())
    if not isinstance(detail, dict):
        return event
    for key in ("requestParameters", "responseElements"):
        if key in detail:
            detail[key] = _substitute(detail[key], ids)
    if "eventID" in detail:
        detail["eventID"] = str(uuid.uuid4())
    if account:
        event["account"] = account
        detail["recipientAccountId"] = account
        if "userIdentity" in detail:
            detail["userIdentity"] = _substitute(detail["userIdentity"], {SAMPLE_ACCOUNT: account})
    return event


@dataclass(frozen=True)
class Step:
    """One recorded call: which sample, with which ids, and what it did in the story."""

    sample: str
    ids: dict[str, str]
    what: str
    account: str | None = None
    note: str = ""


def steps_for(s: Scenario) -> list[Step]:
    """The CloudTrail events recorded when the scenario's mistake was made."""
    n = s.named
    rtb, pcx = "rtb-0a1b2c3d4e5f67890", "pcx-0a1b2c3d4e5f67890"
    if s.key == "web":
        return [
            Step(
                "CreateRoute",
                {rtb: n["rt-web-b"], pcx: n["web-to-db"], "10.1.0.0/16": "192.168.0.0/16"},
                f"web-b's route to the db tier: {n['rt-web-b']} 192.168.0.0/16 via "
                f"{n['web-to-db']} (db-b's table {n['rt-db-b']} has no way back)",
            )
        ]
    if s.key == "mesh":
        return [
            Step(
                "AcceptVpcPeeringConnection",
                {
                    pcx: n["inventory-user"],
                    "vpc-0a1b2c3d4e5f67890": n["inventory"],
                    "vpc-0b1c2d3e4f5a67891": n["user"],
                    "10.0.0.0/16": "10.1.0.0/16",
                    "10.1.0.0/16": "10.2.0.0/16",
                },
                f"inventory<->user peering {n['inventory-user']} accepted; no route follows",
            )
        ]
    if s.key == "eks":
        return [
            Step(
                "DeleteVpcPeeringConnection",
                {pcx: n["blue-green-old"]},
                f"the old peering {n['blue-green-old']} deleted while "
                f"{n['rt-green-nodes-2']} still routes through it",
            )
        ]
    if s.key == "private":
        return [
            Step(
                "CreateRoute",
                {
                    rtb: n["rt-reporting-private"],
                    pcx: n["batch-reporting"],
                    "10.1.0.0/16": "10.0.1.0/25",
                },
                f"reporting's return route: {n['rt-reporting-private']} 10.0.1.0/25 (not /24) via "
                f"{n['batch-reporting']}",
            )
        ]
    if s.key == "overlap":
        return [
            Step(
                "CreateVpcPeeringConnection",
                {
                    "pcx-0d1e2f3a4b5c67893": n["partner-to-payments"],
                    "vpc-0a1b2c3d4e5f67890": n["partner-billing"],
                    "vpc-0c1d2e3f4a5b67892": n["payments"],
                    SAMPLE_ACCOUNT: PARTNER_ACCOUNT,
                    PARTNER_ACCOUNT: ACCOUNT,
                    WEST: REGION,
                },
                f"the partner requests {n['partner-billing']} <-> {n['payments']}, both "
                "10.0.0.0/16",
                account=PARTNER_ACCOUNT,
                note=f"recorded in the requester's account {PARTNER_ACCOUNT}; this account gets "
                "no event for a request (the acceptance poll finds it), so this shows what the "
                "handlers make of the record if it is forwarded",
            )
        ]
    if s.key == "hub":
        return [
            Step(
                "CreateRoute",
                {rtb: n["rt-team-a"], pcx: n["hub-team-a"], "10.1.0.0/16": "172.18.0.0/16"},
                f"team A routes team B's 172.18.0.0/16 to the hub: {n['rt-team-a']} via "
                f"{n['hub-team-a']}",
            )
        ]
    return []


# -- template.yaml: routing, environments, handlers --------------------------------------------


def cfn_loader() -> Any:
    """A YAML loader that reads CloudFormation short tags (!Ref x -> {"Ref": "x"})."""
    try:
        import yaml
    except ImportError:
        raise NoCheckout("PyYAML is needed to read template.yaml (pip install PyYAML)") from None

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return Loader


class Router:
    """The template's functions: which EventBridge rules match an event (moto's matcher, the
    one the e2e tests use), the environment each function gets, and its handler."""

    def __init__(self, template: dict[str, Any], root: Path) -> None:
        self.template = template
        self.root = root
        self.functions = {
            name: res
            for name, res in template["Resources"].items()
            if res["Type"] == "AWS::Serverless::Function"
        }
        self._modules: dict[str, ModuleType] = {}

    @classmethod
    def from_checkout(cls, root: Path = REPO) -> Router:
        path = root / "template.yaml"
        if not path.is_file() or not (root / "events").is_dir():
            raise NoCheckout(
                f"no template.yaml and events/ at {root}: the replay runs from a repository "
                "checkout (the installed package does not carry them)"
            )
        import yaml

        return cls(yaml.load(path.read_text(), Loader=cfn_loader()), root)

    def routes(self, event: dict[str, Any]) -> list[str]:
        from moto.events.models import EventPattern  # moto is the demo's dependency

        hits = set()
        for name, fn in self.functions.items():
            for source in fn["Properties"].get("Events", {}).values():
                if source["Type"] != "EventBridgeRule":
                    continue
                pattern = EventPattern.load(json.dumps(source["Properties"]["Pattern"]))
                if pattern.matches_event(event):  # type: ignore[arg-type]
                    hits.add(name)
        return sorted(hits)

    def parameters(self, overrides: Mapping[str, str]) -> dict[str, str]:
        params = {n: str(p.get("Default", "")) for n, p in self.template["Parameters"].items()}
        unknown = set(overrides) - set(params)
        if unknown:
            raise ValueError(f"not a template parameter: {', '.join(sorted(unknown))}")
        return {**params, **overrides}

    def environment(
        self, function: str, parameters: Mapping[str, str], physical: Mapping[str, str]
    ) -> dict[str, str]:
        """The function's variables (Globals, then its own) with every !Ref resolved."""

        def holds(cond: Any) -> bool:
            """A template condition on these parameters (Equals, And, Or, Not, Condition)."""
            ((fn, args),) = (
                self.template["Conditions"][cond] if isinstance(cond, str) else cond
            ).items()
            if fn in ("Condition", "Fn::Condition"):
                return holds(args)
            if fn == "Fn::Equals":
                return bool(resolve("", args[0]) == resolve("", args[1]))
            if fn in ("Fn::And", "Fn::Or"):
                return (all if fn == "Fn::And" else any)(holds(a) for a in args)
            if fn == "Fn::Not":
                return not holds(args[0])
            raise ValueError(f"{function}: condition {fn} is not supported")

        def resolve(name: str, value: Any) -> str:
            if isinstance(value, dict) and set(value) == {"Fn::If"}:  # !If [cond, yes, no]
                cond, yes, no = value["Fn::If"]
                return resolve(name, yes if holds(cond) else no)
            if isinstance(value, dict):
                if set(value) != {"Ref"}:
                    raise ValueError(f"{function} {name}: only !Ref is supported, got {value}")
                ref = value["Ref"]
                if ref in parameters:
                    return parameters[ref]
                if ref in physical:
                    return physical[ref]
                raise ValueError(f"{function} {name}: !Ref {ref} names nothing created")
            return str(value)

        glob = self.template["Globals"]["Function"]["Environment"]["Variables"]
        props = self.functions[function]["Properties"]
        own = props.get("Environment", {}).get("Variables", {})
        return {k: resolve(k, v) for k, v in {**glob, **own}.items()}

    def handler(self, function: str) -> Callable[[dict[str, Any], Any], Any] | None:
        """The function's handler, loaded from its CodeUri; None while its code lacks it."""
        props = self.functions[function]["Properties"]
        module_name, attr = props["Handler"].rsplit(".", 1)
        if function not in self._modules:
            path = self.root / props["CodeUri"] / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(f"peerguard_replay_{function}", path)
            if spec is None or spec.loader is None:
                raise NoCheckout(f"no handler code at {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[function] = module
        found = getattr(self._modules[function], attr, None)
        return found if callable(found) else None


# -- the stack inside the emulator ---------------------------------------------------------------


class SlackStandIn:
    """A loopback HTTP server that takes webhook posts like Slack does (200 ok)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_port}/services/T0DEMO/B0DEMO/demo"

    def __enter__(self) -> SlackStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def take(self) -> list[dict[str, Any]]:
        taken, self.posts[:] = list(self.posts), []
        return taken


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


class Stack:
    """The template's table, topic and queues in the emulator, a subscriber queue on the topic,
    and the functions invoked with the environment the template gives them."""

    def __init__(self, emu: Emulator, router: Router, slack_url: str) -> None:
        self.emu = emu
        self.router = router
        clients = emu.clients()
        self.sqs = clients.client("sqs")
        self.physical: dict[str, str] = {}
        for name, res in router.template["Resources"].items():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::DynamoDB::Table":
                clients.client("dynamodb").create_table(
                    TableName=name,
                    AttributeDefinitions=props["AttributeDefinitions"],
                    KeySchema=props["KeySchema"],
                    BillingMode=props["BillingMode"],
                    GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
                )
                self.physical[name] = name
            elif res["Type"] == "AWS::SQS::Queue":
                self.physical[name] = self.sqs.create_queue(QueueName=name)["QueueUrl"]
            elif res["Type"] == "AWS::SNS::Topic":
                self.physical[name] = clients.client("sns").create_topic(Name=name)["TopicArn"]
        secret = clients.client("secretsmanager").create_secret(
            Name="peerguard-demo/slack-webhook", SecretString=slack_url
        )
        self.parameters = router.parameters({**PARAMETERS, "SlackWebhookSecretArn": secret["ARN"]})
        self.subscriber = self._subscribe("AlertTopic", clients)

    def _subscribe(self, topic: str, clients: Any) -> str:
        url = str(self.sqs.create_queue(QueueName=f"{topic}-demo-subscriber")["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        clients.client("sns").subscribe(
            TopicArn=self.physical[topic],
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "false"},  # the SNS envelope keeps the subject
        )
        return url

    def sns_messages(self) -> list[dict[str, Any]]:
        """Drain the subscriber queue: each SNS message (Subject, Message, attributes)."""
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.subscriber, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.subscriber, ReceiptHandle=m["ReceiptHandle"])

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run the handler as Lambda would: the template's environment, clients that reach
        only the emulator, a fresh runtime; its logs and metrics are kept off the screen."""
        from peerguard.usecases.pipeline import reset_runtimes

        env = {
            **self.router.environment(function, self.parameters, self.physical),
            "AWS_ENDPOINT_URL": self.emu.url,
            "AWS_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": function,
        }
        with _environment(env):
            # Loaded (on first use) with the environment set, as Lambda imports it: Powertools
            # reads its namespace and log level at import.
            handler = self.router.handler(function)
            if handler is None:
                return {"status": "not-run", "reason": f"{function} has no handler in its code yet"}
            reset_runtimes()
            try:
                with _metrics_from_environment(), quiet():
                    return handler(event, LambdaContext(function))
            finally:
                reset_runtimes()


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
def _metrics_from_environment() -> Iterator[None]:
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


# -- the replay ------------------------------------------------------------------------------


@dataclass
class Replayed:
    """One scenario's events, what each function returned, and the messages they sent."""

    scenario: Scenario
    events: list[tuple[Step, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    sns: list[dict[str, Any]] = field(default_factory=list)


def replay(
    emu: Emulator, scenarios: list[Scenario], router: Router | None = None
) -> list[Replayed]:
    """Replay every scenario's steps; raises NoCheckout outside a repository checkout."""
    router = router or Router.from_checkout()
    out = []
    with SlackStandIn() as slack:
        stack = Stack(emu, router, slack.url)
        for scenario in scenarios:
            done = Replayed(scenario)
            for step in steps_for(scenario):
                sample = json.loads((router.root / "events" / f"{step.sample}.json").read_text())
                event = from_sample(sample, step.ids, step.account)
                results = {fn: stack.invoke(fn, event) for fn in router.routes(event)}
                done.events.append((step, event, results))
            done.slack = slack.take()
            done.sns = stack.sns_messages()
            out.append(done)
    return out


# -- rendering -----------------------------------------------------------------------------------

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def slack_text(payload: dict[str, Any]) -> list[str]:
    """A compact text rendering of a Block Kit message: header, context, sections."""
    lines: list[str] = []
    for block in payload.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            lines.append(f"# {block['text']['text']}")
        elif kind == "context":
            lines += [_plain(e.get("text", "")) for e in block.get("elements", [])]
        elif kind == "section":
            text = _plain(block.get("text", {}).get("text", ""))
            lines += [line for line in text.replace("```", "").splitlines() if line.strip()]
        elif kind == "divider":
            lines.append("---")
    return lines or [payload.get("text", "")]


def _plain(mrkdwn: str) -> str:
    text = _LINK.sub(lambda m: m.group(2), mrkdwn)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def sns_text(message: dict[str, Any]) -> str:
    attrs = message.get("MessageAttributes", {})
    shown = " ".join(f"{k}={v.get('Value')}" for k, v in sorted(attrs.items()))
    return f"{message.get('Subject', '(no subject)')}  [{shown}]"


def _result_text(result: Any) -> str:
    if not isinstance(result, dict):
        return str(result)
    parts = [str(result.get("status", "done"))]
    found = result.get("findings")
    if isinstance(found, int):
        parts.append(f"{found} finding(s)")
    elif isinstance(found, dict) and found:
        parts.append("findings " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    notify = result.get("notify", {})
    decisions = {k: v for k, v in notify.get("decisions", {}).items() if v}
    if decisions:
        parts.append("notified " + ", ".join(f"{k} {v}" for k, v in decisions.items()))
    if result.get("reason"):
        parts.append(str(result["reason"]))
    return "; ".join(parts)


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str, indent: str) -> list[str]:
    """Long lines wrapped under `indent` (ids and commands kept whole); the detail clipped."""
    if text.startswith("*What is wrong:*"):
        return [_clip(indent + text)]
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def replay_text(emu: Emulator, scenarios: list[Scenario]) -> str:
    """The replay as the demo prints it; one plain line instead when there is no checkout."""
    started = time.monotonic()
    try:
        replayed = replay(emu, scenarios)
    except NoCheckout as e:
        return f"\nReplay skipped: {e}.\n"
    return render_replay(replayed, time.monotonic() - started)


def render_replay(replayed: list[Replayed], seconds: float) -> str:
    params = ", ".join(f"{k}={v}" for k, v in PARAMETERS.items())
    lines = ["", "== Replay: each mistake's CloudTrail event through the handlers =="]
    lines += _wrap(
        "Routed by template.yaml's EventBridge rules, run with the template's environment and "
        f"{params}; Slack is a loopback stand-in, SNS an SQS queue subscribed to the topic.",
        "",
    )
    for i, r in enumerate(replayed, 1):
        lines += ["", f"-- {i}. {r.scenario.name} --"]
        if not r.events:
            lines.append("  (no event-visible mistake to replay)")
        for step, _event, results in r.events:
            lines += _wrap(f"event {step.sample}: {step.what}", "  ")
            if step.note:
                lines += _wrap(f"note: {step.note}", "    ")
            if not results:
                lines.append("    -> no rule matches it")
            for fn, result in results.items():
                lines += _wrap(f"-> {fn}: {_result_text(result)}", "    ")
        lines.append(f"  Slack ({len(r.slack)} message{'s' if len(r.slack) != 1 else ''}):")
        for payload in r.slack:
            for line in slack_text(payload):
                lines += _wrap(line, "    ")
        lines.append(f"  SNS ({len(r.sns)} message{'s' if len(r.sns) != 1 else ''}):")
        for m in r.sns:
            lines += _wrap(sns_text(m), "    ")
    lines.append(f"Replay done in {seconds:.1f} s.")
    return "\n".join(lines) + "\n"
