"""Property tests of the parsers of the providers added by issue 17, as tests/unit/test_provider_fuzz.py does
for the others: any bytes give a ``ParsedBatch`` or a ``ValueError``; any JSON-ish structure in the provider's
envelope gives a batch in which every input event is once an event, a notice or a quarantined item; every
event parsed can be stored and read back; the signature checks answer, never raise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from interface.providers import brevo, mailgun, postmark
from tests.unit.test_provider_fuzz import ANY, FUZZ, JSONISH, NOW, SCALARS, TEXT, encode, fields, outcomes, parsed_or_value_error

UNIX_TIMES = st.sampled_from([1534110422.389832, "1534110422", 1e20, -1e20, "1e20", 253402300799, -1, 10**30, "soon"])
ADDRESSES = st.sampled_from(["a@example.com", "B@Example.org", "Name <n@example.com>"])

MAILGUN_DATA = fields(
    {
        "event": st.sampled_from(["delivered", "opened", "clicked", "failed", "rejected", "complained"]),
        "id": TEXT,
        "timestamp": UNIX_TIMES | SCALARS,
        "recipient": ADDRESSES | TEXT,
        "severity": st.sampled_from(["permanent", "temporary"]) | TEXT,
        "reason": st.sampled_from(["bounce", "generic", "suppress-bounce"]) | TEXT,
        "url": TEXT,
        "user-variables": fields({"mailing_id": TEXT, "contact_id": TEXT, "test": SCALARS}),
        "message": fields({"headers": fields({"to": ADDRESSES | TEXT, "message-id": TEXT})}),
        "delivery-status": fields({"message": TEXT, "description": TEXT}),
        "client-info": fields({"user-agent": TEXT}),
    }
)


@FUZZ
@given(body=st.binary(max_size=200) | JSONISH.map(encode))
def test_any_bytes_give_a_batch_or_a_value_error(body: bytes) -> None:
    parsed_or_value_error(mailgun.parse, body)
    parsed_or_value_error(brevo.parse, body)
    parsed_or_value_error(postmark.parse, body)
    assert mailgun.refusal(body, ["key"], NOW, timedelta(minutes=10)) is not None  # nothing unsigned passes


@FUZZ
@given(data=MAILGUN_DATA | ANY, signature=ANY)
def test_mailgun_one_event_once(data: Any, signature: Any) -> None:
    batch = parsed_or_value_error(mailgun.parse, encode({"signature": signature, "event-data": data}))
    assert batch is not None and batch.notices == [] and outcomes(batch) == 1
    assert isinstance(mailgun.refusal(encode({"signature": signature, "event-data": data}), ["k"], NOW, timedelta(0)), str)


BREVO_EVENT = (
    fields(
        {
            "event": st.sampled_from(["delivered", "click", "proxy_open", "hard_bounce", "unique_opened"]),
            "email": ADDRESSES | TEXT,
            "message-id": TEXT,
            "ts_event": UNIX_TIMES | SCALARS,
            "ts_epoch": st.sampled_from([1520363423000, 1604933623, 10**20, -(10**14)]) | SCALARS,
            "ts": UNIX_TIMES | SCALARS,
            "date": TEXT,
            "link": TEXT,
            "reason": TEXT,
            "X-Mailin-custom": st.sampled_from(['{"mailing_id": "m", "contact_id": "c"}', "x", "[]"]) | ANY,
        }
    )
    | ANY
)


@FUZZ
@given(events=st.lists(BREVO_EVENT, max_size=5))
def test_brevo_every_event_once(events: list[Any]) -> None:
    batch = parsed_or_value_error(brevo.parse, encode(events))
    assert batch is not None and batch.notices == [] and outcomes(batch) == len(events)


@FUZZ
@given(event=BREVO_EVENT)
def test_brevo_a_single_event_once(event: Any) -> None:
    batch = parsed_or_value_error(brevo.parse, encode(event))
    if isinstance(event, list):
        assert batch is not None and outcomes(batch) == len(event)
    elif isinstance(event, dict):
        assert batch is not None and outcomes(batch) == 1
    else:
        assert batch is None  # neither an object nor an array: quarantined whole by the route


ISO_TIMES = st.sampled_from(
    [
        "2016-04-27T16:28:50.3963933-04:00",
        "2017-10-25T15:21:11.9065619Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "soon",
    ]
)
POSTMARK_RECORD = fields(
    {
        "RecordType": st.sampled_from(["Delivery", "Bounce", "SpamComplaint", "Open", "Click", "SubscriptionChange", "Inbound"]),
        "MessageID": TEXT,
        "Recipient": ADDRESSES | TEXT,
        "Email": ADDRESSES | TEXT,
        "Type": st.sampled_from(["HardBounce", "SoftBounce", "SpamComplaint"]) | TEXT,
        "DeliveredAt": ISO_TIMES | SCALARS,
        "BouncedAt": ISO_TIMES | SCALARS,
        "ReceivedAt": ISO_TIMES | SCALARS,
        "ChangedAt": ISO_TIMES | SCALARS,
        "OriginalLink": TEXT,
        "SuppressSending": SCALARS,
        "SuppressionReason": st.sampled_from(["ManualSuppression", "HardBounce"]) | SCALARS,
        "Metadata": fields({"mailing_id": TEXT, "contact_id": TEXT, "test": SCALARS}),
        "UserAgent": TEXT,
        "Details": TEXT,
    }
)


@FUZZ
@given(record=POSTMARK_RECORD)
def test_postmark_one_record_once(record: dict[str, Any]) -> None:
    batch = parsed_or_value_error(postmark.parse, encode(record))
    assert batch is not None and batch.notices == [] and outcomes(batch) == 1
