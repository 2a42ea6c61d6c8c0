"""One way from command-line flags to a command's config dataclass.

A config field declares its flag in its metadata, so the field's default is the flag's default:

    steps: int = field(default=1000, metadata=flag("--steps", help="optimizer steps"))

`add_config_flags(parser, Config)` adds every declared flag (`dest`, default, `required` for a
field without a default, and `type` int/float come from the field); `config_from_args(Config,
args)` builds the config from the parsed flags. A config checks itself in `__post_init__` and
raises `WeedsegError`, so one made from flags, a YAML file or code is refused the same way.
`--resume` (with `resume_file`) continues the run in `args.out` with its saved config: flags given
again must equal it, except those that say where the run runs (weedseg.resume_flags).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from weedseg.errors import WeedsegError

C = TypeVar("C")
_FLAG = "weedseg.flag"


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one config field appears on the command line."""

    names: tuple[str, ...]  # "--steps" (an option) or "source" (a positional, named as the field)
    options: Mapping[str, Any]  # more argparse.add_argument keywords (help, choices, action, ...)
    group: str | None = None  # title of the help section it is listed under
    exclusive: str | None = None  # flags sharing this name are mutually exclusive


def flag(
    *names: str, group: str | None = None, exclusive: str | None = None, **options: Any
) -> dict[str, Flag]:
    """Field metadata declaring the field's flag: `field(default=..., metadata=flag("--x"))`."""
    return {_FLAG: Flag(names, options, group, exclusive)}


def flag_fields(config_type: type) -> list[tuple[dataclasses.Field, Flag]]:
    """The fields of `config_type` that have a flag, in field order."""
    return [(f, f.metadata[_FLAG]) for f in dataclasses.fields(config_type) if _FLAG in f.metadata]


def add_config_flags(
    parser: argparse.ArgumentParser,
    config_type: type,
    *,
    defaults: bool = True,
    groups: Mapping[str, str] | None = None,
) -> None:
    """Add the flags `config_type` declares to `parser`. `defaults=False` leaves unset flags out
    of the parsed namespace, so a config file's values (`config_from_args(preset=...)`) or the
    config's own defaults apply; `groups`: help-section title -> description."""
    hints = typing.get_type_hints(config_type)
    sections: dict[Any, Any] = {}  # help sections and exclusive groups made so far
    for item, spec in flag_fields(config_type):
        options = dict(spec.options)
        if spec.names[0].startswith("-"):
            options.setdefault("dest", item.name)
            if _has_default(item):
                default = _default(item)
                if options.get("action") == "append":  # argparse appends to a list
                    default = list(default)
                options.setdefault("default", default)
            else:
                options.setdefault("required", True)
        elif spec.names[0] != item.name:
            raise ValueError(f"positional {spec.names[0]!r} must be named as its field {item.name}")
        if "action" not in options and "type" not in options:
            value_type = _scalar_type(hints[item.name])
            if value_type is not None:
                options["type"] = value_type
        if not defaults:
            options["default"] = argparse.SUPPRESS
        target = parser
        if spec.group:
            if spec.group not in sections:
                description = (groups or {}).get(spec.group)
                sections[spec.group] = parser.add_argument_group(spec.group, description)
            target = sections[spec.group]
        if spec.exclusive:
            if (target, spec.exclusive) not in sections:
                sections[target, spec.exclusive] = target.add_mutually_exclusive_group()
            target = sections[target, spec.exclusive]
        target.add_argument(*spec.names, **options)


def config_from_args(
    config_type: type[C],
    args: argparse.Namespace,
    *,
    preset: Mapping[str, Any] | None = None,
    resume_file: str | None = None,
) -> C:
    """The config from parsed flags. Values: the flags' defaults, then `preset` (e.g. a --config
    file), then the flags given on the command line (`args.given` from weedseg.cli; without it
    every parsed flag counts as given). With `resume_file` and `resume` set, the run folder
    `out`'s saved config replaces the defaults and the given flags are checked against it."""
    from weedseg.resume_flags import WHERE_IT_RUNS, merge_resume_flags

    known = {f.name: f for f in dataclasses.fields(config_type)}
    preset = dict(preset or {})
    unknown = sorted(set(preset) - set(known))
    if unknown:
        raise WeedsegError(f"unknown {_what(config_type)} config keys: {', '.join(unknown)}")
    parsed = vars(args)
    flags = {f.name: parsed[f.name] for f, _ in flag_fields(config_type) if f.name in parsed}
    given = getattr(args, "given", flags.keys())
    typed = preset | {name: value for name, value in flags.items() if name in given}
    values = flags | typed
    if resume_file and values.get("resume"):
        saved = _saved_config(Path(values["out"]), resume_file)
        checked = {k: v for k, v in typed.items() if k not in ("out", "resume")}
        merged = merge_resume_flags(saved, checked, WHERE_IT_RUNS, values["out"])
        run = {"out": values["out"], "resume": True}
        values |= {k: v for k, v in merged.items() if k in known} | run
    return config_type(**{k: _as_field(known[k], v) for k, v in values.items()})


def _saved_config(out: Path, name: str) -> dict[str, Any]:
    import yaml

    saved = out / name
    if not saved.is_file():
        raise WeedsegError(f"{out}: nothing to resume (no {name})")
    return yaml.safe_load(saved.read_text(encoding="utf-8")) or {}


def _what(config_type: type) -> str:
    """`PretrainConfig` -> `pretrain`, for messages."""
    return config_type.__name__.removesuffix("Config").lower()


def _has_default(item: dataclasses.Field) -> bool:
    missing = dataclasses.MISSING
    return item.default is not missing or item.default_factory is not missing


def _default(item: dataclasses.Field) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def _scalar_type(hint: Any) -> type | None:
    """int or float for `int`, `float | None` and the like: argparse converts to it."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = [a for a in args if a is not type(None)]
    return kinds[0] if len(kinds) == 1 and kinds[0] in (int, float) else None


def _as_field(item: dataclasses.Field, value: Any) -> Any:
    """A list (argparse append / nargs, YAML) as a tuple where the field holds a tuple."""
    if isinstance(value, list) and _has_default(item) and isinstance(_default(item), tuple):
        return tuple(value)
    return value
