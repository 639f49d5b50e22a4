"""How the application stores and loads: the journal index, the signal writers, aggregate loading, the schema lock.

Commands load and save aggregates the library's way; provider signals go through a ``SignalWriter``
(one per store). Everything here writes and reads the library's own table in its stored format."""

from application.persistence.journal_index import JournalIndex, key_digest
from application.persistence.loading import load_many
from application.persistence.schema import schema_lock
from application.persistence.writer import SignalWriter, StoredRow, signal_writer

__all__ = ["JournalIndex", "SignalWriter", "StoredRow", "key_digest", "load_many", "schema_lock", "signal_writer"]
