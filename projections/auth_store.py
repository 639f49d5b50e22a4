"""Sign-in sessions and failed-credential counts, kept in the views' database so every worker shares them.

Two small tables beside the views (created once at start-up, under the schema lock, by
``interface.shared.guard.install_guard``):

``auth_sessions``  one row a signed-in page session: a digest of its id (the cookie holds the id, the
                   table never does), who it belongs to (a token fingerprint) and when it began.
                   Signing out deletes the row; rows past the longest lifetime are pruned at each sign-in.
``auth_failures``  one row a client address: the start of its current one-minute window and the failed
                   credentials counted in it. Rows whose window ended are pruned at each failure.

Times are seconds since the epoch (the caller's clock, so tests can move it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.views import ViewsMixin

MAX_ADDRESS_LENGTH = 64  # an IPv6 address with a zone fits; anything longer is cut, not stored whole

DDL = (
    "CREATE TABLE IF NOT EXISTS auth_sessions (id TEXT PRIMARY KEY, who TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS auth_sessions_started ON auth_sessions (started_at)",
    "CREATE TABLE IF NOT EXISTS auth_failures (address TEXT PRIMARY KEY, window_start DOUBLE PRECISION NOT NULL, "
    "failures INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS auth_failures_window ON auth_failures (window_start)",
)

# One statement: a failure opens a new window when the address's last one ended, else counts in it
# (both CASEs read the row as it was; concurrent failures of one address wait for each other's row lock).
COUNT_FAILURE = (
    "INSERT INTO auth_failures (address, window_start, failures) VALUES (?, ?, 1) "
    "ON CONFLICT (address) DO UPDATE SET "
    "failures = CASE WHEN auth_failures.window_start <= ? THEN 1 ELSE auth_failures.failures + 1 END, "
    "window_start = CASE WHEN auth_failures.window_start <= ? THEN excluded.window_start ELSE auth_failures.window_start END "
    "RETURNING failures, window_start"
)


@dataclass(frozen=True)
class FailureWindow:
    """The failed credentials counted for one address in its current window."""

    failures: int
    window_start: float


class AuthStore:
    """The two tables, through the views' recorder (its connections, its placeholders)."""

    def __init__(self, views: ViewsMixin):
        self.views = views

    def _sql(self, statement: str) -> str:
        return statement if self.views.placeholder == "?" else statement.replace("?", "%s")

    def _write(self, statements: list[tuple[str, tuple[Any, ...]]], *, returning: bool = False) -> list[Any]:
        """Run ``statements`` in one transaction, a write first (SQLite then waits for its write lock
        instead of failing to upgrade a read); with ``returning``, the rows the last one returns."""
        with self.views.cursor(commit=True) as c:
            for statement, params in statements:
                c.execute(self._sql(statement), params)
            return list(c.fetchall()) if returning else []

    def _read(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        with self.views.cursor(commit=False) as c:
            c.execute(self._sql(statement), params)
            return list(c.fetchall())

    def create_tables(self) -> None:
        with self.views.cursor(commit=True) as c:
            for statement in DDL:
                c.execute(statement)

    # ---- sessions --------------------------------------------------------------------------

    def open_session(self, session_key: str, who: str, now: float, *, forget_before: float) -> None:
        """Record a session begun ``now``; sessions begun before ``forget_before`` (past any lifetime) go."""
        self._write(
            [
                ("DELETE FROM auth_sessions WHERE started_at < ?", (forget_before,)),
                ("INSERT INTO auth_sessions (id, who, started_at) VALUES (?, ?, ?)", (session_key, who, now)),
            ]
        )

    def session_started(self, session_key: str) -> float | None:
        """When the session began, or None: never opened, signed out, or pruned."""
        rows = self._read("SELECT started_at FROM auth_sessions WHERE id = ?", (session_key,))
        return float(rows[0]["started_at"]) if rows else None

    def end_session(self, session_key: str) -> None:
        self._write([("DELETE FROM auth_sessions WHERE id = ?", (session_key,))])

    def session_count(self) -> int:
        return int(self._read("SELECT COUNT(*) AS n FROM auth_sessions", ())[0]["n"])

    # ---- failed credentials ------------------------------------------------------------------

    def count_failure(self, address: str, now: float, window_seconds: float) -> FailureWindow:
        """Count one failure of ``address`` (in a new window when its last one ended); ended windows are pruned."""
        ended = now - window_seconds
        address = address[:MAX_ADDRESS_LENGTH]
        rows = self._write(
            [
                ("DELETE FROM auth_failures WHERE window_start <= ?", (ended,)),
                (COUNT_FAILURE, (address, now, ended, ended)),
            ],
            returning=True,
        )
        return FailureWindow(int(rows[0]["failures"]), float(rows[0]["window_start"]))

    def failures(self, address: str, now: float, window_seconds: float) -> FailureWindow | None:
        """The address's window still running at ``now``, or None."""
        rows = self._read(
            "SELECT failures, window_start FROM auth_failures WHERE address = ? AND window_start > ?",
            (address[:MAX_ADDRESS_LENGTH], now - window_seconds),
        )
        return FailureWindow(int(rows[0]["failures"]), float(rows[0]["window_start"])) if rows else None

    def failure_rows(self) -> int:
        return int(self._read("SELECT COUNT(*) AS n FROM auth_failures", ())[0]["n"])
