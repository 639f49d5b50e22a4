"""Helpers for the domain unit tests: building signals and folding journals.

The helpers are exposed as (session-scoped, stateless) fixtures rather than
imported from this module, so that another ``conftest.py`` elsewhere in the
tree can never shadow them.

Times: ``at`` / ``occurred_at`` are either aware datetimes or a ``timedelta``
offset from ``T0`` (the moment the mailing started, unless a test says otherwise)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.helpers.signals import (
    T0,
    fold_signals,
    make_provider_signal,
    make_system_signal,
    make_unione_signal,
)


@pytest.fixture(scope="session")
def t0() -> datetime:
    return T0


@pytest.fixture(scope="session")
def provider_signal():
    """``provider_signal(source, fields, at=timedelta|datetime, key=None, occurred_at=..., url=..., ...)``"""
    return make_provider_signal


@pytest.fixture(scope="session")
def unione():
    """``unione(status, at=..., key=None, delivery_status=None, url=..., user_agent=..., ...)``"""
    return make_unione_signal


@pytest.fixture(scope="session")
def system():
    """``system(kind, at=..., key=None, reason=..., detail=...)``"""
    return make_system_signal


@pytest.fixture(scope="session")
def fold_all():
    """``fold_all(signals, rules=DEFAULT_RULESET, mailing_start=T0, state=None) -> (state, steps)``"""
    return fold_signals
