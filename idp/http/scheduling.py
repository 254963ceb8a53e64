"""How a worker's threads share a core: granian's I/O threads under ``SCHED_BATCH`` (Linux).

A granian worker has two busy threads: Rust I/O threads that read and write the sockets,
and the Python thread that runs the app. Under the default policy (``SCHED_OTHER``), an I/O
thread woken by a socket event preempts the Python thread at once, so under load the two
switch places for about every request, and on a core they share the switches cost more
than a small request does (bench/README.md, bench/compare: JWKS answers went from about
32,000 to 68,000 a second on one core with I/O threads under ``SCHED_BATCH``). An I/O thread under
``SCHED_BATCH`` (sched(7)) never preempts on waking: it runs once the Python thread waits
or its time slice ends, and then handles every socket that is ready. The Python thread
keeps its policy, so it still preempts on waking, for example the password hashing threads.

granian starts its I/O threads from the Python thread after the app's start-up and before
the event loop first runs; a new thread takes its policy from the thread that starts it.
So the Python thread switches to ``SCHED_BATCH`` at the end of start-up and back at the
loop's first iteration. Changing between the normal policies needs no privilege; where
the call fails (another OS, a seccomp filter), the threads keep their policy. A worker
started under another policy than the default (``chrt`` by its operator, say) is left as
it was.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("idp.http")


def batch_threads_started_before_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Threads this thread starts until ``loop`` runs its first callbacks get
    ``SCHED_BATCH``; this thread gets ``SCHED_OTHER`` back then. False, changing nothing,
    where the platform lacks the policies or this thread is not under ``SCHED_OTHER``."""
    batch = getattr(os, "SCHED_BATCH", None)
    normal = getattr(os, "SCHED_OTHER", None)
    if batch is None or normal is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        if os.sched_getscheduler(0) != normal:
            return False
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError as exc:
        log.warning("I/O threads keep the default scheduling: %s", exc)
        return False
    loop.call_soon(_restore, normal)
    return True


def _restore(normal: int) -> None:
    try:
        os.sched_setscheduler(0, normal, os.sched_param(0))
    except OSError as exc:  # the policy this thread had a moment ago: not expected to fail
        log.warning("could not restore this thread's scheduling policy: %s", exc)
