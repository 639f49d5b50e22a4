"""Amazon SES events delivered by Amazon SNS over HTTPS: the SNS signature, subscriptions, parsing (CONTRACT §6).

SNS posts a JSON envelope (``Type``: ``Notification``, ``SubscriptionConfirmation`` or
``UnsubscribeConfirmation``) signed with RSA over its canonical string: SignatureVersion 1 is SHA1withRSA,
2 is SHA256withRSA. The certificate named by ``SigningCertURL`` (https, ``sns.<region>.amazonaws.com``, the
topic's region) is looked up in ``SES_SNS_CERT_DIR`` by the URL's last path segment (a plain file name), else
fetched once and kept in memory, only with ``SES_SNS_FETCH_CERTS=1``. ``TopicArn`` must be one of
``SES_SNS_TOPIC_ARNS``. A ``Notification``'s ``Message`` is the SES event: event publishing (``eventType``) or an
identity notification (``notificationType``), about one or several recipients (a signal each). A subscription
confirmation is kept as a provider notice with its ``SubscribeURL``; with ``SES_SNS_AUTO_CONFIRM=1`` the
service visits it itself. Fetching a certificate and confirming are the only reaches outside the machine: both
off by default, https to SNS hosts only, 5 s, through an injectable ``Opener``.
"""

from __future__ import annotations

import base64
import copy
import re
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from domain.signals import Notice, ParsedBatch, ProviderEvent, Quarantined, Signal, dedup_key, normalise_email

from .common import (
    Malformed,
    correlation,
    json_text,
    load_json,
    opt_str,
    parse_utc,
    require_object,
    require_storable,
    shown,
)

SOURCE = "ses"
NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
# what SNS signs, in this order (a Notification's Subject only when it has one)
CANONICAL_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
FETCH_TIMEOUT = 5.0  # seconds: a certificate, a subscription confirmation
MAX_FETCHED_BYTES = 64 * 1024
MAX_CACHED_CERTIFICATES = 64
_SNS_HOST = re.compile(r"sns\.([a-z0-9-]{1,40})\.amazonaws\.com(?:\.cn)?")
_TOPIC_ARN = re.compile(r"arn:aws(?:-[a-z]+){0,2}:sns:([a-z0-9-]{1,40}):\d{12}:[A-Za-z0-9_.-]{1,256}")
_PLAIN_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.pem")
# the SES message's object holding the event's details, by event type
DETAILS = {
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Delivery": "delivery",
    "Send": "send",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "Rendering Failure": "failure",
    "DeliveryDelay": "deliveryDelay",
    "Subscription": "subscription",
}
# the event's own list of recipients, when it has one (else the mail's destination)
RECIPIENT_LISTS = {
    "Bounce": "bouncedRecipients",
    "Complaint": "complainedRecipients",
    "DeliveryDelay": "delayedRecipients",
    "Delivery": "recipients",
}
INBOUND = "Received"  # an inbound mail notification: not a sending event

# An opener fetches an https URL within the timeout (seconds) and returns the body; it raises on any failure.
Opener = Callable[[str, float], bytes]


