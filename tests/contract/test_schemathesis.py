"""The OpenAPI contract, tried by schemathesis: every operation, on both stores.

The Flask app (``interface.app.create_app``) serves its own ``/openapi.json``; schemathesis
generates requests from it, valid ones and (for every operation that has something to get wrong)
invalid ones, and each answer must not be a 5xx, must carry a status the operation documents, and
must match the documented schema and content type.

Credentials are filled in by the ``before_call`` hook below, so the cases get past authentication:
the bearer token on ``/v1`` routes, UniOne's MD5 ``auth`` over the exact bytes sent, Elastic Email's
``token`` parameter and SendGrid's ECDSA signature over timestamp + body (the test key pair of the
HTTP tests). Half the cases that name a mailing, contact, ruleset version or job name one that exists
(the store is seeded with a dispatched mailing), so the routes are tried beyond their 404.

``make test`` runs a quick pass, bounded to about ``SCHEMATHESIS_BUDGET`` seconds a store (default 30: every
operation and mode gets its equal share and at least ``MIN_EXAMPLES`` cases, the same ones every run);
``make fuzz`` runs ``FUZZ_EXAMPLES`` examples an operation and mode (no time bound, random seeds): the deep run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from application.service import ResponsesApp
from interface.app import create_app
from tests.helpers import sns
from tests.helpers.http import (
    BREVO_TOKEN,
    EE_TOKEN,
    POSTMARK_TOKEN,
    SPRING,
    SPRING_AUDIENCE,
    TOKEN,
    UNIONE_KEY,
    http_settings,
    sign_mailgun,
    sign_sendgrid,
    sign_unione,
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 0)
QUICK_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES") or 100)
BUDGET_SECONDS = float(os.environ.get("SCHEMATHESIS_BUDGET") or 30)
EXAMPLES = FUZZ_EXAMPLES or QUICK_EXAMPLES
MIN_EXAMPLES = 5  # every operation and mode gets at least these, however loaded the machine


class BudgetSpent(BaseException):
    """Ends one operation's examples early (a BaseException: hypothesis lets it through, not a failure)."""


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
PLACEHOLDER = "AUTH_PLACEHOLDER"


# ---- credentials: a hook signs what schemathesis generated, as the provider would ---------------------


