"""End-to-end helpers: the service started as real processes, configured only by the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.e2e import (
    Process,
)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    """Processes a test starts; all stopped (SIGTERM, by pid) at the end, logs shown on failure."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()