# ---- the reach outside the machine ------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would leave the SNS host that was checked: refused (urllib raises the 3xx)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def https_get(url: str, timeout: float) -> bytes:
    """The default opener: a GET over https with the system's trust store, no redirect, at most
    ``MAX_FETCHED_BYTES``, within ``timeout`` seconds (each network step, and the whole read)."""
    if urlsplit(url).scheme != "https":
        raise ValueError("only https")
    opener = urllib.request.build_opener(_NoRedirects, urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    deadline = time.monotonic() + timeout
    with opener.open(urllib.request.Request(url, headers={"User-Agent": "recipient-responses"}), timeout=timeout) as response:
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(8192):
            size += len(chunk)
            if size > MAX_FETCHED_BYTES:
                raise ValueError(f"more than {MAX_FETCHED_BYTES} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not read within {timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


def sns_url(url: Any, region: str) -> str | None:
    """Why ``url`` is not an https URL of the SNS endpoint of ``region`` (None when it is)."""
    if not isinstance(url, str) or not url:
        return "no URL"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    host = _SNS_HOST.fullmatch(parts.hostname or "")
    if parts.scheme != "https" or host is None or parts.username is not None or parts.password is not None:
        return "not https on an SNS host (sns.<region>.amazonaws.com)"
    if port not in (None, 443):
        return "not https on an SNS host (sns.<region>.amazonaws.com)"
    if host.group(1) != region:
        return f"an SNS host of another region than the topic's ({region})"
    return None


def topic_region(topic_arn: str) -> str | None:
    match = _TOPIC_ARN.fullmatch(topic_arn)
    return match.group(1) if match else None


@dataclass
class Certificates:
    """SNS signing certificates: ``folder`` first (a PEM named like the URL's last path segment), else fetched
    once (only when ``fetch``), both kept in memory by URL."""

    folder: Path | None
    fetch: bool
    opener: Opener
    timeout: float = FETCH_TIMEOUT
    _cache: dict[str, x509.Certificate] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, url: str) -> tuple[x509.Certificate | None, str]:
        """The certificate of ``url`` (checked already: an SNS https URL), or None with why."""
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        if _PLAIN_FILE.fullmatch(name) is None:
            return None, "the certificate URL does not end in a plain .pem file name"
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None:
                return cached, ""
            if self.folder is not None and (self.folder / name).is_file():
                return self._keep(url, (self.folder / name).read_bytes(), f"{name} in SES_SNS_CERT_DIR")
            if not self.fetch:
                return None, f"the certificate {name} is not in SES_SNS_CERT_DIR, and fetching is off (SES_SNS_FETCH_CERTS)"
            try:
                pem = self.opener(url, self.timeout)
            except Exception as exc:  # any failure to fetch: not authenticated, said in the log
                return None, f"the certificate could not be fetched: {type(exc).__name__}: {shown(str(exc))}"
            return self._keep(url, pem, "the fetched certificate")

    def _keep(self, url: str, pem: bytes, what: str) -> tuple[x509.Certificate | None, str]:
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            return None, f"{what} is not a PEM certificate"
        if len(self._cache) >= MAX_CACHED_CERTIFICATES:
            self._cache.pop(next(iter(self._cache)))
        self._cache[url] = certificate
        return certificate, ""


# ---- authenticity -----------------------------------------------------------------------------------


def envelope_of(body: bytes) -> dict[str, Any] | None:
    """The SNS envelope a body is, or None."""
    try:
        document = load_json(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _kind(envelope: Mapping[str, Any]) -> str | None:
    """The SNS message's ``Type`` when it is one of the three SNS sends (whatever else the field holds: None)."""
    kind = envelope.get("Type")
    return kind if isinstance(kind, str) and kind in CANONICAL_FIELDS else None


def canonical_string(envelope: Mapping[str, Any]) -> bytes | None:
    """What SNS signs: ``name\\nvalue\\n`` for each field of the message's type, in order (None when one is
    missing or not text; a Notification's Subject only when present)."""
    names = CANONICAL_FIELDS.get(_kind(envelope))
    if names is None:
        return None
    parts: list[str] = []
    for name in names:
        value = envelope.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            return None
        parts += [name, value]
    return ("\n".join(parts) + "\n").encode("utf-8", "surrogatepass")


def refusal(envelope: Mapping[str, Any] | None, topics: Collection[str], certificates: Certificates) -> str | None:
    """Why the envelope is not an authentic SNS message of an allowed topic (None when it is)."""
    if envelope is None:
        return "the body is not an SNS message (a JSON object)"
    if _kind(envelope) is None:
        return "not an SNS Notification or (Un)SubscriptionConfirmation"
    topic = envelope.get("TopicArn")
    if not isinstance(topic, str) or topic not in topics:
        return "the topic is not one of SES_SNS_TOPIC_ARNS"
    region = topic_region(topic)
    if region is None:
        return "the topic is not an SNS topic ARN"
    version = envelope.get("SignatureVersion")
    if version not in HASHES:
        return "SignatureVersion is neither 1 nor 2"
    signed = canonical_string(envelope)
    if signed is None:
        return "a signed field is missing or not text"
    url = envelope.get("SigningCertURL")
    wrong_url = sns_url(url, region)
    if wrong_url is not None:
        return f"SigningCertURL: {wrong_url}"
    certificate, why = certificates.get(url)  # type: ignore[arg-type]
    if certificate is None:
        return why
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "the certificate's key is not RSA"
    try:
        key.verify(
            base64.b64decode(envelope.get("Signature") or "", validate=True), signed, padding.PKCS1v15(), HASHES[version]()
        )
    except Exception:  # bad base64, InvalidSignature: not authentic
        return "the signature does not verify with the certificate"
    return None


def confirm(envelope: Mapping[str, Any], opener: Opener, timeout: float = FETCH_TIMEOUT) -> str:
    """Visit a SubscriptionConfirmation's ``SubscribeURL`` (an SNS host of the topic's region, this topic's
    ConfirmSubscription); what happened, said in a few words."""
    url, topic = envelope.get("SubscribeURL"), str(envelope.get("TopicArn"))
    wrong = sns_url(url, topic_region(topic) or "")
    if wrong is not None:
        return f"not confirmed: SubscribeURL is {wrong}"
    query = parse_qs(urlsplit(url).query)  # type: ignore[type-var]
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn", [topic]) != [topic]:
        return "not confirmed: SubscribeURL is not this topic's ConfirmSubscription"
    try:
        opener(url, timeout)  # type: ignore[arg-type]
    except Exception as exc:  # any failure: the operator can still confirm it by hand
        return f"not confirmed: {type(exc).__name__}: {shown(str(exc))}"
    return "confirmed"


# ---- parsing ----------------------------------------------------------------------------------------


def parse(body: bytes, now: datetime, confirmation: str | None = None) -> ParsedBatch:
    """Parse an (already authenticated) SNS message: a Notification's SES event gives a signal per recipient;
    a subscription message, or a Notification that is no sending event, is a provider notice (``confirmation``:
    what auto-confirming did). ``ValueError`` when the body is not an SNS message."""
    envelope = envelope_of(body)
    if envelope is None:
        raise ValueError("the body is not an SNS message (a JSON object)")
    kind, message_id, text = _kind(envelope), envelope.get("MessageId"), envelope.get("Message")
    if kind is None or not isinstance(message_id, str) or not message_id or not isinstance(text, str):
        raise ValueError("not an SNS message: Type, MessageId and Message are required")
    batch = ParsedBatch()
    if kind != NOTIFICATION:
        raw = {name: envelope.get(name) for name in ("Type", "MessageId", "TopicArn", "Timestamp", "Message", "SubscribeURL")}
        if confirmation is not None:
            raw["auto_confirm"] = confirmation
        _keep(batch, envelope, lambda: [_notice(kind, message_id, raw, now)])
        return batch
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:  # SNS's own text ("Successfully validated SNS topic…"): a notice
        raw = {"TopicArn": envelope.get("TopicArn"), "MessageId": message_id, "Message": text}
        _keep(batch, envelope, lambda: [_notice(NOTIFICATION, message_id, raw, now)])
        return batch
    _keep(batch, message, lambda: _message(message, envelope, now), text)
    return batch


def _keep(batch: ParsedBatch, item: Any, build: Callable[[], list[ProviderEvent | Notice]], raw_text: str | None = None) -> None:
    """What ``build`` makes of one SNS message, or the message quarantined whole (``common.collect``'s rule, for a
    message that may name several recipients)."""
    try:
        require_storable(item)
        made = build()
    except ValueError as exc:
        batch.quarantined.append(Quarantined(SOURCE, raw_text if raw_text is not None else json_text(item), str(exc)))
        return
    for one in made:
        (batch.notices if isinstance(one, Notice) else batch.events).append(one)  # type: ignore[arg-type]


def _notice(kind: str, message_id: str, raw: Any, now: datetime) -> Notice:
    return Notice(provider=SOURCE, key=dedup_key("ses-notice", message_id), kind=kind, received_at=now, raw=raw)


def _message(message: Any, envelope: Mapping[str, Any], now: datetime) -> list[ProviderEvent | Notice]:
    message = require_object(message, "the SNS Message")
    kind = message.get("eventType", message.get("notificationType"))
    message_id = str(envelope["MessageId"])
    if not isinstance(kind, str) or not kind or kind == INBOUND or not isinstance(message.get("mail"), dict):
        # no sending event: SES's "AmazonSnsSubscriptionSucceeded", an inbound mail's notification…
        name = kind if isinstance(kind, str) and kind else NOTIFICATION
        raw = {"TopicArn": envelope.get("TopicArn"), "MessageId": message_id, "notificationType": name}
        if name != INBOUND:  # an inbound mail's notification holds the mail: not kept
            raw["Message"] = message
        return [_notice(name, message_id, raw, now)]
    mail: dict[str, Any] = message["mail"]
    details = _object(message, DETAILS.get(kind))
    fields = {"eventType": kind}
    if kind == "Bounce":
        for name in ("bounceType", "bounceSubType"):
            value = opt_str(details.get(name), name)
            if value:
                fields[name] = value
    occurred_at = _time(details, mail, envelope)
    url = opt_str(details.get("link"), "click.link") if kind == "Click" else None
    user_agent = opt_str(details.get("userAgent"), "userAgent") if kind in ("Open", "Click") else None
    tags = _tags(mail)
    recipients = _recipients(kind, details, mail)
    events: list[ProviderEvent | Notice] = []
    for address, entry in recipients.items():
        signal = Signal(
            key=dedup_key(SOURCE, message_id, address),
            source=SOURCE,
            fields=fields,
            received_at=now,
            occurred_at=occurred_at,
            url=url,
            detail=_detail(kind, details, entry),
            user_agent=user_agent,
            raw=message if len(recipients) == 1 else _narrowed(message, kind, address),
        )
        events.append(ProviderEvent(signal=signal, correlation=correlation(tags, address)))
    return events


def _object(container: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{name!r} is not an object")
    return value


def _time(details: Mapping[str, Any], mail: Mapping[str, Any], envelope: Mapping[str, Any]) -> datetime:
    """The event's own ``timestamp``, else the mail's (a Send, a Reject), else SNS's."""
    for where, source in (("the event's", details), ("mail.", mail), ("SNS", envelope)):
        value = source.get("timestamp" if source is not envelope else "Timestamp")
        if value is None:
            continue
        try:
            return parse_utc(value)
        except ValueError as exc:
            raise Malformed(f"unparsable {where} timestamp: {exc}") from None
    raise Malformed("no timestamp")


def _tags(mail: Mapping[str, Any]) -> dict[str, Any]:
    """``mail.tags`` (message tags, lists of values): the first value of ``mailing_id``, ``contact_id``, ``test``.
    Identity notifications carry none: the address names the recipient."""
    tags = mail.get("tags")
    if not isinstance(tags, dict):
        return {}
    named: dict[str, Any] = {}
    for name in ("mailing_id", "contact_id", "test"):
        value = tags.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            named[name] = value
    return named


def _recipients(kind: str, details: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    """The event's recipients (each once, by normalised address) with their entry of the event's list: its own
    list when it has one, else the mail's ``destination``."""
    listed = details.get(RECIPIENT_LISTS[kind]) if kind in RECIPIENT_LISTS else None
    source = "mail.destination"
    if listed is not None:
        source = RECIPIENT_LISTS[kind]
    else:
        listed = mail.get("destination")
    if not isinstance(listed, list) or not listed:
        raise Malformed(f"no recipient: {source!r} is not a list of addresses")
    recipients: dict[str, Any] = {}
    for entry in listed:
        address = _address_of(entry)
        if not address:
            raise Malformed(f"a recipient of {source!r} is not an address: {shown(entry)}")
        recipients.setdefault(address, entry)
    return recipients


def _detail(kind: str, details: Mapping[str, Any], entry: Any) -> str | None:
    """What the receiving side or SES said: a recipient's diagnostic code, the complaint's feedback type, the
    SMTP answer, the reason of a rejection, a rendering error."""
    candidates: list[Any] = []
    if isinstance(entry, dict):
        candidates.append(entry.get("diagnosticCode"))
    candidates += [details.get(name) for name in ("complaintFeedbackType", "smtpResponse", "reason", "errorMessage", "delayType")]
    for value in candidates:
        text = opt_str(value, f"{kind} detail")
        if text and text.strip():
            return text
    return None


def _narrowed(message: dict[str, Any], kind: str, address: str) -> dict[str, Any]:
    """The message as one of its several recipients' signal keeps it: the lists of recipients reduced to theirs,
    the headers (which name every recipient) left out, so erasing one recipient leaves no trace of them in
    another's journal."""
    narrowed = copy.deepcopy(message)
    mail = narrowed["mail"]
    mail.pop("headers", None)
    mail.pop("commonHeaders", None)
    if isinstance(mail.get("destination"), list):
        mail["destination"] = [address]
    details = narrowed.get(DETAILS.get(kind, ""))
    if isinstance(details, dict) and isinstance(details.get(RECIPIENT_LISTS.get(kind, "")), list):
        listed = details[RECIPIENT_LISTS[kind]]
        details[RECIPIENT_LISTS[kind]] = [e for e in listed if _address_of(e) == address]
    return narrowed


def _address_of(entry: Any) -> str | None:
    """A recipient entry's address: ``{"emailAddress": …}`` or the text itself (``Name <address>`` too)."""
    text = entry.get("emailAddress") if isinstance(entry, dict) else entry
    address = normalise_email(parseaddr(text)[1]) if isinstance(text, str) else None
    return address if address and "@" in address else None
