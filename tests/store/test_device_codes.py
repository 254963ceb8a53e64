"""Device codes (RFC 8628) in the store, on both backends: found by user code while pending,
decided once, polled one at a time so an approved code is redeemed once, and collected
once expired."""

from __future__ import annotations

import asyncio

import pytest

from idp.oauth.device import PollOutcome, poll_device_code
from idp.store.base import DeviceApproval, DeviceCodeRecord, DeviceCodeStatus, Store


def a_device(n: int = 0, *, expires_at: float = 1000.0) -> DeviceCodeRecord:
    return DeviceCodeRecord(
        id=f"dev{n}",
        device_code_hash=bytes([n]) * 32,
        user_code_hash=bytes([n + 100]) * 32,
        client_id="web",
        scope=("openid", "profile"),
        created_at=0.0,
        expires_at=expires_at,
        poll_interval=5,
    )


def approval(now: float, approved: bool = True) -> DeviceApproval:
    return DeviceApproval(approved, "u1", "sid-1", 1.0, ("pwd", "otp"), "urn:idp:acr:mfa", now)


@pytest.mark.anyio
async def test_pending_code_is_found_by_user_code_and_decided_once(seeded: Store) -> None:
    store = seeded
    await store.create_device_code(a_device())
    found = await store.find_device_code(bytes([100]) * 32, 10.0)
    assert found == a_device()
    assert await store.find_device_code(bytes([100]) * 32, 1000.0) is None  # expired
    assert await store.find_device_code(bytes([99]) * 32, 10.0) is None
    decided = await asyncio.gather(
        *(store.decide_device_code("dev0", approval(20.0)) for _ in range(4))
    )
    assert sorted(decided) == [False, False, False, True]
    assert await store.find_device_code(bytes([100]) * 32, 30.0) is None  # no longer pending
    assert not await store.decide_device_code("dev0", approval(30.0, approved=False))


@pytest.mark.anyio
async def test_an_approved_code_is_redeemed_by_one_poll(seeded: Store) -> None:
    store = seeded
    await store.create_device_code(a_device())
    assert await store.decide_device_code("dev0", approval(20.0))

    async def one_poll() -> PollOutcome:
        polled = await store.poll_device_code(
            bytes([0]) * 32, lambda device: poll_device_code(device, "web", 30.0)[1]
        )
        assert polled is not None
        return poll_device_code(polled[0], "web", 30.0)[0]

    outcomes = await asyncio.gather(*(one_poll() for _ in range(4)))
    assert sorted(o.value for o in outcomes) == ["redeemed", "reused", "reused", "reused"]
    polled = await store.poll_device_code(bytes([0]) * 32, lambda device: device)
    assert polled is not None
    after = polled[1]
    assert after.status == DeviceCodeStatus.REDEEMED
    assert (after.user_id, after.sid, after.amr, after.acr) == (
        "u1",
        "sid-1",
        ("pwd", "otp"),
        "urn:idp:acr:mfa",
    )
    assert after.redeemed_at == 30.0
    assert await store.poll_device_code(bytes([9]) * 32, lambda device: device) is None


@pytest.mark.anyio
async def test_expired_device_codes_are_collected_in_batches(seeded: Store) -> None:
    store = seeded
    for n in range(3):
        await store.create_device_code(a_device(n, expires_at=100.0 + n))
    assert await store.delete_expired_device_codes(101.0, 10) == 2
    assert await store.delete_expired_device_codes(1000.0, 10) == 1
    assert await store.delete_expired_device_codes(1000.0, 10) == 0
