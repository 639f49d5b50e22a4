"""On PostgreSQL the follower wakes on the recorder's NOTIFY, not on its poll."""

from __future__ import annotations

import time

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import ViewFollower


def test_the_follower_applies_a_write_long_before_its_next_poll_on_postgres(postgres_url: str) -> None:
    app = ResponsesApp(Settings(database_url=postgres_url))
    follower = ViewFollower(app, poll_interval=30.0).start()  # a poll would wait 30 s
    try:
        time.sleep(0.5)  # idle: waiting on LISTEN
        writer = ResponsesApp(Settings(database_url=postgres_url))
        writer.change_contact("c-1", {"do_not_use_email": True})
        target = writer.journal_position()
        writer.close()
        deadline = time.monotonic() + 10
        while app.views_position() < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.views_position() == target, "the follower slept through the NOTIFY"
    finally:
        follower.stop()
        app.close()
