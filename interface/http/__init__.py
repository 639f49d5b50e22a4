"""HTTP interface (CONTRACT §7): ``create_app`` builds the Flask service."""

from interface.http.factory import create_app

__all__ = ["create_app"]
