"""Personal data in the journal: sealed on the way in, opened on the way out, destroyed by erasure (CONTRACT §12).

Every event state that names a ``subject`` has its personal fields (``domain.personal``) sealed under
that subject's data key when it is encoded, by the application's transcoder: the library's path
(commands, saved through the mapper) and the signal writer's (rows dumped by the same transcoder) seal
alike. Decoding through the transcoder opens them again while the key exists; once it is destroyed the
state comes back with its personal fields null and ``erased: true``. Readers that decode rows
themselves (the views' follower, the write path's reads, the history) open states with ``open_states``.
"""

from __future__ import annotations

import base64
import os
import re
from binascii import b2a_base64
from collections.abc import Iterable
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.encoding import _OPTIONS, OrjsonTranscoder
from application.persistence.keys import AddressHasher, DataKeys
from domain.personal import (
    ERASED,
    SEALED,
    SUBJECT,
    address_subject,
    mark_erased,
    merge_personal,
    split_personal,
)

NONCE_BYTES = 12


_CIPHERS: dict[bytes, AESGCM] = {}  # a key's cipher, made once (its key schedule costs as much as a small encryption)


def cipher(key: bytes) -> AESGCM:
    found = _CIPHERS.get(key)
    if found is None:
        if len(_CIPHERS) > 100_000:
            _CIPHERS.clear()
        found = _CIPHERS[key] = AESGCM(key)
    return found


class _Nonces:
    """Random 96-bit nonces drawn from the OS a few hundred at a time (one ``getrandom`` call, not one a seal:
    a system call costs as much as the encryption on a virtual machine). Taken with ``list.pop`` (atomic: threads
    never share one); emptied in a forked child, which must never use what its parent may use too."""

    DRAW = 256

    def __init__(self) -> None:
        self._pool: list[bytes] = []
        os.register_at_fork(after_in_child=self._pool.clear)

    def take(self) -> bytes:
        try:
            return self._pool.pop()
        except IndexError:
            drawn: list[bytes] = _SPLIT(os.urandom(NONCE_BYTES * self.DRAW))
            nonce = drawn.pop()
            self._pool.extend(drawn)
            return nonce


_SPLIT = re.compile(b".{%d}" % NONCE_BYTES, re.DOTALL).findall  # bytes into nonces, in C


_NONCES = _Nonces()


def seal(personal: dict[str, Any], key: bytes, subject: str) -> str:
    """One blob: a random 96-bit nonce and the AES-GCM ciphertext of the fields (JSON), bound to the subject;
    base64 text."""
    nonce = _NONCES.take()
    aead = _CIPHERS.get(key) or cipher(key)
    sealed = aead.encrypt(nonce, orjson.dumps(personal), subject.encode())
    return b2a_base64(nonce + sealed, newline=False).decode("ascii")  # base64.b64encode without its Python layer


def open_sealed(blob: str, key: bytes, subject: str) -> dict[str, Any]:
    data = base64.b64decode(blob)
    opened: dict[str, Any] = orjson.loads(cipher(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], subject.encode()))
    return opened


class Privacy:
    """Seals and opens event states with the subjects' data keys; names addresses by their keyed hash."""

    def __init__(self, keys: DataKeys, hasher: AddressHasher):
        self.keys = keys
        self.hasher = hasher
        self._cached_key = keys.cached_sealing_key

    def address_subject(self, email: str) -> str:
        return address_subject(self.hasher(email))

    def prepare(self, subjects: Iterable[str]) -> None:
        """Make (or fetch) the keys a batch will seal with, in one read."""
        self.keys.for_sealing(subjects)

    def seal_state(self, state: dict[str, Any]) -> dict[str, Any]:
        subject = state.get(SUBJECT)
        if not subject:
            return state
        clear, personal = split_personal(state)
        if not personal:
            return state
        key = self._cached_key(subject) or self.keys.sealing_key(subject)
        if clear is state:
            clear = dict(state)
        if key is None:  # the subject was erased: a late signal keeps none of its personal fields
            clear[ERASED] = True
        else:
            clear[SEALED] = seal(personal, key, subject)
        return clear

    def open_states(self, states: Iterable[dict[str, Any]], cursor: Any = None) -> None:
        """Open every sealed state in place (one read of the keys for them all; through ``cursor`` when the
        caller holds a transaction of the store)."""
        sealed = [s for s in states if SEALED in s]
        if not sealed:
            return
        keys = self.keys.for_opening({s[SUBJECT] for s in sealed}, cursor)
        for state in sealed:
            key = keys.get(state[SUBJECT])
            if key is None:
                mark_erased(state)
            else:
                merge_personal(state, open_sealed(state.pop(SEALED), key, state[SUBJECT]))

    def warm(self, stored_states: Iterable[bytes]) -> None:
        """Read the keys of the sealed ones among stored states in one query, before they are decoded one by
        one (loading a chunk of recipients would otherwise read a key a recipient)."""
        subjects = set()
        for state in stored_states:
            if b'"sealed"' in state:
                subject = orjson.loads(state).get(SUBJECT)
                if subject:
                    subjects.add(subject)
        if subjects:
            self.keys.for_opening(subjects)

    def open_state(self, state: dict[str, Any]) -> dict[str, Any]:
        self.open_states([state])
        return state


class SealingTranscoder(OrjsonTranscoder):
    """The application's transcoder: the library's stored format, personal fields sealed."""

    privacy: Privacy | None = None

    def encode(self, obj: Any) -> bytes:
        privacy = self.privacy
        if privacy is not None and type(obj) is dict and SUBJECT in obj:
            obj = privacy.seal_state(obj)
        try:  # OrjsonTranscoder.encode, written out (once an event)
            return orjson.dumps(obj, default=self._transcode, option=_OPTIONS)
        except TypeError:
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        obj = super().decode(data)
        if self.privacy is not None and type(obj) is dict and SEALED in obj:
            self.privacy.open_state(obj)
        return obj
