import subprocess
import sys

from weedseg.cli import build_parser


def test_every_command_has_help() -> None:
    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no API
    for name, command in names.items():
        assert command.format_help(), name


def test_cli_runs_as_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "weedseg", "--help"], capture_output=True, text=True, check=True
    )
    assert "weedseg" in out.stdout
