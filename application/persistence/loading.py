"""Loading whole aggregates for commands: raw rows read with one query per 500 ids, folded by the library."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

CHUNK = 500


def load_many(app: Application[uuid.UUID], ids: Sequence[uuid.UUID], is_postgres: bool) -> dict[uuid.UUID, Aggregate]:
    """Reconstruct several aggregates from their events, read with one query per 500 ids."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    by_id: dict[uuid.UUID, list[Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        if is_postgres:
            schema = recorder.datastore.schema
            name = f'"{schema}"."{table}"' if schema else f'"{table}"'
            sql = f"SELECT * FROM {name} WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
            params: Any = (chunk,)
        else:
            sql = f"SELECT * FROM {table} WHERE originator_id IN ({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version"
            params = [i.hex for i in chunk]
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            rows = c.fetchall()
        privacy = getattr(app, "privacy", None)
        if privacy is not None:  # the keys of the sealed ones, in one read
            privacy.warm(bytes(row["state"]) for row in rows)
        for row in rows:
            oid = row["originator_id"]
            oid = oid if isinstance(oid, uuid.UUID) else uuid.UUID(oid)
            stored = StoredEvent(
                originator_id=oid, originator_version=row["originator_version"], topic=row["topic"], state=bytes(row["state"])
            )
            by_id.setdefault(oid, []).append(app.mapper.to_domain_event(stored))
    aggregates: dict[uuid.UUID, Aggregate] = {}
    for oid, events in by_id.items():
        aggregate: Any = None
        for event in events:
            aggregate = event.mutate(aggregate)
        aggregates[oid] = aggregate
    return aggregates
