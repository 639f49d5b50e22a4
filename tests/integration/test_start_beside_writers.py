"""An application starts on a SQLite file that another process is writing to (a follower, writers)."""

from __future__ import annotations

import threading

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import TRANSIENT, ViewFollower


def test_starting_beside_a_busy_follower_never_fails_with_database_is_locked(sqlite_url: str) -> None:
    """Seen in CI: `create_views` read, then wrote, while the follower committed in between, and SQLite
    refused at once ("database is locked"); starting is now retried as a whole."""
    busy = ResponsesApp(Settings(database_url=sqlite_url))
    follower = ViewFollower(busy, poll_interval=0.0)
    stop = threading.Event()

    def write_and_follow() -> None:
        n = 0
        while not stop.is_set():
            try:  # the busy side may meet the starting side's writes too: it retries, as its callers do
                busy.change_contact(f"c{n % 50}", {"do_not_use_email": bool(n % 2)})
                follower.run_once()
            except TRANSIENT:
                continue
            n += 1

    worker = threading.Thread(target=write_and_follow)
    worker.start()
    try:
        for _ in range(30):
            ResponsesApp(Settings(database_url=sqlite_url)).close()
    finally:
        stop.set()
        worker.join()
        busy.close()
