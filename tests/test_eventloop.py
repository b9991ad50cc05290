"""`eventloop.run`: uvloop's loop where uvloop is installed, the standard loop otherwise."""

from __future__ import annotations

import asyncio
import sys

from prefkit import eventloop


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_when_it_is_installed():
    assert eventloop.run(loop_module()).startswith("uvloop")


def test_falls_back_to_the_standard_loop_without_uvloop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert eventloop.run(loop_module()).startswith("asyncio")
