"""Sub-commands of the `weedseg` CLI, one module each (see weedseg/cli.py)."""
