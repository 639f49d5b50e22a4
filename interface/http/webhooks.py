"""Provider webhooks and canonical signals (CONTRACT §6, §7).

Every call: read the body under the limit (also after gunzip), check
authenticity on the raw bytes *before* parsing (401, nothing stored), then
parse and journal. One event that cannot be parsed or stored is quarantined
alone, its neighbours journaled; an authenticated body that is not of a
recognised form is quarantined whole and answered 200 (a provider would retry
a 4xx for a day). The quarantine is idempotent: a retry adds nothing and is
counted in ``duplicates``. A UniOne body with bytes after its JSON document is
no UniOne call (MD5 length extension): 400, nothing stored. Ingestion never
waits for the views: providers give up after 3 s.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import marshmallow as ma
import orjson
from flask import Flask, current_app, request

from application.config import Settings
from application.service import IngestCounts
from domain.signals import ParsedBatch, Quarantined, text_digest
from interface.http.auth import require_bearer
from interface.http.body import read_decoded, read_limited
from interface.http.common import Blueprint, IngestAnswerSchema
from interface.providers import brevo, canonical, elasticemail, mailgun, postmark, sendgrid, ses, unione
from interface.providers.common import load_json, read_body, secret_matches
from interface.shared.context import service, settings
from interface.shared.errors import ApiError, ErrorSchema
from interface.shared.guard import count_failure, refuse_if_throttled

log = logging.getLogger("responses.webhooks")

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhooks",
    description="Provider webhooks (no bearer token: each provider authenticates its own way)",
)
signals_blp = Blueprint("signals", __name__, url_prefix="/v1", description="Canonical signals from the sender")
signals_blp.before_request(require_bearer)
blp.before_request(refuse_if_throttled)  # an address with too many failed credentials: 429, whatever it presents

NO_BEARER: list[dict[str, list[str]]] = []
SECRET_PARAM = re.compile(rb"(token=)[^&]*")  # never keep Elastic Email's secret with a quarantined body


# ---- request documents (documentation only: bodies are authenticated before they are parsed) ----


class UniOneEventSchema(ma.Schema):
    event_name = ma.fields.String(metadata={"description": "transactional_email_status or transactional_spam_block"})
    event_data = ma.fields.Dict(
        metadata={"description": "job_id, metadata{mailing_id,contact_id}, email, status, event_time, url, delivery_info"}
    )


class UniOneUserSchema(ma.Schema):
    user_id = ma.fields.Integer()
    project_id = ma.fields.String()
    project_name = ma.fields.String()
    events = ma.fields.List(ma.fields.Nested(UniOneEventSchema))


class UniOneBodySchema(ma.Schema):
    auth = ma.fields.String(metadata={"description": "MD5 hex of the raw body with this value replaced by the API key"})
    events_by_user = ma.fields.List(ma.fields.Nested(UniOneUserSchema))


class ElasticEmailParamsSchema(ma.Schema):
    token = ma.fields.String(required=True, metadata={"description": "the shared secret ELASTICEMAIL_WEBHOOK_TOKEN"})
    transaction = ma.fields.String()
    messageid = ma.fields.String()
    to = ma.fields.String()
    from_ = ma.fields.String(data_key="from")
    subject = ma.fields.String()
    date = ma.fields.String(metadata={"description": "UTC, ISO 8601 or M/d/yyyy h:mm:ss AM"})
    status = ma.fields.String()
    category = ma.fields.String()
    target = ma.fields.String()
    channel = ma.fields.String()
    account = ma.fields.String()
    postback = ma.fields.String(metadata={"description": "mailing_id:contact_id"})


class SendGridEventSchema(ma.Schema):
    event = ma.fields.String()
    email = ma.fields.String()
    timestamp = ma.fields.Integer()
    sg_event_id = ma.fields.String()
    url = ma.fields.String()
    type = ma.fields.String()
    sg_machine_open = ma.fields.Boolean()
    mailing_id = ma.fields.String()
    contact_id = ma.fields.String()


class MailgunSignatureSchema(ma.Schema):
    timestamp = ma.fields.String(metadata={"description": "Unix seconds; refused when older than 24 h"})
    token = ma.fields.String()
    signature = ma.fields.String(metadata={"description": "hex HMAC-SHA256 of timestamp + token with the signing key"})


class MailgunBodySchema(ma.Schema):
    signature = ma.fields.Nested(MailgunSignatureSchema)
    event_data = ma.fields.Dict(
        data_key="event-data",
        metadata={"description": "id, event, severity, reason, timestamp, recipient, url, user-variables{mailing_id,contact_id}"},
    )


class BrevoEventSchema(ma.Schema):
    event = ma.fields.String(metadata={"description": "request, delivered, opened, proxy_open, click, hard_bounce…"})
    email = ma.fields.String()
    message_id = ma.fields.String(data_key="message-id")
    ts_event = ma.fields.Integer(metadata={"description": "Unix seconds"})
    ts_epoch = ma.fields.Integer(metadata={"description": "Unix milliseconds"})
    link = ma.fields.String()
    reason = ma.fields.String()
    x_mailin_custom = ma.fields.String(data_key="X-Mailin-custom", metadata={"description": 'JSON {"mailing_id","contact_id"}'})


class PostmarkRecordSchema(ma.Schema):
    RecordType = ma.fields.String(metadata={"description": "Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange"})
    MessageID = ma.fields.String()
    Recipient = ma.fields.String()
    Email = ma.fields.String(metadata={"description": "the recipient of a Bounce or SpamComplaint"})
    Type = ma.fields.String(metadata={"description": "a bounce's type: HardBounce, Transient, SoftBounce…"})
    TypeCode = ma.fields.Integer()
    Metadata = ma.fields.Dict(metadata={"description": "mailing_id, contact_id"})
    OriginalLink = ma.fields.String()
    DeliveredAt = ma.fields.String()
    BouncedAt = ma.fields.String()
    ReceivedAt = ma.fields.String()
    ChangedAt = ma.fields.String()


class SnsMessageSchema(ma.Schema):
    Type = ma.fields.String(metadata={"description": "Notification, SubscriptionConfirmation or UnsubscribeConfirmation"})
    MessageId = ma.fields.String()
    TopicArn = ma.fields.String(metadata={"description": "one of SES_SNS_TOPIC_ARNS"})
    Subject = ma.fields.String()
    Message = ma.fields.String(metadata={"description": "the SES event (eventType or notificationType, mail, …) as JSON text"})
    Timestamp = ma.fields.String()
    SignatureVersion = ma.fields.String(metadata={"description": "1 (SHA1withRSA) or 2 (SHA256withRSA)"})
    Signature = ma.fields.String()
    SigningCertURL = ma.fields.String(metadata={"description": "https://sns.<region>.amazonaws.com/….pem"})
    SubscribeURL = ma.fields.String()
    Token = ma.fields.String()
    UnsubscribeURL = ma.fields.String()


SECRET_FORMS = [
    {
        "in": "query",
        "name": "token",
        "schema": {"type": "string"},
        "description": "the secret; or as the HTTP Basic password, or Authorization: Bearer <secret>",
    }
]


class CanonicalSignalSchema(ma.Schema):
    event_id = ma.fields.String(required=True)
    mailing_id = ma.fields.String(required=True)
    contact_id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "a response code or confirmation_checked"})
    occurred_at = ma.fields.String(required=True, metadata={"description": "ISO 8601"})
    url = ma.fields.String()
    reason = ma.fields.String()
    detail = ma.fields.String()


class CanonicalBodySchema(ma.Schema):
    signals = ma.fields.List(ma.fields.Nested(CanonicalSignalSchema), required=True)


def _json_body(schema: type[ma.Schema] | dict[str, object]) -> dict[str, object]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# ---- the one ingest path -----------------------------------------------------------------


def ingest(source: str, raw: bytes, parse: Callable[[datetime], ParsedBatch]) -> dict[str, int]:
    """Parse an authenticated body and journal it; a body that cannot be parsed is quarantined whole."""
    now = datetime.now(UTC)
    try:
        batch = parse(now)
    except ValueError as exc:
        whole = Quarantined(source, raw.decode("utf-8", "replace"), str(exc), digest=text_digest(raw))
        return answer(source, service().quarantine([whole]))
    return answer(source, record(batch))


def record(batch: ParsedBatch) -> IngestCounts:
    """Journal a parsed batch in one transaction: its events, notices and what it quarantined (kept
    once: a retry's quarantined events count as duplicates)."""
    return service().record_batch(batch)


def answer(source: str, counts: IngestCounts) -> dict[str, int]:
    """The webhook answer (and its log line: counts only, never addresses or tokens)."""
    log.info(
        "%s: accepted=%d duplicates=%d unmatched=%d quarantined=%d",
        source,
        counts.accepted,
        counts.duplicates,
        counts.unmatched,
        counts.quarantined,
    )
    return counts.as_dict()


def unauthorized(source: str, message: str) -> ApiError:
    log.warning("%s: rejected unauthenticated call from %s", source, request.remote_addr)
    count_failure(source)  # counted against the client's address (interface.shared.guard)
    return ApiError(401, message)


def signed_body(source: str) -> bytes:
    """The decoded body of a provider that signs its body; nothing is parsed before it is authenticated."""
    try:
        return read_decoded(settings().max_body_bytes)
    except ValueError as exc:  # corrupt gzip, unsupported encoding: cannot even be authenticated
        log.warning("%s: undecodable body: %s", source, exc)
        raise ApiError(400, f"the body cannot be decoded: {exc}", "malformed_body") from None


# ---- UniOne ------------------------------------------------------------------------------


@blp.route("/unione", methods=["GET"])
@blp.doc(security=NO_BEARER, summary="UniOne webhook activation check")
@blp.response(200, IngestAnswerSchema)
def unione_activation() -> dict[str, int]:
    return IngestCounts().as_dict()


@blp.route("/unione", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="UniOne events (batch envelope or single-event form; gzip allowed)",
    requestBody=_json_body(UniOneBodySchema),
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(
    400,
    schema=ErrorSchema,
    description="undecodable (malformed_body), or bytes after the JSON document (trailing_bytes); nothing stored",
)
@blp.alt_response(401, schema=ErrorSchema, description="auth does not verify with any UNIONE_API_KEYS; nothing stored")
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES, raw or decompressed")
def unione_events() -> dict[str, int]:
    body = signed_body(unione.SOURCE)
    if not unione.verify(body, settings().unione_api_keys):
        raise unauthorized(unione.SOURCE, "the body's auth does not verify with a configured UniOne API key")
    if unione.trailing_bytes(body):  # what an MD5 length extension of a genuine body looks like
        log.warning("%s: refused a signed body with bytes after its JSON document from %s", unione.SOURCE, request.remote_addr)
        raise ApiError(400, "bytes after the JSON document: a UniOne body is one JSON document", "trailing_bytes")
    return ingest(unione.SOURCE, body, lambda now: unione.parse(body, now))


# ---- Elastic Email ---------------------------------------------------------------------------


def _form_params(body: bytes) -> dict[str, str]:
    """Parameters a POST may carry in its body (form-encoded, or a JSON object)."""
    if not body.strip():
        return {}
    if request.mimetype == "application/json":
        document = load_json(body)
        if not isinstance(document, dict):
            raise ValueError("JSON body is not an object of parameters")
        return {str(k): "" if v is None else str(v) for k, v in document.items()}
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


@blp.route("/elasticemail", methods=["GET", "POST"])
@blp.doc(
    security=NO_BEARER,
    summary="Elastic Email notification (query parameters; a POST may also carry form parameters)",
    parameters=[{"in": "query", "schema": ElasticEmailParamsSchema}],
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(401, schema=ErrorSchema, description="token missing or not ELASTICEMAIL_WEBHOOK_TOKEN; nothing stored")
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def elasticemail_notification() -> dict[str, int]:
    max_bytes = settings().max_body_bytes
    raw = read_limited(max_bytes) if request.method == "POST" else b""
    form: dict[str, str] = {}
    body_error: ValueError | None = None
    try:
        form = _form_params(read_body(raw, request.headers.get("Content-Encoding"), max_bytes))
    except ValueError as exc:
        body_error = exc
    token = request.args.get(elasticemail.TOKEN) or form.get(elasticemail.TOKEN)
    if not elasticemail.verify(token, settings().elasticemail_webhook_token):
        raise unauthorized(elasticemail.SOURCE, "token missing or wrong")
    params = {**form, **request.args.to_dict()}
    if body_error is None:  # what a quarantine keeps: the parameters, never the secret
        raw = urlencode({k: v for k, v in params.items() if k != elasticemail.TOKEN}).encode()

    def parse(now: datetime) -> ParsedBatch:
        if body_error is not None:
            raise body_error
        return elasticemail.parse(params, now)

    return ingest(elasticemail.SOURCE, SECRET_PARAM.sub(rb"\1***", raw), parse)


# ---- SendGrid ------------------------------------------------------------------------------


@blp.route("/sendgrid", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="SendGrid Event Webhook (signed: ECDSA over timestamp + raw body)",
    requestBody=_json_body({"type": "array", "items": SendGridEventSchema}),  # type: ignore[dict-item]
    parameters=[
        {"in": "header", "name": sendgrid.SIGNATURE_HEADER, "required": True, "schema": {"type": "string"}},
        {"in": "header", "name": sendgrid.TIMESTAMP_HEADER, "required": True, "schema": {"type": "string"}},
    ],
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(400, schema=ErrorSchema, description="undecodable body (malformed_body); nothing stored")
@blp.alt_response(
    401, schema=ErrorSchema, description="signature does not verify with SENDGRID_WEBHOOK_PUBLIC_KEY; nothing stored"
)
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def sendgrid_events() -> dict[str, int]:
    body = signed_body(sendgrid.SOURCE)
    if not sendgrid.verify(
        body,
        request.headers.get(sendgrid.SIGNATURE_HEADER),
        request.headers.get(sendgrid.TIMESTAMP_HEADER),
        settings().sendgrid_webhook_public_key,
    ):
        raise unauthorized(sendgrid.SOURCE, "signature missing or does not verify")
    return ingest(sendgrid.SOURCE, body, lambda now: sendgrid.parse(body, now))


# ---- Mailgun -------------------------------------------------------------------------------


@blp.route("/mailgun", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="Mailgun webhook (signed: HMAC-SHA256 of timestamp + token; one event a call)",
    requestBody=_json_body(MailgunBodySchema),
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(400, schema=ErrorSchema, description="undecodable body (malformed_body); nothing stored")
@blp.alt_response(
    401,
    schema=ErrorSchema,
    description="signature does not verify with MAILGUN_WEBHOOK_SIGNING_KEYS, or its timestamp is older than 24 h; nothing stored",
)
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def mailgun_events() -> dict[str, int]:
    body = signed_body(mailgun.SOURCE)
    config = settings()
    refused = mailgun.refusal(body, config.mailgun_webhook_signing_keys, datetime.now(UTC), config.max_clock_skew)
    if refused is not None:
        raise unauthorized(mailgun.SOURCE, refused)
    return ingest(mailgun.SOURCE, body, lambda now: mailgun.parse(body, now))


# ---- Brevo and Postmark: a shared secret, not a signature -------------------------------------


def presented_secrets() -> list[str]:
    """The secrets a call presents: ``?token=``, the HTTP Basic password, an ``Authorization: Bearer`` token."""
    presented = [request.args.get("token") or ""]
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic":
        presented.append(credentials.password or "")
    elif credentials is not None and credentials.type == "bearer":
        presented.append(credentials.token or "")
    return [secret for secret in presented if secret]


def require_secret(source: str, configured: str | None) -> None:
    """401 (counted against the client) unless the call presents the configured secret in one of its forms."""
    if not any(secret_matches(secret, configured) for secret in presented_secrets()):
        raise unauthorized(source, "the secret is missing or wrong (?token=, HTTP Basic password or Bearer)")


@blp.route("/brevo", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="Brevo transactional webhook (one event, or a batch as a JSON array)",
    requestBody=_json_body({"oneOf": [BrevoEventSchema, {"type": "array", "items": BrevoEventSchema}]}),  # type: ignore[dict-item]
    parameters=SECRET_FORMS,
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(400, schema=ErrorSchema, description="undecodable body (malformed_body); nothing stored")
@blp.alt_response(401, schema=ErrorSchema, description="the secret is not BREVO_WEBHOOK_TOKEN in any form; nothing stored")
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def brevo_events() -> dict[str, int]:
    require_secret(brevo.SOURCE, settings().brevo_webhook_token)
    body = signed_body(brevo.SOURCE)
    return ingest(brevo.SOURCE, body, lambda now: brevo.parse(body, now))


@blp.route("/postmark", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="Postmark webhook (one record a call)",
    requestBody=_json_body(PostmarkRecordSchema),
    parameters=SECRET_FORMS,
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(400, schema=ErrorSchema, description="undecodable body (malformed_body); nothing stored")
@blp.alt_response(401, schema=ErrorSchema, description="the secret is not POSTMARK_WEBHOOK_TOKEN in any form; nothing stored")
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def postmark_events() -> dict[str, int]:
    require_secret(postmark.SOURCE, settings().postmark_webhook_token)
    body = signed_body(postmark.SOURCE)
    return ingest(postmark.SOURCE, body, lambda now: postmark.parse(body, now))


# ---- Amazon SES through SNS ---------------------------------------------------------------------

SNS_EXTENSION = "responses.sns"


@dataclass(frozen=True)
class SnsGateway:
    """SNS signing certificates of this app, and the opener that reaches SNS (an injected one in tests)."""

    certificates: ses.Certificates
    opener: ses.Opener


def install_sns(flask_app: Flask, config: Settings, opener: ses.Opener | None = None) -> None:
    """The app's SNS gateway: certificates from SES_SNS_CERT_DIR, fetched (SES_SNS_FETCH_CERTS) through ``opener``."""
    opener = opener or ses.https_get
    folder = Path(config.ses_sns_cert_dir) if config.ses_sns_cert_dir else None
    flask_app.extensions[SNS_EXTENSION] = SnsGateway(ses.Certificates(folder, config.ses_sns_fetch_certs, opener), opener)


def sns_gateway() -> SnsGateway:
    return current_app.extensions[SNS_EXTENSION]  # type: ignore[no-any-return]


@blp.route("/ses", methods=["POST"])
@blp.doc(
    security=NO_BEARER,
    summary="Amazon SES events through an SNS HTTPS subscription (signed by SNS; one message a call)",
    requestBody={"required": True, "content": {"text/plain": {"schema": SnsMessageSchema}}},
)
@blp.response(200, IngestAnswerSchema)
@blp.alt_response(400, schema=ErrorSchema, description="undecodable body (malformed_body); nothing stored")
@blp.alt_response(
    401,
    schema=ErrorSchema,
    description="the topic is not in SES_SNS_TOPIC_ARNS, the certificate is not at hand, or the SNS signature does not "
    "verify; nothing stored",
)
@blp.alt_response(413, schema=ErrorSchema, description="over MAX_BODY_BYTES")
def ses_events() -> dict[str, int]:
    body = signed_body(ses.SOURCE)
    config, gateway = settings(), sns_gateway()
    envelope = ses.envelope_of(body)
    refused = ses.refusal(envelope, config.ses_sns_topic_arns, gateway.certificates)
    if refused is not None or envelope is None:
        raise unauthorized(ses.SOURCE, refused or "not an SNS message")
    confirmation = None
    if envelope.get("Type") == ses.SUBSCRIPTION_CONFIRMATION:
        if config.ses_sns_auto_confirm:
            confirmation = ses.confirm(envelope, gateway.opener)
        log.warning(
            "%s: subscription of %s to confirm (%s): see the provider notices",
            ses.SOURCE,
            envelope.get("TopicArn"),
            confirmation or "SES_SNS_AUTO_CONFIRM is off",
        )
    return ingest(ses.SOURCE, body, lambda now: ses.parse(body, now, confirmation))


# ---- canonical signals (bearer) --------------------------------------------------------------


@signals_blp.route("/signals", methods=["POST"])
@signals_blp.doc(
    summary="Signals from the sender: dispatch decisions it made, confirmations", requestBody=_json_body(CanonicalBodySchema)
)
@signals_blp.response(200, IngestAnswerSchema)
@signals_blp.alt_response(
    400, schema=ErrorSchema, description='not JSON, or not {"signals": [...]} (a bad item inside is quarantined alone)'
)
@signals_blp.alt_response(401, schema=ErrorSchema, description="missing or wrong bearer token")
def canonical_signals() -> dict[str, int]:
    try:
        body = read_decoded(settings().max_body_bytes)
    except ValueError as exc:
        raise ApiError(400, f"the body cannot be decoded: {exc}", "malformed_body") from None
    try:
        batch = canonical.parse(body, datetime.now(UTC))
    except orjson.JSONDecodeError:
        raise ApiError(400, "the request body is not valid JSON", "malformed_json") from None
    except ValueError as exc:
        raise ApiError(400, str(exc), "malformed_body") from None
    return answer(canonical.SOURCE, record(batch))
