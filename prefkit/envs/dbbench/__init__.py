"""AgentBench DBBench: `config` (its settings, read by the registry), `env` (episodes played and graded as
AgentBench v0.2 does), `tasks` (the benchmark's task file read into ids and first-turn tasks), `engines` and
`server` (MariaDB or SQLite, contained)."""

NAME = "dbbench"
