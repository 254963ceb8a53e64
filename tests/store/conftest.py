"""Fixtures of the store conformance suite (the ``store`` fixture itself, over both backends,
is in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from idp.store.base import Store
from tests.support.records import a_user, a_web_client


@pytest.fixture
async def seeded(store: Store) -> Store:
    """The store with the client ``web`` and the user ``u1`` that sessions and codes name."""
    await store.create_client(a_web_client())
    await store.create_user(a_user())
    return store
