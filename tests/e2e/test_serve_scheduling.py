"""The scheduling policy of a real ``idp serve`` worker's threads (Linux, idp.http.scheduling)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.processes import (
    ServeProcess,
    client_basic,
    create_client,
    migrate,
    serving,
    start_serve,
    wait_for,
)
from tests.support.server import free_port, make_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread policies are Linux's"),
]

WORKER_WAIT = 10.0


def worker_pid(server_pid: int) -> int | None:
    """The worker process granian forked from the server process, once there is one."""
    children = [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _parent(int(entry)) == server_pid
    ]
    return children[0] if len(children) == 1 else None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def policies(pid: int) -> dict[int, int]:
    """Each thread of ``pid`` and its scheduling policy."""
    found: dict[int, int] = {}
    for entry in os.listdir(f"/proc/{pid}/task"):
        try:
            found[int(entry)] = os.sched_getscheduler(int(entry))
        except OSError:  # a thread that ended meanwhile
            continue
    return found


def serve_some_tokens(url: str, client: dict[str, object]) -> None:
    with httpx.Client(base_url=url, timeout=10.0) as http:
        for _ in range(20):
            answer = http.post(
                "/token", data={"grant_type": "client_credentials"}, headers=client_basic(client)
            )
            assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("setting", [None, "off"])
def test_io_threads_run_batch_and_the_app_thread_keeps_its_policy(
    database_url: str, tmp_path: Path, setting: str | None
) -> None:
    port = free_port()
    env = make_env(database_url, port)
    if setting is not None:
        env["IDP_BATCH_IO_THREADS"] = setting
    migrate(env, tmp_path)
    client = create_client(env, tmp_path, "sched", "ES256")
    with serving(env, tmp_path, port) as server:
        worker = wait_for(lambda: worker_pid(server.process.pid), WORKER_WAIT, message="one worker")
        serve_some_tokens(server.url, client)
        threads = policies(worker)
        serve_some_tokens(server.url, client)

    # The thread running the app and the loop (the process's main thread) keeps the
    # normal policy either way: it still preempts hashing threads and other work on waking.
    assert threads[worker] == os.SCHED_OTHER
    batch = [tid for tid, policy in threads.items() if policy == os.SCHED_BATCH]
    if setting == "off":
        assert batch == [], threads
    else:
        assert batch, f"no thread of the worker runs SCHED_BATCH: {threads}"
        assert set(threads.values()) <= {os.SCHED_OTHER, os.SCHED_BATCH}


def test_a_worker_started_under_another_policy_is_left_as_it_was(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = make_env(database_url, port)
    migrate(env, tmp_path)
    started: list[ServeProcess] = []

    def start_batch() -> None:
        # A child takes the policy of the thread that forks it, as under ``chrt --batch 0``:
        # then the app's own thread stays SCHED_BATCH too, as its operator chose.
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        started.append(start_serve(env, tmp_path, port))

    starter = threading.Thread(target=start_batch)
    starter.start()
    starter.join()
    server = started[0]
    try:
        server.wait_ready()
        worker = wait_for(lambda: worker_pid(server.process.pid), WORKER_WAIT, message="one worker")
        threads = policies(worker)
    finally:
        server.stop()
    assert set(threads.values()) == {os.SCHED_BATCH}, threads
