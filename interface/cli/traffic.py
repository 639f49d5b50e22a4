"""Provider traffic: ``responses simulate`` (a campaign's signals) and ``responses send`` (one body from a file)."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from application.config import Settings
from application.service import ResponsesApp
from interface.app import create_app
from interface.cli.common import DEFAULT_URL, Commands, add_command, open_app, progress_bar
from interface.runner import ProjectorLock, background_follower
from interface.shared.token_file import read_token_file


def add_simulate(commands: Commands) -> None:
    p = add_command(
        commands,
        "simulate",
        "a realistic campaign's signals, for demos and load",
        "Creates a mailing with N recipients, dispatches it, then posts UniOne batches of 100\n"
        "events (shuffled, every 25th batch twice, as a provider retries), signed with the first\n"
        "UNIONE_API_KEYS key, and prints a JSON report with the mailing's summary.",
        ("DATABASE_URL", "RESPONSES_API_TOKENS", "UNIONE_API_KEYS", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"),
        note="With --url: the service's token (RESPONSES_API_TOKENS, else ./var/api-token) and a UniOne key it\n"
        "accepts are needed. Without: DATABASE_URL is used in this process, with keys of its own if unset.",
    )
    p.add_argument("--recipients", type=int, required=True, metavar="N", help="audience size (at least 1)")
    p.add_argument("--url", metavar="URL", help=f"a running service, e.g. {DEFAULT_URL} (default: this process, on DATABASE_URL)")
    p.add_argument("--mailing", metavar="ID", help="id of the new mailing (default: sim-<UTC time>)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed, for a repeatable campaign (default: a new one each run)")
    p.set_defaults(func=simulate)


def simulate(args: argparse.Namespace) -> int:
    from interface.simulate import ClientTransport, HttpTransport, SimulationError, Simulator  # lazily: start-up time

    if args.recipients < 1:
        raise SystemExit("--recipients must be at least 1")
    settings = Settings.from_env()
    app: ResponsesApp | None = None
    lock = ProjectorLock(settings)
    if args.url:
        token = (settings.api_tokens or (read_token_file(),))[0]
        if not token or not settings.unione_api_keys:
            raise SystemExit("--url needs RESPONSES_API_TOKENS (or ./var/api-token) and UNIONE_API_KEYS the service accepts")
        transport: Any = HttpTransport(args.url)
        key = settings.unione_api_keys[0]
    else:  # this process: its own keys unless configured, and a follower unless another process projects
        token = (settings.api_tokens or (secrets.token_urlsafe(16),))[0]
        key = (settings.unione_api_keys or (secrets.token_hex(20),))[0]
        settings = replace(settings, api_tokens=(token,), unione_api_keys=(key,))
        app = open_app(settings)
        background_follower(app, lock)
        logging.getLogger("responses.webhooks").setLevel(logging.WARNING)  # the progress bar says it
        transport = ClientTransport(create_app(app, settings).test_client())
    try:
        with progress_bar("provider batches", "batch") as update:
            simulator = Simulator(transport, token, key, lambda done, total, _events: update(done, total), seed=args.seed)
            report = simulator.run(args.recipients, args.mailing)
    except SimulationError as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if app is not None and app.follower is not None:
            app.follower.stop()
        lock.release()
        if app is not None:
            app.close()
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    return 0


# ---- send ---------------------------------------------------------------------------------------

SEND_ENV = (
    "UNIONE_API_KEYS",
    "ELASTICEMAIL_WEBHOOK_TOKEN",
    "MAILGUN_WEBHOOK_SIGNING_KEYS",
    "BREVO_WEBHOOK_TOKEN",
    "POSTMARK_WEBHOOK_TOKEN",
)
SEND_PROVIDERS = ("unione", "elasticemail", "mailgun", "brevo", "postmark")


def add_send(commands: Commands) -> None:
    p = add_command(
        commands,
        "send",
        "post a provider's webhook body from a file to a running service, signed as the provider signs it",
        'unione: FILE is one webhook body (JSON); its "auth" value (AUTH_PLACEHOLDER or an old\n'
        "signature) is replaced by the MD5 signature made with the first UNIONE_API_KEYS key.\n"
        "elasticemail: FILE holds notifications, one query string a line (# comments), each sent\n"
        "with ?token=ELASTICEMAIL_WEBHOOK_TOKEN.\n"
        "mailgun: FILE is one webhook body or a JSON array of them, each posted signed now (its signature\n"
        "block's timestamp, and signature made with the first MAILGUN_WEBHOOK_SIGNING_KEYS key).\n"
        "brevo: FILE is one webhook body (an event, or a JSON array of them), sent as it is with\n"
        "Authorization: Bearer BREVO_WEBHOOK_TOKEN.\n"
        "postmark: FILE is one record or a JSON array of records, each posted with\n"
        "Authorization: Bearer POSTMARK_WEBHOOK_TOKEN.\n"
        "SendGrid and Amazon SES (SNS) sign with private keys: not here.\n"
        "Prints the service's answer (several lines: their sum).",
        SEND_ENV,
    )
    p.add_argument("provider", choices=SEND_PROVIDERS, help="whose webhook to post to")
    p.add_argument("file", metavar="FILE", help="the body to send (see above)")
    p.add_argument("--url", default=DEFAULT_URL, help="the running service")
    p.set_defaults(func=send)


class SendRefused(Exception):
    """What ``responses send`` cannot do, said on stderr (exit 2)."""


Post = tuple[str, bytes, str]  # url, body, content type
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
T = TypeVar("T")


def send(args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        print(f"{source}: file does not exist", file=sys.stderr)
        return 2
    try:
        posts, headers = _posts(args.provider, source, Settings.from_env(), args.url.rstrip("/"))
    except SendRefused as refused:
        print(refused, file=sys.stderr)
        return 2
    total: dict[str, int] = {}
    for url, data, content_type in posts:
        status, answer = _post(url, data, content_type, headers)
        if status != 200 or not isinstance(answer, dict):
            print(f"the service answered {status}: {json.dumps(answer, ensure_ascii=False)}", file=sys.stderr)
            return 1
        for name, value in answer.items():
            total[name] = total.get(name, 0) + int(value)
    print(json.dumps(total, separators=(",", ":")))  # as the service answers it
    return 0


def _posts(provider: str, source: Path, settings: Settings, base: str) -> tuple[list[Post], dict[str, str]]:
    """The calls that post ``source`` as ``provider`` posts it, and their headers; ``SendRefused`` when the
    provider's secret is not configured or the file is not what that provider sends."""
    url = f"{base}/v1/webhooks/{provider}"
    if provider == "unione":
        from interface.simulate import sign_unione_body

        key = _configured(settings.unione_api_keys, "UNIONE_API_KEYS is not set: its first key signs the body")[0]
        return [(url, _readable(source, lambda: sign_unione_body(source.read_bytes(), key)), JSON)], {}
    if provider == "mailgun":
        keys = _configured(
            settings.mailgun_webhook_signing_keys, "MAILGUN_WEBHOOK_SIGNING_KEYS is not set: its first key signs each body"
        )
        return [(url, _signed_mailgun(body, keys[0]), JSON) for body in _readable(source, lambda: _json_bodies(source))], {}
    if provider == "brevo":
        token = _configured(settings.brevo_webhook_token, "BREVO_WEBHOOK_TOKEN is not set: it goes with the body")
        return [(url, source.read_bytes(), JSON)], {"Authorization": f"Bearer {token}"}
    if provider == "postmark":
        token = _configured(settings.postmark_webhook_token, "POSTMARK_WEBHOOK_TOKEN is not set: it goes with each record")
        records = _readable(source, lambda: _json_bodies(source))
        return [(url, json.dumps(r, ensure_ascii=False).encode(), JSON) for r in records], {"Authorization": f"Bearer {token}"}
    token = _configured(
        settings.elasticemail_webhook_token, "ELASTICEMAIL_WEBHOOK_TOKEN is not set: it goes with every notification"
    )
    lines = [line.strip() for line in source.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [(f"{url}?token={quote(token)}", line.encode(), FORM) for line in lines], {}


def _configured(value: T | None, missing: str) -> T:
    if not value:
        raise SendRefused(missing)
    return value


def _readable(source: Path, read: Callable[[], T]) -> T:
    """What ``read`` makes of the file; its ``ValueError`` said as the file's problem."""
    try:
        return read()
    except ValueError as exc:
        raise SendRefused(f"{source}: {exc}") from None


def _json_bodies(source: Path) -> list[Any]:
    """A file of one JSON body, or a JSON array of bodies (each posted on its own)."""
    try:
        document = json.loads(source.read_bytes())
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return document if isinstance(document, list) else [document]


def _signed_mailgun(body: Any, key: str) -> bytes:
    """A Mailgun body signed now: its signature block's timestamp (and a token, when it has none) and signature."""
    from interface.providers.mailgun import sign

    if not isinstance(body, dict):
        raise SystemExit("a Mailgun body is a JSON object")
    block = body.get("signature") if isinstance(body.get("signature"), dict) else {}
    timestamp = str(int(time.time()))
    token = block.get("token") if isinstance(block.get("token"), str) and block.get("token") else secrets.token_hex(25)
    signed = {**body, "signature": {**block, "timestamp": timestamp, "token": token, "signature": sign(timestamp, token, key)}}
    return json.dumps(signed, ensure_ascii=False).encode()


def _post(url: str, data: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")
    except urllib.error.URLError as error:
        raise SystemExit(f"cannot reach {url.split('?', 1)[0]}: {error.reason}") from None
