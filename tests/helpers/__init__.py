"""What tests share: constants, builders and signers, imported by name (``from tests.helpers.http import TOKEN``).

The ``conftest.py`` files hold only fixtures; everything a test imports lives here.
"""
