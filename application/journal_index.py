"""Moved to ``application.persistence.journal_index``; this name stays importable (the same module object,
so ``monkeypatch.setattr`` on either name patches the one the writer and readers use)."""

import sys

from application.persistence import journal_index as _moved

sys.modules[__name__] = _moved
