"""Provider status mappings as data: one module a provider (CONTRACT §6, §7).

Each module names the status fields a mapping key may use (``FIELDS``, most specific
first) and its built-in mapping. A ruleset version without a mapping for a provider
uses the built-in one, so a provider added later works under every version.
"""

from __future__ import annotations

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
