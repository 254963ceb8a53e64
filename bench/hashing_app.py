"""The service's app plus one route that verifies an argon2id password the way a login will.

``POST /bench/verify`` checks a fixed password against a hash made by ``idp.passwords``
(so with the service's parameters) in a worker thread, at most one hash per core at a time.
The benchmark loads it to keep every core hashing while it measures ``/jwks.json``.

``BENCH_HASH_NICE=N`` runs the hashing threads at nice N (Linux schedules niceness per
thread, and argon2's own lane threads inherit it), so the event loop's thread keeps
priority over the hashes.
"""

from __future__ import annotations

import asyncio
import os
import threading

from argon2 import PasswordHasher, extract_parameters
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.http.asgi import app_from_environment
from idp.passwords import hash_password

PASSWORD = "correct horse battery staple"


def create_app() -> Starlette:
    """The service from the environment, with ``POST /bench/verify`` added."""
    app = app_from_environment()
    stored = hash_password(PASSWORD)
    hasher = PasswordHasher.from_parameters(extract_parameters(stored))
    cores = os.cpu_count() or 1
    nice = int(os.environ.get("BENCH_HASH_NICE", "0"))
    niced: set[int] = set()
    bound: list[asyncio.Semaphore] = []

    def check() -> None:
        thread = threading.get_native_id()
        if nice and thread not in niced:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
            niced.add(thread)
        hasher.verify(stored, PASSWORD)

    async def verify(request: Request) -> Response:
        if not bound:
            bound.append(asyncio.Semaphore(cores))
        async with bound[0]:
            await asyncio.to_thread(check)
        return Response(status_code=204)

    app.router.routes.append(Route("/bench/verify", verify, methods=["POST"]))
    return app
