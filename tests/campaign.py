"""A simulated campaign for tests: ``interface.simulate`` driving the app through its own HTTP path.

The ``app`` fixture's follower has no thread; the transport catches the views up whenever the
simulator asks ``/readyz`` (as a running service's follower would have meanwhile).
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.simulate import ClientTransport, Report, Simulator


class CaughtUpTransport(ClientTransport):
    def __init__(self, client: FlaskClient, app: ResponsesApp):
        super().__init__(client)
        self.app = app

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        if path == "/readyz":
            self.app.wait_for_views()
        return super().__call__(method, path, body, headers)


def simulate_campaign(
    app: ResponsesApp,
    client: FlaskClient,
    token: str,
    unione_key: str,
    recipients: int = 60,
    mailing_id: str = "sim-spring",
    seed: int = 7,
) -> Report:
    """A campaign of ``recipients`` through the UniOne webhook (shuffled batches, retries): a repeatable one."""
    simulator = Simulator(CaughtUpTransport(client, app), token, unione_key, lambda *_: None, seed=seed)
    report = simulator.run(recipients, mailing_id)
    app.wait_for_views()
    return report
