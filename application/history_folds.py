"""At most ``HISTORY_FOLDS_MAX`` audit histories fold a recipient's whole journal at once in a process.

A page for now under the active rules folds from the views' nearest checkpoint (at most
``CHECKPOINT_SIGNALS`` + ``limit`` signals) and takes no slot; ``as_of`` or another rules version
fold the journal from its start, streamed, each holding a slot while it folds. One more than the
slots waits a moment for one, then is refused (``HistoryBusy``: a 429 with ``Retry-After``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SLOT_WAIT_SECONDS = 0.05  # how long a whole-journal history waits for a slot before it is refused
RETRY_AFTER_SECONDS = 2  # what the refusal suggests


class HistoryBusy(Exception):
    """Every slot for whole-journal history folds is taken in this process: try again shortly."""

    def __init__(self, slots: int, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(
            f"{slots} audit histories folding whole journals (as_of or another rules version) are running; "
            f"try again in {retry_after} s"
        )
        self.slots = slots
        self.retry_after = retry_after


class FoldSlots:
    """The slots of one process (one application: a process serves one)."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self._free = threading.BoundedSemaphore(self.size)

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._free.acquire(timeout=SLOT_WAIT_SECONDS):
            raise HistoryBusy(self.size)
        try:
            yield
        finally:
            self._free.release()


_creating = threading.Lock()


def fold_slots(app: Any) -> FoldSlots:
    """The application's slots, made on first use with ``settings.history_folds_max`` of them."""
    slots: FoldSlots | None = getattr(app, "_history_fold_slots", None)
    if slots is None:
        with _creating:
            slots = getattr(app, "_history_fold_slots", None)
            if slots is None:
                slots = FoldSlots(app.settings.history_folds_max)
                app._history_fold_slots = slots
    return slots
