"""`weedseg` command line: one sub-command per module in `weedseg.commands`.

Each command module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`, and imports
nothing heavy at module level (torch only inside `run`), so `weedseg predict` and `weedseg serve`
work where torch is not installed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from weedseg import __version__, commands
from weedseg.errors import WeedsegError


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The `weedseg` parser; `defaults=False` leaves unset options out of the namespace."""
    parser = argparse.ArgumentParser(
        prog="weedseg",
        description="Crop/weed segmentation with Selective Masking self-supervised pretraining.",
    )
    parser.add_argument("--version", action="version", version=f"weedseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = info.name.replace("_", "-")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        if not defaults:
            for action in command._actions:
                action.default = argparse.SUPPRESS
        command.set_defaults(run=module.run)
    return parser


def given_options(argv: list[str] | None = None) -> frozenset[str]:
    """The options the command line sets itself rather than by default (`args.given`), so a
    `--resume` can tell a flag the user repeated from one left at its default."""
    parsed = vars(build_parser(defaults=False).parse_args(argv))
    return frozenset(parsed) - {"command", "run"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.given = given_options(argv)
    try:
        return int(args.run(args) or 0)
    except (WeedsegError, FileExistsError, FileNotFoundError) as exc:
        print(f"weedseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"weedseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
