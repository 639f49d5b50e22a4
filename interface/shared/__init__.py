"""What the API (``interface.http``) and the pages (``interface.web``) both use, and neither owns.

The services a request reaches (``context``), the error shape (``errors``), the throttle of failed
credentials (``guard``), the token kept under ``./var/`` (``token_file``), the audience as CSV
(``audience_csv``), request fields (``fields``) and the schemas of a contact's changes
(``contact_changes``). It imports neither of them; the root (``interface.app``) imports all three.
"""
