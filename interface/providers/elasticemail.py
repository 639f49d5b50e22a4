"""Elastic Email HTTP notifications: token check and parsing (CONTRACT §6).

One notification per request, as query (or form) parameters ``transaction,
messageid, to, from, subject, date, status, category, target, channel,
account, postback``. No signature: a shared secret ``token`` in the URL.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from urllib.parse import urlencode

from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, normalise_email

from .common import Malformed, collect, parse_utc, require_str

SOURCE = "elasticemail"
TOKEN = "token"
ERROR = "Error"


def verify(given_token: str | None, configured: str | None) -> bool:
    """Constant-time comparison of the URL ``token`` with the configured secret."""
    if not given_token or not configured:
        return False
    return hmac.compare_digest(given_token.encode("utf-8"), configured.encode("utf-8"))


def parse(params: Mapping[str, str], now: datetime) -> ParsedBatch:
    """Parse one notification. Never raises: a bad one is quarantined."""
    raw = {name: value for name, value in params.items() if name != TOKEN}
    batch = ParsedBatch()
    collect(batch, SOURCE, raw, partial(_event, raw, now), partial(urlencode, raw))
    return batch


def _event(raw: dict[str, str], now: datetime) -> ProviderEvent:
    status = require_str(raw, "status")
    to = require_str(raw, "to")
    date = raw.get("date")
    occurred_at = None
    if date:  # missing date: accepted without a provider time; a bad one is quarantined
        try:
            occurred_at = parse_utc(date)
        except ValueError as exc:
            raise Malformed(f"unparsable 'date': {exc}") from None
    target = raw.get("target") or None
    fields = {"status": status}
    if status == ERROR:
        # Read only on Error; a missing category is "" (the ruleset maps it to send_error/other).
        fields["category"] = raw.get("category") or ""
    signal = Signal(
        key=dedup_key(SOURCE, raw.get("transaction"), to, status, raw.get("category"), date, target),
        source=SOURCE,
        fields=fields,
        received_at=now,
        occurred_at=occurred_at,
        url=target,
        raw=raw,
    )
    mailing_id, contact_id = _postback(raw.get("postback"))
    correlation = Correlation(mailing_id=mailing_id, contact_id=contact_id, email=normalise_email(to))
    return ProviderEvent(signal=signal, correlation=correlation)


def _postback(value: str | None) -> tuple[str | None, str | None]:
    """``mailing_id:contact_id`` (split on the first ``:``); anything else names no one."""
    mailing_id, sep, contact_id = (value or "").partition(":")
    mailing_id, contact_id = mailing_id.strip(), contact_id.strip()
    if not sep or not mailing_id or not contact_id:
        return None, None
    return mailing_id, contact_id
