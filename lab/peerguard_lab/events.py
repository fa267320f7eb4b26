"""Events from the samples in events/, re-pointed at real ids as a new CloudTrail record."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from peerguard_lab.template import EVENTS

SAMPLE_ACCOUNT = "123456789012"  # the account every sample in events/ is recorded in


def _substitute(value: Any, ids: Mapping[str, str]) -> Any:
    """Every occurrence of a key of `ids` replaced by its value, all at once (so a swap of two
    ids works), anywhere in the JSON value."""
    if not ids or value is None:
        return value
    pattern = re.compile("|".join(re.escape(k) for k in sorted(ids, key=len, reverse=True)))
    return json.loads(pattern.sub(lambda m: ids[m.group(0)], json.dumps(value)))


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


def load_sample(stem: str) -> dict[str, Any]:
    """events/<stem>.json as recorded."""
    return dict(json.loads((EVENTS / f"{stem}.json").read_text()))


def sample(
    stem: str, ids: Mapping[str, str] | None = None, account: str | None = None
) -> dict[str, Any]:
    """events/<stem>.json through `from_sample`: the story's ids replaced, a fresh record."""
    return from_sample(load_sample(stem), ids or {}, account)
