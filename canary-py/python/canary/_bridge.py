"""Awaiting Rust tasks. A task signals its end through a pipe, which the event loop watches, so
no Rust thread ever calls into Python to complete it (that can crash a process at exit)."""

from __future__ import annotations

import asyncio
from typing import Any

from ._canary import Pending


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await done
    finally:
        loop.remove_reader(fd)


async def wait(pending: Pending) -> Any:
    """The task's value, or its exception. Cancelling the awaiting task cancels the Rust task
    and waits for it to stop (a validation rolls the canary back first), then re-raises."""
    try:
        await _readable(pending.fileno())
    except asyncio.CancelledError:
        pending.cancel()
        await _readable(pending.fileno())
        raise
    return pending.result()
