"""The registration rate limit's rule, as a pure function of a counter and the time, and its
atomic count in the store on both backends."""

from __future__ import annotations

import asyncio

import pytest

from idp.sso.rate_limit import count_request, rate_key, take_request
from idp.store.base import Store

KEY = rate_key("register", "192.0.2.7")


def test_requests_count_until_the_limit_then_wait_for_the_window() -> None:
    counter = None
    for n in range(3):
        verdict, change = count_request(counter, KEY, 100.0 + n, 3, 60)
        assert verdict.allowed
        (counter,) = change.put
    assert counter is not None and counter.failures == 3 and counter.expires_at == 160.0
    verdict, change = count_request(counter, KEY, 130.0, 3, 60)
    assert not verdict.allowed and verdict.retry_after == 30.0 and change.put == ()
    verdict, change = count_request(counter, KEY, 160.0, 3, 60)
    assert verdict.allowed and change.put[0].failures == 1 and change.put[0].expires_at == 220.0


def test_ipv6_addresses_count_per_64() -> None:
    assert rate_key("register", "2001:db8::1") == rate_key("register", "2001:db8::ffff")
    assert rate_key("register", "2001:db8::1") != rate_key("register", "2001:db8:0:1::1")


@pytest.mark.anyio
async def test_parallel_requests_cannot_outrun_the_limit(store: Store) -> None:
    verdicts = await asyncio.gather(*(take_request(store, KEY, 1000.0, 4, 60) for _ in range(10)))
    assert sum(v.allowed for v in verdicts) == 4
