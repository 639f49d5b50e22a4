"""Amazon SNS as the tests play it: a test certificate authority, an SNS signing certificate it issued (the
PEM goes in a tmp SES_SNS_CERT_DIR: Amazon's cannot be fetched here), envelopes signed over SNS's canonical
string (SignatureVersion 1, SHA1withRSA, or 2, SHA256withRSA), and an opener standing in for the network."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REGION = "us-east-1"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_NAME = "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
CERT_URL = f"https://sns.{REGION}.amazonaws.com/{CERT_NAME}"
SUBSCRIBE_URL = f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb6"
CANONICAL = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    pem: bytes  # the certificate, as SigningCertURL serves it


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA of the tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@cache
def certificate_authority() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _issue("Test Root CA", key, "Test Root CA", key, ca=True)


@cache
def signer(name: str = "sns.amazonaws.com") -> Signer:
    """A key and its certificate, issued by the test CA (``name``: another signer for the wrong-key cases)."""
    ca_key, _ = certificate_authority()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = _issue(name, key, "Test Root CA", ca_key, ca=False)
    return Signer(key, certificate.public_bytes(serialization.Encoding.PEM))


def cert_dir(folder: Path, name: str = CERT_NAME, who: Signer | None = None) -> Path:
    """``folder`` holding the signing certificate as SES_SNS_CERT_DIR does."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes((who or signer()).pem)
    return folder


def canonical_string(envelope: dict[str, Any]) -> bytes:
    lines: list[str] = []
    for name in CANONICAL[envelope["Type"]]:
        if name in envelope:
            lines += [name, envelope[name]]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def signed(envelope: dict[str, Any], version: str = "1", who: Signer | None = None) -> dict[str, Any]:
    """The envelope with SignatureVersion, SigningCertURL (unless given) and its Signature."""
    envelope = {"SignatureVersion": version, "SigningCertURL": CERT_URL, **envelope}
    envelope["SignatureVersion"] = version
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = (who or signer()).key.sign(canonical_string(envelope), padding.PKCS1v15(), algorithm)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def notification(
    message: dict[str, Any] | str, message_id: str = "19ba9823-d7f2-53c1-860e-cb10e0d13dfc", **extra: Any
) -> dict[str, Any]:
    """An SNS Notification carrying ``message`` (an SES event, serialised as SNS does, with its newline)."""
    text = message if isinstance(message, str) else json.dumps(message) + "\n"
    envelope = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Event Notification",
        "Message": text,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:5e2d",
    }
    return {**envelope, **extra}


def subscription_confirmation(**extra: Any) -> dict[str, Any]:
    """An SNS SubscriptionConfirmation (django-anymail's SNS_SUBSCRIPTION_CONFIRMATION, in the topic's region)."""
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb6",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2012-04-26T20:45:04.751Z",
        **extra,
    }


def body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


@dataclass
class FakeOpener:
    """The network as the tests allow it: URL → bytes (or an exception); every call recorded."""

    answers: dict[str, bytes | Exception] = field(default_factory=dict)
    calls: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, url: str, timeout: float) -> bytes:
        self.calls.append((url, timeout))
        answer = self.answers.get(url, ConnectionError("no network in the tests"))
        if isinstance(answer, Exception):
            raise answer
        return answer
