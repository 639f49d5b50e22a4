"""The marketer's pages: server-rendered HTML over the same application queries and use cases as the API.

One blueprint per page area (``pages_auth``, ``pages_mailings``, ``pages_contacts``, ``pages_rules``,
``pages_inbox``) under the site's parent blueprint (``site``); the root (``interface.app``) calls
``register_web``. The pages import what they share with the API from ``interface.shared``, never the API.
"""

from interface.web.site import register_web

__all__ = ["register_web"]
