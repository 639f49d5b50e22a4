"""The library's stored format, written with orjson.

Events are stored exactly as the library's ``JSONTranscoder`` stores them (the same
``{"_type_", "_data_"}`` objects for datetimes, UUIDs and decimals), so its mapper, the
repository and the views read them unchanged; only the encoding runs in orjson's C code.
Anything orjson cannot write the way the library would (an integer past 64 bits, a key
that is not a string) is written by the library's own encoder instead. Decoding stays
the library's: it is off the write path, and keeps every value exactly as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder`` whose ``encode`` is orjson (same bytes' meaning; falls back when it must)."""

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._transcode, option=_OPTIONS)
        except TypeError:  # e.g. an int past 64 bits, a non-str key, a UUID (orjson writes those its own way)
            return super().encode(obj)

    def _transcode(self, o: Any) -> Any:
        if type(o) is datetime:
            return {"_type_": "datetime_iso", "_data_": o.isoformat()}
        return self._encode_obj(o)