def _json_bytes(body: Any) -> bytes:
    """The bytes schemathesis would send (a negative case may be raw bytes already)."""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _signed_unione(body: Any) -> bytes:
    """The generated body with ``auth`` set to the MD5 of the bytes sent (the key in its place)."""
    if not isinstance(body, dict):
        return _json_bytes(body)  # no auth field to sign: a 401, which is documented
    raw = _json_bytes({**body, "auth": PLACEHOLDER})
    return sign_unione(raw, UNIONE_KEY)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign webhook calls (only the contract tests here use schemathesis, so the global hook is theirs)."""
    path, method = case.operation.path, case.method.upper()
    if path == "/v1/webhooks/unione" and method == "POST" and _has_body(case):
        kwargs["data"] = _signed_unione(case.body)
    elif path == "/v1/webhooks/sendgrid" and _has_body(case):
        raw = _json_bytes(case.body)
        kwargs["data"] = raw
        case.headers = {**(case.headers or {}), **sign_sendgrid(raw)}
    elif path == "/v1/webhooks/mailgun" and _has_body(case) and isinstance(case.body, dict):
        kwargs["data"] = sign_mailgun(case.body)  # a body that is no object has no signature block: a 401
    elif path == "/v1/webhooks/ses" and _has_body(case):
        kwargs["data"] = _signed_sns(case.body)
    elif path == "/v1/webhooks/brevo":
        case.query = {**(case.query or {}), "token": BREVO_TOKEN}
    elif path == "/v1/webhooks/postmark":
        case.query = {**(case.query or {}), "token": POSTMARK_TOKEN}
    elif path == "/v1/webhooks/elasticemail":
        case.query = {**(case.query or {}), "token": EE_TOKEN}


def _signed_sns(body: Any) -> bytes:
    """A generated SNS message made one SNS would send to this topic (its signed fields text), signed by the test
    certificate authority's certificate; what is no object stays unsigned (a 401, which is documented)."""
    if not isinstance(body, dict):
        return _json_bytes(body)
    envelope = dict(body)
    if not isinstance(envelope.get("Type"), str) or envelope["Type"] not in sns.CANONICAL:
        envelope["Type"] = "Notification"
    for name in sns.CANONICAL[envelope["Type"]]:
        if name != "Subject" and not isinstance(envelope.get(name), str):
            envelope[name] = ""
    if not isinstance(envelope.get("Subject"), str):
        envelope.pop("Subject", None)
    envelope.update(TopicArn=sns.TOPIC, SigningCertURL=sns.CERT_URL)
    return json.dumps(sns.signed(envelope), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _has_body(case: Any) -> bool:
    return not isinstance(case.body, schemathesis.core.NotSet)


# ---- the store: fresh, seeded with one dispatched mailing ------------------------------------------


@dataclass
class Known:
    """Ids that exist in the seeded store."""

    ids: dict[str, str | int] = field(default_factory=dict)


def seed(client: Any) -> Known:
    r = client.post(
        "/v1/mailings",
        json={"id": SPRING, "name": "Spring sale", "category": "bulk", "email_type": "news", "provider": "unione"},
        headers=BEARER,
    )
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": SPRING_AUDIENCE}, headers=BEARER)
    assert r.status_code == 200, r.get_json()
    r = client.post(f"/v1/mailings/{SPRING}/dispatch", headers=BEARER)
    assert r.status_code == 200, r.get_json()
    r = client.post("/v1/rules", json={"version": "contract-2", "statistics_period_days": 7}, headers=BEARER)
    assert r.status_code == 201, r.get_json()
    r = client.post("/v1/rules/contract-2/activate", headers=BEARER)
    assert r.status_code == 202, r.get_json()
    job = (r.get_json() or {}).get("job") or (r.get_json() or {}).get("id") or "unknown"
    return Known(
        {"mailing_id": SPRING, "contact_id": SPRING_AUDIENCE[0]["contact_id"], "version": "contract-2", "job": job, "wave": 1}
    )


@pytest.fixture
def flask_app(app: ResponsesApp, tmp_path: Path) -> Flask:
    certificates = str(sns.cert_dir(tmp_path / "sns-certificates"))
    return create_app(
        app, http_settings(app.settings.database_url, ses_sns_topic_arns=(sns.TOPIC,), ses_sns_cert_dir=certificates)
    )


# ---- the run ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    skipped_modes: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{self.cases} cases over {len(self.by_operation)} operation/mode pairs"]
        for label, n in sorted(self.by_operation.items()):
            statuses = ", ".join(f"{code}×{k}" for code, k in sorted(self.statuses.get(label, {}).items()))
            lines.append(f"  {label}: {n} in {self.seconds.get(label, 0):.1f} s ({statuses})")
        return "\n".join(lines)


def operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def nothing_to_negate(operation: Any) -> bool:
    """No parameter, no body and no credentials (``/healthz``): every request to it is a valid one."""
    return not list(operation.iter_parameters()) and not len(operation.body) and operation.definition.raw.get("security") == []


def hypothesis_settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,  # the bound is the store's time budget (a shared machine makes per-example deadlines flaky)
        derandomize=not FUZZ_EXAMPLES,  # make test: the same cases every run; make fuzz: new ones
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink] if FUZZ_EXAMPLES else [Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def run_operation(operation: Any, mode: GenerationMode, flask_app: Flask, known: Known, tally: Tally, until: float) -> None:
    label = f"{operation.method.upper()} {operation.path} [{mode.value}]"
    strategy = operation.as_strategy(generation_mode=mode)

    @hypothesis_settings()
    @given(case=strategy, use_known=st.booleans())
    def check(case: Any, use_known: bool) -> None:
        if not FUZZ_EXAMPLES and tally.by_operation.get(label, 0) >= MIN_EXAMPLES and time.monotonic() > until:
            raise BudgetSpent  # the quick run's share of time for this operation is spent: stop generating
        if use_known:
            for name in case.path_parameters or {}:
                if name in known.ids:
                    case.path_parameters[name] = known.ids[name]
        tally.cases += 1
        tally.by_operation[label] = tally.by_operation.get(label, 0) + 1
        response = case.call(app=flask_app, headers=BEARER)
        seen = tally.statuses.setdefault(label, {})
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=BEARER, transport_kwargs={"app": flask_app})

    started = time.monotonic()
    try:
        check()
    except BudgetSpent:
        pass
    except Unsatisfiable:
        tally.skipped_modes.append(label)  # nothing in this operation can be made invalid
    except (FailureGroup, Exception) as exc:  # a check failed or the app raised: keep going, report them all
        tally.failures[label] = f"{type(exc).__name__}: {exc}"[:4000]
    finally:
        tally.seconds[label] = time.monotonic() - started


@pytest.mark.timeout(max(BUDGET_SECONDS * 4, 300) if not FUZZ_EXAMPLES else 0)  # the floor of cases may outlast the budget
def test_every_operation_keeps_its_contract(flask_app: Flask) -> None:
    client = flask_app.test_client()
    known = seed(client)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", flask_app)
    ops = list(operations(schema))
    assert len(ops) > 25, [f"{o.method} {o.path}" for o in ops]
    tally = Tally()
    started = time.monotonic()
    pairs = [
        (op, mode)
        for op in ops
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE or not nothing_to_negate(op)
    ]
    for i, (op, mode) in enumerate(pairs):
        # each remaining operation/mode gets an equal share of the time left
        left = BUDGET_SECONDS - (time.monotonic() - started)
        until = time.monotonic() + max(left, 0) / (len(pairs) - i)
        run_operation(op, mode, flask_app, known, tally, until)
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {tally.report()}\n  in {elapsed:.1f} s; negative modes that found nothing to negate: {tally.skipped_modes}"
    )
    assert not tally.failures, "\n\n".join(f"== {label}\n{text}" for label, text in sorted(tally.failures.items()))
    assert tally.cases >= len(ops), tally.report()
