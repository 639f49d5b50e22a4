"""Data keys: one per subject (a contact, or an address no contact holds), wrapped by the key-encryption key.

The ``data_keys`` table is the only place a data key exists at rest, and only wrapped (AES-GCM under the
first ``RESPONSES_KEK``, tagged with that key's id so every listed key can unwrap). Destroying a subject's
key overwrites its row (``wrapped`` NULL, ``destroyed_at`` set): every field sealed under it is gone from
every copy of the journal, and the row stays, so the subject never gets a new key (a late signal for an
erased contact keeps no personal field). CONTRACT §12.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 4
OPEN_CACHE_SECONDS = 1.0  # how long a process trusts that a key it opened with still exists (erasure elsewhere)


class KeyError_(ValueError):
    """A key setting that cannot be used (not base64 of 32 bytes)."""


def decode_key(text: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_(f"{name} must be base64 of {KEY_BYTES} bytes") from None
    if len(raw) != KEY_BYTES:
        raise KeyError_(f"{name} must be base64 of {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def new_key_text() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class KeyRing:
    """The key-encryption keys: the first wraps, any unwraps (rotation: put the new key first)."""

    def __init__(self, keys: Iterable[bytes]):
        self.keys = list(keys)
        if not self.keys:
            raise KeyError_("RESPONSES_KEK holds no key")
        self.by_id = {self.key_id(k): AESGCM(k) for k in self.keys}
        self.current = self.key_id(self.keys[0])

    @staticmethod
    def key_id(key: bytes) -> bytes:
        return hashlib.sha256(b"responses-kek\x00" + key).digest()[:KEY_ID_BYTES]

    def wrap(self, data_key: bytes, subject: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self.current + nonce + self.by_id[self.current].encrypt(nonce, data_key, subject.encode())

    def unwrap(self, wrapped: bytes, subject: str) -> bytes:
        kek = self.by_id.get(bytes(wrapped[:KEY_ID_BYTES]))
        if kek is None:
            raise KeyError_("a data key is wrapped by a key-encryption key RESPONSES_KEK does not list")
        body = bytes(wrapped[KEY_ID_BYTES:])
        return kek.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], subject.encode())


class AddressHasher:
    """The pseudonymous identity of an address: HMAC-SHA256 under ``RESPONSES_ADDRESS_KEY`` of the
    normalised address (never rotated with the KEK: correlation and lookups depend on it)."""

    def __init__(self, key: bytes):
        self.key = key

    def __call__(self, email: str) -> str:
        return hmac.new(self.key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class DataKeys:
    """Get, create and destroy subjects' data keys, in the store's ``data_keys`` table.

    A key used to seal is cached for the process's life (an erased subject's cached key only seals more
    ciphertext nobody can open). A key used to open is trusted for ``OPEN_CACHE_SECONDS``: an erasure in
    another process is seen within that time."""

    TABLE = "data_keys"

    def __init__(self, datastore: Any, ring: KeyRing, is_postgres: bool):
        self.datastore = datastore
        self.ring = ring
        self.is_postgres = is_postgres
        self.mark = "%s" if is_postgres else "?"
        self._sealing: dict[str, bytes] = {}
        self.cached_sealing_key = self._sealing.get  # the process's cache alone (None: ask ``sealing_key``)
        self._opening: dict[str, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def create_table(self) -> None:
        blob = "BYTEA" if self.is_postgres else "BLOB"
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (subject TEXT PRIMARY KEY, wrapped {blob}, destroyed_at TEXT)")

    def _read(self, c: Any, subjects: list[str]) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for i in range(0, len(subjects), 500):
            part = subjects[i : i + 500]
            c.execute(f"SELECT subject, wrapped FROM {self.TABLE} WHERE subject IN ({', '.join([self.mark] * len(part))})", part)
            for row in c.fetchall():
                wrapped = row["wrapped"]
                found[row["subject"]] = None if wrapped is None else self.ring.unwrap(bytes(wrapped), row["subject"])
        return found

    def sealing_key(self, subject: str) -> bytes | None:
        """One subject's key for sealing: the process's cache first (the signal path's common case)."""
        key = self._sealing.get(subject)
        return key if key is not None else self.for_sealing([subject])[subject]

    def for_sealing(self, subjects: Iterable[str]) -> dict[str, bytes | None]:
        """Each subject's key, created when it has none; None for a destroyed one (its fields are not kept)."""
        wanted = sorted(set(subjects))
        with self._lock:
            answer: dict[str, bytes | None] = {s: self._sealing[s] for s in wanted if s in self._sealing}
        missing = [s for s in wanted if s not in answer]
        if not missing:
            return answer
        with self.datastore.transaction(commit=False) as c:
            found = self._read(c, missing)
        fresh = [s for s in missing if s not in found]
        if fresh:  # written first, then read: a transaction that reads before it writes meets "database is locked" on SQLite
            rows = [(s, self.ring.wrap(os.urandom(KEY_BYTES), s)) for s in fresh]
            conflict = "ON CONFLICT (subject) DO NOTHING"
            with self.datastore.transaction(commit=True) as c:
                c.executemany(f"INSERT INTO {self.TABLE} (subject, wrapped) VALUES ({self.mark}, {self.mark}) {conflict}", rows)
                found.update(self._read(c, fresh))  # another process may have made one first: its key wins
        with self._lock:
            for subject, key in found.items():
                if key is not None:
                    self._sealing[subject] = key
        answer.update(found)
        return answer

    def for_opening(self, subjects: Iterable[str], cursor: Any = None) -> dict[str, bytes | None]:
        """Each subject's key, None when destroyed or never made (nothing sealed under it can be opened)."""
        now = time.monotonic()
        wanted = sorted(set(subjects))
        answer: dict[str, bytes | None] = {}
        with self._lock:
            for s in wanted:
                cached = self._opening.get(s)
                if cached is not None and now - cached[0] < OPEN_CACHE_SECONDS:
                    answer[s] = cached[1]
        missing = [s for s in wanted if s not in answer]
        if missing:
            if cursor is not None:  # inside the caller's transaction: never a second connection (see the follower)
                found = self._read(cursor, missing)
            else:
                with self.datastore.transaction(commit=False) as c:
                    found = self._read(c, missing)
            with self._lock:
                if len(self._opening) > 100_000:
                    self._opening.clear()
                for s in missing:
                    answer[s] = found.get(s)
                    self._opening[s] = (now, answer[s])
        return answer

    def destroy(self, c: Any, subjects: Iterable[str], at: str) -> None:
        """In the caller's transaction: every subject's key overwritten, and marked destroyed (made so
        when it never had one)."""
        rows = [(s, at) for s in sorted(set(subjects))]
        if not rows:
            return
        m = self.mark
        c.executemany(
            f"INSERT INTO {self.TABLE} (subject, wrapped, destroyed_at) VALUES ({m}, NULL, {m}) "
            f"ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, "
            f"destroyed_at = COALESCE({self.TABLE}.destroyed_at, excluded.destroyed_at)",
            rows,
        )

    def forget_cached(self, subjects: Iterable[str]) -> None:
        with self._lock:
            for s in subjects:
                self._sealing.pop(s, None)
                self._opening.pop(s, None)


def ensure_key_file(path: Path, make: Callable[[], str] = new_key_text) -> str:
    """The key kept in ``path`` (by default base64 of 32 random bytes, else what ``make`` gives); made (mode
    0600) when missing. Processes starting together agree on one: each writes its candidate to a file of its
    own and links it into place, and the first link wins."""
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except OSError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(make() + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass  # another process's key is in place: use it
    finally:
        os.unlink(candidate)
    return path.read_text(encoding="utf-8").strip()


def key_ring(setting: tuple[str, ...], fallback: Path | None) -> KeyRing:
    """``RESPONSES_KEK`` (the first encrypts, all decrypt), else the key kept in ``fallback`` (SQLite only)."""
    texts = list(setting) or ([ensure_key_file(fallback)] if fallback is not None else [])
    if not texts:
        raise KeyError_("RESPONSES_KEK is required")
    return KeyRing(decode_key(t, "RESPONSES_KEK") for t in texts)


def address_hasher(setting: str | None, fallback: Path | None) -> AddressHasher:
    text = setting or (ensure_key_file(fallback) if fallback is not None else None)
    if not text:
        raise KeyError_("RESPONSES_ADDRESS_KEY is required")
    return AddressHasher(decode_key(text, "RESPONSES_ADDRESS_KEY"))
