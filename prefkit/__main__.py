"""Allow `python -m prefkit` (and `accelerate launch -m prefkit`)."""

from prefkit.cli import main

if __name__ == "__main__":
    main()
