"""`make test` tells a PostgreSQL short of connections apart from one that is slow or not there (issue 14, item 8)."""

from __future__ import annotations

from tests.helpers.stores import postgres_unavailable_message

URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_the_servers_own_refusal_is_named_with_its_counts() -> None:
    message = postgres_unavailable_message(URL, "connection failed: FATAL:  sorry, too many clients already", 100, 100)
    assert message.startswith("PostgreSQL refuses: too many connections (max_connections 100, in use 100)")
    assert "raise max_connections" in message


def test_the_refusal_is_named_even_when_the_counts_cannot_be_read() -> None:
    message = postgres_unavailable_message(
        URL, "FATAL:  remaining connection slots are reserved for non-replication superuser connections"
    )
    assert message.startswith("PostgreSQL refuses: too many connections (max_connections ?, in use ?)")


def test_a_pool_timeout_on_a_full_server_is_a_refusal() -> None:
    message = postgres_unavailable_message(URL, "couldn't get a connection after 10.00 sec", 100, 98)
    assert message.startswith("PostgreSQL refuses: too many connections (max_connections 100, in use 98)")


def test_a_pool_timeout_on_a_server_with_room_is_slowness() -> None:
    message = postgres_unavailable_message(URL, "couldn't get a connection after 10.00 sec", 100, 21)
    assert message.startswith(f"PostgreSQL at {URL} is slow: no connection in time (max_connections 100, in use 21)")
    assert "too many" not in message


def test_a_server_that_is_not_there_is_not_reachable() -> None:
    message = postgres_unavailable_message(
        URL, 'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'
    )
    assert message.startswith(f"PostgreSQL is not reachable at {URL}")
    assert "pg_ctlcluster" in message
