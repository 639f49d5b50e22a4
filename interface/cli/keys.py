"""``responses keys``: new RESPONSES_KEK and RESPONSES_ADDRESS_KEY values (CONTRACT §12)."""

from __future__ import annotations

import argparse

from application.persistence.keys import new_key_text
from interface.cli.common import Commands, add_command


def add_keys(commands: Commands) -> None:
    p = add_command(
        commands,
        "keys",
        "print new keys for sealing personal data, as environment lines",
        "Prints a new RESPONSES_KEK and RESPONSES_ADDRESS_KEY (base64 of 32 random bytes each). Give every\n"
        "worker on every host the same values and keep them out of backups of the database.\n"
        "Rotating the KEK: put a new key first and keep the old ones after it (comma-separated);\n"
        "RESPONSES_ADDRESS_KEY is never rotated (lookups by address depend on it).",
        ("RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"),
    )
    p.set_defaults(func=keys)


def keys(args: argparse.Namespace) -> int:
    print(f"RESPONSES_KEK={new_key_text()}")
    print(f"RESPONSES_ADDRESS_KEY={new_key_text()}")
    return 0
