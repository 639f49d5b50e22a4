"""Provider status mappings as data: one module a provider (CONTRACT §6, §7).

Each module names the status fields a mapping key may use (``FIELDS``, most specific
first) and its built-in mapping. A ruleset version without a mapping for a provider
uses the built-in one, so a provider added later works under every version.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from domain.mappings import brevo, elasticemail, mailgun, postmark, sendgrid, ses, unione
from domain.mappings.target import Target

MAPPING_FIELDS: dict[str, tuple[str, ...]] = {
    "unione": unione.FIELDS,
    "elasticemail": elasticemail.FIELDS,
    "sendgrid": sendgrid.FIELDS,
    "mailgun": mailgun.FIELDS,
    "brevo": brevo.FIELDS,
    "postmark": postmark.FIELDS,
    "ses": ses.FIELDS,
}

# The built-in mappings of ruleset version 1, every provider.
BUILTIN_MAPPINGS: dict[str, dict[str, Target]] = {
    "unione": unione.VERSION_1,
    "elasticemail": elasticemail.VERSION_1,
    "sendgrid": sendgrid.VERSION_1,
    "mailgun": mailgun.VERSION_1,
    "brevo": brevo.VERSION_1,
    "postmark": postmark.VERSION_1,
    "ses": ses.VERSION_1,
}

# The built-in mappings of ruleset version "builtin-2": version 1's, with UniOne's and SendGrid's read as
# their own tools read them (issue 17). A provider with one mapping only has the same in both.
BUILTIN_MAPPINGS_2: dict[str, dict[str, Target]] = {
    **BUILTIN_MAPPINGS,
    "unione": unione.VERSION_2,
    "sendgrid": sendgrid.VERSION_2,
}
# The providers added after the stored ruleset documents of issue 14 (issue 17). A document states their mapping
# only where it differs from the built-in one: reading a document without it gives the built-in one, so adding a
# provider changes no ruleset document, no what-if's identity, written before or after it.
LATER_PROVIDERS: tuple[str, ...] = ("ses", "mailgun", "brevo", "postmark")


def without_builtin_later_mappings(document: Mapping[str, Any]) -> dict[str, Any]:
    """A ruleset document (``Ruleset.to_document``) without the mappings of ``LATER_PROVIDERS`` that are their
    built-in ones: what is journaled, and what identifies a what-if (``Ruleset.from_document`` fills them in)."""
    mappings = document.get("provider_mappings")
    if not isinstance(mappings, Mapping):
        return dict(document)
    stated = {
        provider: mapping
        for provider, mapping in mappings.items()
        if provider not in LATER_PROVIDERS or mapping != _builtin_documents()[provider]
    }
    return {**document, "provider_mappings": stated}


@cache
def _builtin_documents() -> dict[str, dict[str, Any]]:
    return {
        provider: {key: target.to_document() for key, target in BUILTIN_MAPPINGS[provider].items()}
        for provider in LATER_PROVIDERS
    }
