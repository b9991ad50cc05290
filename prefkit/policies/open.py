"""The policy a spec names, built with the settings every policy shares."""

from __future__ import annotations

from pathlib import Path

from prefkit.policies.base import Policy, PolicySettings
from prefkit.policies.spec import PolicySpec


def open_policy(spec: PolicySpec, settings: PolicySettings, task_ids: list[str], cache_path: Path) -> Policy:
    """The policy of `spec`: a replay file is read (and checked against `task_ids`) at once; the teacher keeps
    its answers in `cache_path`; a local model is loaded on `async with`."""
    if spec.kind == "replay":
        from prefkit.policies.replay import ReplayPolicy

        return ReplayPolicy(spec, task_ids)
    if spec.kind == "openai":
        from prefkit.policies.teacher import TeacherPolicy

        return TeacherPolicy(spec, settings, cache_path)
    from prefkit.policies.local import LocalPolicy

    return LocalPolicy(spec, settings)
