"""A config dataclass declares its flags; one parser and one builder take any command's config."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest
import yaml

from weedseg.config_flags import add_config_flags, config_from_args, flag
from weedseg.errors import WeedsegError


@dataclass
class ToyConfig:
    out: str = field(metadata=flag("--out", help="run folder"))
    steps: int = field(default=10, metadata=flag("--steps", exclusive="length"))
    epochs: float | None = field(default=None, metadata=flag("--epochs", exclusive="length"))
    mode: str = field(default="fast", metadata=flag("--mode", choices=["fast", "slow"]))
    tags: tuple[str, ...] = field(default=(), metadata=flag("--tag", action="append"))
    workers: int = field(default=2, metadata=flag("--workers", group="speed"))
    resume: bool = field(default=False, metadata=flag("--resume", action="store_true"))
    note: str = "no flag"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise WeedsegError("--steps must be at least 1")


def parse(argv: list[str], defaults: bool = True) -> argparse.Namespace:
    """Parse as weedseg.cli does: `given` holds the flags the command line sets itself."""
    parser, bare = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_config_flags(parser, ToyConfig, defaults=defaults, groups={"speed": "how fast"})
    add_config_flags(bare, ToyConfig, defaults=False)
    args = parser.parse_args(argv)
    args.given = frozenset(vars(bare.parse_args(argv)))
    return args


def test_flags_become_the_config_with_the_fields_types_and_defaults() -> None:
    config = config_from_args(ToyConfig, parse(["--out", "r", "--steps", "5", "--tag", "a"]))
    assert config == ToyConfig(out="r", steps=5, tags=("a",))  # int steps, tags a tuple
    assert config_from_args(ToyConfig, parse(["--out", "r"])) == ToyConfig(out="r")
    for wrong in (["--steps", "5"], ["--out", "r", "--steps", "1", "--epochs", "2"]):
        with pytest.raises(SystemExit):  # --out is required; --steps and --epochs exclude
            parse(wrong)
    with pytest.raises(SystemExit):
        parse(["--out", "r", "--mode", "medium"])


def test_the_config_validates_itself_however_it_is_made() -> None:
    with pytest.raises(WeedsegError, match="--steps must be at least 1"):
        config_from_args(ToyConfig, parse(["--out", "r", "--steps", "0"]))
    with pytest.raises(WeedsegError, match="--steps must be at least 1"):
        ToyConfig(out="r", steps=0)


def test_a_preset_sits_between_the_defaults_and_the_given_flags() -> None:
    preset = {"steps": 7, "mode": "slow"}
    for defaults in (True, False):
        args = parse(["--out", "r", "--mode", "fast"], defaults=defaults)
        config = config_from_args(ToyConfig, args, preset=preset)
        assert (config.steps, config.mode, config.workers) == (7, "fast", 2)
    with pytest.raises(WeedsegError, match="unknown toy config keys: speed"):
        config_from_args(ToyConfig, parse(["--out", "r"]), preset={"speed": 3})


def test_resume_takes_the_saved_config_and_refuses_only_conflicting_flags(tmp_path) -> None:
    run = tmp_path / "run"
    with pytest.raises(WeedsegError, match="nothing to resume"):
        config_from_args(ToyConfig, parse(["--out", str(run), "--resume"]), resume_file="c.yaml")
    run.mkdir()
    saved = {"out": "elsewhere", "steps": 5, "mode": "slow", "tags": ["a"], "note": "kept"}
    (run / "c.yaml").write_text(yaml.safe_dump(saved))

    args = parse(["--out", str(run), "--resume", "--workers", "0", "--steps", "5"])
    config = config_from_args(ToyConfig, args, resume_file="c.yaml")
    assert config == ToyConfig(
        out=str(run), steps=5, mode="slow", tags=("a",), workers=0, resume=True, note="kept"
    )
    args = parse(["--out", str(run), "--resume", "--steps", "6", "--mode", "slow"])
    with pytest.raises(WeedsegError, match=r"--steps 6 \(the run has 5\)") as refused:
        config_from_args(ToyConfig, args, resume_file="c.yaml")
    assert "--mode" not in str(refused.value)
