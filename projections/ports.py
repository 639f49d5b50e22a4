"""What the projections need of whoever runs them: the follower's and the replay's ports.

``projections`` imports nothing from ``application``; the application (``ResponsesApp``) satisfies
these protocols by its shape, and passes itself in. What a port lists is all a follower or a replay
may call above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.persistence import ApplicationRecorder

from domain.rules import Ruleset
from projections.views import ViewsMixin


class StoreSettings(Protocol):
    """Where the journal and the views are."""

    @property
    def database_url(self) -> str: ...

    @property
    def is_postgres(self) -> bool: ...

    def eventsourcing_env(self) -> dict[str, str]: ...


class Following(Protocol):
    """A follower as the ones who wait for it use it (``projections.follower.ViewFollower``)."""

    @property
    def running(self) -> bool: ...

    def catch_up(self, until: int | None = None) -> None: ...

    def run_once(self) -> int: ...

    def nudge(self) -> None: ...


class ProjectionSource(Protocol):
    """What the follower reads and writes: the journal, the views, and the active generation's rules.

    ``follower`` is where a started follower registers itself, so the source's waits for the views
    catch up through it (``wait_for_views``)."""

    follower: Following | None

    @property
    def settings(self) -> StoreSettings: ...

    @property
    def recorder(self) -> ApplicationRecorder: ...

    @property
    def views(self) -> ViewsMixin: ...

    def open_states(self, states: Iterable[dict[str, Any]], cursor: Any = None) -> None:
        """Open the sealed personal fields of journal states in place (``erased`` where their key is gone)."""
        ...

    def generation(self) -> int: ...

    def active_rules(self) -> Ruleset: ...

    def ruleset(self, version: str) -> Ruleset: ...

    def journal_position(self) -> int: ...

    def views_position(self) -> int: ...


class ReplaySource(ProjectionSource, Protocol):
    """What a replay needs besides: the active rules' version, the swap of a rebuilt generation, and
    the audit history of a recipient under candidate rules (a what-if's examples)."""

    def active_version(self) -> str: ...

    def swap_generation(self, generation: int, version: str) -> None: ...

    def history(
        self,
        mailing_id: str,
        contact_id: str,
        as_of: datetime | None = None,
        rules: Ruleset | None = None,
        lang: str = "en",
        limit: int = ...,
        cursor: str | None = None,
        for_replay: bool = False,
    ) -> dict[str, Any]: ...


Progress = Callable[[int, int], None]  # (events read, events in all)
