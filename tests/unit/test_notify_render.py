"""Renderers (pure): Slack Block Kit, SNS messages, Security Hub ASFF."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from peerguard.domain.dedup import Notification, Status
from peerguard.domain.findings import Finding, Severity
from peerguard.notify import securityhub, slack, sns
from peerguard.notify.core import console_url
from tests.realdata import REALDATA, required
from tests.unit.test_notify_dedup import ACCOUNT, NOW, REGION, finding

SAMPLES = REALDATA / "eventbridge-securityhub-slack"


def note(f: Finding, status: Status = Status.NEW) -> Notification:
    return Notification(f, status, NOW - timedelta(days=2), NOW)


def pcx_finding(pcx: str = "pcx-1", **kw: Any) -> Finding:
    return finding(
        resource_id=pcx, check_id="peering.no_routes", pcx=pcx, severity=Severity.LOW, **kw
    ).model_copy(update={"resource_type": "AWS::EC2::VPCPeeringConnection", "remediation": None})


# -- Slack ---------------------------------------------------------------------------------


def sections(message: slack.SlackMessage) -> list[str]:
    return [b["text"]["text"] for b in message.payload["blocks"] if b["type"] == "section"]


def test_slack_groups_findings_by_peering_connection() -> None:
    ns = [note(finding("rtb-1")), note(finding("rtb-2", pcx="pcx-2")), note(finding("rtb-3"))]
    messages = slack.render(ns)
    headers = [m.payload["blocks"][0]["text"]["text"] for m in messages]
    assert headers == ["PeerGuard: pcx-1", "PeerGuard: pcx-2"]
    assert [len(m.notifications) for m in messages] == [2, 1]


def test_slack_finding_shows_severity_resource_problem_fix_and_console_link() -> None:
    f = finding("rtb-0a1")
    (message,) = slack.render([note(f)])
    (text,) = sections(message)
    assert ":red_circle: *HIGH* · New · `route.missing_reciprocal`" in text
    link = "https://console.aws.amazon.com/vpcconsole/home?region=us-east-1#RouteTableDetails:RouteTableId=rtb-0a1"
    assert f"<{link}|rtb-0a1>" in text
    assert f"*What is wrong:* {f.detail}" in text
    assert f"```{f.remediation.cli()}```" in text  # type: ignore[union-attr]
    assert "PeerGuard applies it in fix mode" in text
    assert message.payload["text"] == "PeerGuard: 1 finding, worst high on pcx-1"


def test_slack_uses_the_catalogue_fix_when_there_is_no_single_call() -> None:
    (message,) = slack.render([note(pcx_finding())])
    (text,) = sections(message)
    assert "*Fix:* " in text and "```" not in text
    assert "#PeeringConnectionDetails:VpcPeeringConnectionId=pcx-1|pcx-1>" in text


def test_slack_renders_resolved_findings_as_resolved() -> None:
    (message,) = slack.render([note(finding(), Status.RESOLVED)])
    (text,) = sections(message)
    assert text.startswith(":white_check_mark: *RESOLVED* ~HIGH~")
    assert "What is wrong" not in text and "No longer found at 2026-03-01 12:00 UTC." in text


def test_slack_escapes_mrkdwn_control_characters_from_aws_data() -> None:
    f = finding(detail="tag Name=<script> & friends")
    (text,) = sections(slack.render([note(f)])[0])
    assert "tag Name=&lt;script&gt; &amp; friends" in text


def test_slack_splits_large_groups_under_the_block_limit() -> None:
    ns = [note(finding(f"rtb-{i:03d}")) for i in range(60)]
    messages = slack.render(ns)
    assert [len(m.payload["blocks"]) for m in messages] == [49, 49, 25]
    assert all(len(m.payload["blocks"]) <= slack.MAX_BLOCKS for m in messages)
    assert messages[2].payload["blocks"][0]["text"]["text"] == "PeerGuard: pcx-1 (part 3/3)"
    delivered = [n.finding.resource_id for m in messages for n in m.notifications]
    assert sorted(delivered) == [f"rtb-{i:03d}" for i in range(60)]


def test_slack_keeps_every_text_under_3000_characters() -> None:
    (message,) = slack.render([note(finding(detail="x" * 10_000))])
    (text,) = sections(message)
    assert len(text) <= slack.MAX_TEXT and "x" * 1000 in text
    assert text.rstrip().endswith("```")  # the fix survives a long detail


def test_slack_message_has_the_shape_of_slacks_own_webhook_example() -> None:
    sample = required(SAMPLES / "slack__incoming-webhook__saved.data.json")
    theirs = json.loads(sample.read_text())
    (ours,) = slack.render([note(finding())])
    assert set(theirs) - {"channel"} == set(ours.payload)  # text fallback + blocks
    their_section = next(b for b in theirs["blocks"] if b["type"] == "section")
    our_section = next(b for b in ours.payload["blocks"] if b["type"] == "section")
    assert their_section["text"]["type"] == our_section["text"]["type"] == "mrkdwn"


def test_webhook_secret_may_be_a_url_or_json_but_must_be_https() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert slack.webhook_from_secret(url) == url
    assert slack.webhook_from_secret(json.dumps({"webhook_url": url})) == url
    with pytest.raises(ValueError, match="https webhook URL") as err:
        slack.webhook_from_secret("http://hooks.slack.com/services/T000/B000/XXXX")
    assert "hooks.slack.com" not in str(err.value)  # the secret never appears in errors


# -- SNS -----------------------------------------------------------------------------------


def test_sns_subject_names_severity_check_resource_and_peering() -> None:
    assert (
        sns.subject(note(finding("rtb-0a1"))) == "[HIGH] route.missing_reciprocal rtb-0a1 (pcx-1)"
    )
    assert (
        sns.subject(note(pcx_finding(), Status.RESOLVED))
        == "[LOW RESOLVED] peering.no_routes pcx-1"
    )


def test_sns_subject_is_ascii_one_line_and_short() -> None:
    f = finding("rtb-" + "é\n" * 80)
    text = sns.subject(note(f))
    assert len(text) < 100 and text.isascii() and "\n" not in text and text.endswith("...")


def test_sns_message_is_the_finding_json_with_its_status() -> None:
    f = finding()
    e = sns.entry(note(f, Status.CHANGED), "0")
    body = json.loads(e["Message"])
    assert body == {
        **f.to_json(),
        "status": "changed",
        "first_seen": "2026-02-27T12:00:00.000Z",
        "observed_at": "2026-03-01T12:00:00.000Z",
    }
    assert e["MessageAttributes"] == {
        "severity": {"DataType": "String", "StringValue": "high"},
        "check_id": {"DataType": "String", "StringValue": "route.missing_reciprocal"},
        "account_id": {"DataType": "String", "StringValue": ACCOUNT},
        "status": {"DataType": "String", "StringValue": "changed"},
    }


def test_sns_batches_respect_publish_batch_limits() -> None:
    ns = [note(finding(f"rtb-{i}")) for i in range(23)]
    assert [len(b) for b in sns.batches(ns)] == [10, 10, 3]
    big = [note(finding(f"rtb-{i}", detail="d" * 100_000)) for i in range(5)]
    assert [len(b) for b in sns.batches(big)] == [2, 2, 1]


# -- Security Hub (ASFF) ----------------------------------------------------------------------


def asff(n: Notification) -> dict[str, Any]:
    return securityhub.render(n, REGION, ACCOUNT)


def test_asff_passes_the_batch_import_findings_schema() -> None:
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    findings = [asff(note(finding())), asff(note(pcx_finding(), Status.RESOLVED))]
    report = ParamValidator().validate({"Findings": findings}, shape)
    assert not report.has_errors(), report.generate_report()


def test_asff_fields_for_an_open_finding() -> None:
    f = finding("rtb-0a1")
    a = asff(note(f))
    assert a["Id"] == f"peerguard/route.missing_reciprocal/{f.fingerprint}"
    assert a["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert (a["GeneratorId"], a["AwsAccountId"]) == ("route.missing_reciprocal", ACCOUNT)
    assert a["Severity"] == {"Label": "HIGH", "Original": "high"}
    assert a["Remediation"]["Recommendation"]["Text"] == f.remediation.cli()  # type: ignore[union-attr]
    assert (a["CreatedAt"], a["UpdatedAt"]) == (
        "2026-02-27T12:00:00.000Z",
        "2026-03-01T12:00:00.000Z",
    )
    assert [(r["Type"], r["Id"]) for r in a["Resources"]] == [
        ("AwsEc2RouteTable", f"arn:aws:ec2:{REGION}:{ACCOUNT}:route-table/rtb-0a1"),
        (
            "AwsEc2VpcPeeringConnection",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-peering-connection/pcx-1",
        ),
        ("AwsEc2Vpc", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-b"),
    ]
    assert (a["Compliance"], a["Workflow"], a["RecordState"]) == (
        {"Status": "FAILED"},
        {"Status": "NEW"},
        "ACTIVE",
    )


def test_asff_archives_resolved_findings() -> None:
    a = asff(note(finding(), Status.RESOLVED))
    assert (a["Compliance"], a["Workflow"], a["RecordState"]) == (
        {"Status": "PASSED"},
        {"Status": "RESOLVED"},
        "ARCHIVED",
    )


def test_asff_maps_info_to_informational_and_unknown_resources_to_other() -> None:
    f = finding("fl-0abc", severity=Severity.INFO).model_copy(
        update={"resource_type": "AWS::EC2::FlowLog"}
    )
    a = asff(note(f))
    assert a["Severity"]["Label"] == "INFORMATIONAL"
    assert a["Resources"][0] == {
        "Type": "Other",
        "Id": "fl-0abc",
        "Partition": "aws",
        "Region": REGION,
    }


def test_asff_clips_description_to_1024_characters() -> None:
    assert len(asff(note(finding(detail="d" * 5000)))["Description"]) == 1024


def _samples() -> list[dict[str, Any]]:
    required(SAMPLES)
    return [json.loads(p.read_text()) for p in sorted(SAMPLES.glob("asr__asff__*.json"))]


def test_asff_has_the_shape_of_real_security_hub_findings() -> None:
    samples = _samples()
    ours = asff(note(finding()))
    # WorkflowState is deprecated in favour of Workflow.Status, which we set.
    required = set.intersection(*(set(s) for s in samples)) - {"ProductFields", "WorkflowState"}
    missing = required - set(ours)
    assert not missing, f"fields every real finding has, ours lacks: {missing}"
    for s in samples:
        for k in required & set(ours):
            assert type(ours[k]) is type(s[k]), k
        assert set(ours["Severity"]) <= set(s["Severity"])
        assert set(ours["Resources"][0]) <= set(s["Resources"][0])
        assert set(ours["Remediation"]["Recommendation"]) <= set(s["Remediation"]["Recommendation"])
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert all(stamp.match(s["CreatedAt"]) for s in samples) and stamp.match(ours["CreatedAt"])


def test_console_links_for_each_kind_of_resource() -> None:
    assert console_url("vpc-1", "eu-west-1") == (
        "https://console.aws.amazon.com/vpcconsole/home?region=eu-west-1#VpcDetails:VpcId=vpc-1"
    )
    assert console_url("something-else", "eu-west-1") is None


def test_times_are_rendered_in_utc() -> None:
    local = datetime(2026, 3, 1, 14, 0, tzinfo=UTC).astimezone()
    a = securityhub.render(Notification(finding(), Status.NEW, local, local), REGION, ACCOUNT)
    assert a["CreatedAt"] == "2026-03-01T14:00:00.000Z"
