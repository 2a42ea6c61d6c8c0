"""`--resume` with the flags of the run it continues: the same command with `--resume` added works.

weedseg.config_flags.config_from_args reads the run's saved config and calls `merge_resume_flags`.

A flag equal to the saved config's value passes, a flag the saved config does not know (a newer
option) or one that only says where the run runs (device, workers, ...) is taken, and a flag that
conflicts with the saved recipe is refused, naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from weedseg.errors import WeedsegError

# config fields that say where and how fast a run runs, not what it computes: free on --resume
WHERE_IT_RUNS = ("device", "workers", "cache_gb", "cache_dir")


def merge_resume_flags(
    saved: dict[str, Any], given: dict[str, Any], free: Iterable[str], run: str | Path
) -> dict[str, Any]:
    """The saved config with the `given` flags applied where they may change; refuse the rest."""
    free = set(free)
    values = dict(saved)
    conflicts = []
    for name, value in sorted(given.items()):
        if name in free or name not in saved:
            values[name] = value
        elif not same_setting(value, saved[name]):
            flag = f"--{name.replace('_', '-')}"
            conflicts.append(f"{flag} {_shown(value)} (the run has {_shown(saved[name])})")
    if conflicts:
        raise WeedsegError(
            f"--resume continues {run} with its saved config, and these flags differ from it: "
            f"{'; '.join(conflicts)}. Drop them (or give the saved values), or start a new run "
            "with another --out"
        )
    return values


def same_setting(given: Any, saved: Any) -> bool:
    """Equal once YAML's types are allowed for (tuples as lists), or two names of one path."""
    given, saved = _plain(given), _plain(saved)
    if given == saved:
        return True
    if isinstance(given, str) and isinstance(saved, str) and given and saved:
        try:
            return os.path.samefile(given, saved)
        except OSError:
            return False
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _shown(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
