"""The settings of the DBBench environment (`env: {name: dbbench, ...}`, or `--env dbbench --engine ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from prefkit.envs.base import EnvConfig, Environment
from prefkit.envs.dbbench import NAME


class DBBenchConfig(EnvConfig):
    """AgentBench DBBench on MariaDB (a server prefkit starts, or yours) or SQLite."""

    name: Literal["dbbench"] = NAME
    engine: Literal["mariadb", "sqlite"] = Field(
        "mariadb", description="dbbench: mariadb (a server prefkit starts, or --db-url) or sqlite (quick runs)."
    )
    db_url: str | None = Field(None, description="dbbench: mysql://USER:PASSWORD@HOST:PORT of a running server.")
    max_round: int = Field(
        5, ge=1, le=1000, description="dbbench: most statements an episode runs (AgentBench's default)."
    )
    statement_timeout: float = Field(10.0, gt=0, le=3600, description="dbbench: seconds one SQL statement may run.")

    format: ClassVar[str] = "react"
    style: ClassVar[str | None] = "dbbench"
    opening_messages: ClassVar[int] = 3  # the instruction, the injected "Ok.", the question
    headline: ClassVar[str | None] = "overall_cat_accuracy"
    benchmark: ClassVar[str] = "AgentBench"
    metrics_key: ClassVar[str] = "agentbench"
    metrics_how: ClassVar[str] = "as its `calculate_overall` computes them"

    @model_validator(mode="after")
    def _url_for_mariadb(self) -> DBBenchConfig:
        if self.db_url and self.engine != "mariadb":
            raise ValueError("db_url is for the mariadb engine")
        return self

    def open(self, tasks: Path, concurrency: int = 1) -> Environment:
        """DBBench over AgentBench's task file (JSONL, or a JSON list)."""
        from prefkit.envs.dbbench.env import DBBench

        return DBBench(
            tasks,
            engine=self.engine,
            db_url=self.db_url,
            max_round=self.max_round,
            statement_timeout=self.statement_timeout,
            concurrency=concurrency,
        )
