"""The HTTP API (CONTRACT §7): its blueprints under ``/v1``, registered by ``interface.http.api.register_api``.

The service itself is built by the interface's root, ``interface.app.create_app``, over this package and
the pages (``interface.web``); the two share only ``interface.shared``.
"""
