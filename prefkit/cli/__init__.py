"""The `prefkit` command line: a thin layer over the library; errors end in one line and an exit code."""

from prefkit.cli.app import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prefkit")


__all__ = ["cli", "main"]
