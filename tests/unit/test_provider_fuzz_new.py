"""Property tests of the parsers of the providers added by issue 17, as tests/unit/test_provider_fuzz.py does
for the others: any bytes give a ``ParsedBatch`` or a ``ValueError``; any JSON-ish structure in the provider's
envelope gives a batch in which every input event is once an event, a notice or a quarantined item; every
event parsed can be stored and read back; the signature checks answer, never raise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from interface.providers import brevo, mailgun, postmark, ses
from tests.unit.test_provider_fuzz import ANY, FUZZ, JSONISH, NOW, SCALARS, TEXT, encode, fields, outcomes, parsed_or_value_error

NO_CERTIFICATES = ses.Certificates(None, False, lambda url, timeout: b"")
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
    parsed_or_value_error(ses.parse, body)
    assert ses.refusal(ses.envelope_of(body), ["t"], NO_CERTIFICATES) is not None
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


SES_RECIPIENT = ADDRESSES | fields({"emailAddress": ADDRESSES | TEXT, "diagnosticCode": TEXT}) | TEXT
SES_MESSAGE = fields(
    {
        "eventType": st.sampled_from(["Bounce", "Complaint", "Delivery", "Send", "Open", "Click", "DeliveryDelay", "Received"]),
        "notificationType": st.sampled_from(["Bounce", "AmazonSnsSubscriptionSucceeded"]) | TEXT,
        "mail": fields(
            {
                "timestamp": ISO_TIMES | SCALARS,
                "destination": st.lists(ADDRESSES | TEXT, max_size=3) | ANY,
                "tags": fields({"mailing_id": st.lists(TEXT, max_size=2) | TEXT, "contact_id": st.lists(TEXT, max_size=2) | ANY}),
            }
        ),
        "bounce": fields(
            {
                "bounceType": st.sampled_from(["Permanent", "Transient"]) | TEXT,
                "bounceSubType": TEXT,
                "bouncedRecipients": st.lists(SES_RECIPIENT, max_size=3) | ANY,
                "timestamp": ISO_TIMES | SCALARS,
            }
        ),
        "delivery": fields({"recipients": st.lists(SES_RECIPIENT, max_size=3), "timestamp": ISO_TIMES}),
        "click": fields({"link": TEXT, "userAgent": TEXT, "timestamp": ISO_TIMES | SCALARS}),
    }
)
SNS_TYPES = st.sampled_from(["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"])


@FUZZ
@given(message=SES_MESSAGE | ANY, kind=SNS_TYPES, message_id=TEXT, as_text=st.booleans())
def test_ses_one_sns_message_once(message: Any, kind: str, message_id: str, as_text: bool) -> None:
    text = message if as_text and isinstance(message, str) else encode(message).decode()
    envelope = {"Type": kind, "MessageId": message_id, "Message": text, "TopicArn": "t", "Timestamp": "2026-03-14T10:00:00Z"}
    batch = parsed_or_value_error(ses.parse, encode(envelope))
    if not message_id:
        assert batch is None  # no MessageId: no SNS message (quarantined whole by the route)
        return
    assert batch is not None
    if batch.events:  # an SES event: a signal per recipient, nothing else
        assert batch.notices == [] and batch.quarantined == []
        assert len({event.signal.key for event in batch.events}) == len(batch.events)
    else:
        assert len(batch.notices) + len(batch.quarantined) == 1


SNS_ENVELOPE = fields(
    {
        "Type": SNS_TYPES,
        "MessageId": TEXT,
        "Message": TEXT,
        "TopicArn": st.just("t"),
        "Timestamp": ISO_TIMES,
        "Subject": TEXT,
        "SubscribeURL": TEXT,
        "Token": TEXT,
        "SignatureVersion": st.sampled_from(["1", "2"]),
        "Signature": TEXT,
        "SigningCertURL": st.sampled_from(["https://sns.us-east-1.amazonaws.com/a.pem", "http://x/a.pem"]) | TEXT,
    }
)


@FUZZ
@given(envelope=SNS_ENVELOPE | ANY)
def test_sns_envelopes_of_any_shape_are_refused_or_parsed_never_raise(envelope: Any) -> None:
    raw = encode(envelope)
    assert isinstance(ses.refusal(ses.envelope_of(raw), ["t"], NO_CERTIFICATES), str)
    parsed_or_value_error(ses.parse, raw)
