"""The library's SQLite persistence, every connection with ``secure_delete`` on (CONTRACT §12).

SQLite leaves deleted and overwritten row bytes in free space until the page is reused; with
``secure_delete`` it zeroes them. Erasure overwrites a person's clear copies in the views and destroys
their keys: with this on for every connection, from the first write, no old copy of an overwritten row
lingers in the file. Selected by ``PERSISTENCE_MODULE`` (``application.config.eventsourcing_env``)."""

from __future__ import annotations

from typing import Any

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory


class SecureDeletePool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA secure_delete = ON")
        return connection


class Factory(SQLiteFactory):
    def __init__(self, env: Any):
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = SecureDeletePool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
            pool_size=old.pool_size,
            max_overflow=old.max_overflow,
            pool_timeout=old.pool_timeout,
            max_age=old.max_age,
            pre_ping=old.pre_ping,
        )
        old.close()
