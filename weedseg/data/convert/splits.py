"""Split specifications: `NAME=0001-0280` (name range), `NAME=a,b,c` (list), `NAME=@file.txt`."""

from __future__ import annotations

from pathlib import Path

from weedseg.errors import WeedsegError


def parse_split_specs(specs: list[str], stems: list[str]) -> dict[str, list[str]]:
    """Resolve `--split` specs against the available stems; no spec means everything is train.

    A range `A-B` takes the stems between A and B inclusive (numerically when all are numbers).
    A list or file names stems (or file names; their suffix is dropped) that must all exist.
    A stem may belong to one split only.
    """
    if not specs:
        return {"train": sorted(stems)}
    available = set(stems)
    splits: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, what = spec.partition("=")
        name = name.strip()
        if not sep or not name or not what.strip():
            raise WeedsegError(f"bad split {spec!r}: expected NAME=A-B, NAME=a,b,c or NAME=@file")
        if name in splits:
            raise WeedsegError(f"split {name!r} given twice")
        splits[name] = _resolve(what.strip(), stems, available, spec)
    owner: dict[str, str] = {}
    clashes = []
    for name, members in splits.items():
        for stem in members:
            if stem in owner:
                clashes.append(f"{stem} ({owner[stem]} and {name})")
            owner[stem] = name
    if clashes:
        raise WeedsegError(f"samples in more than one split: {', '.join(clashes[:10])}")
    unassigned = len(available) - len(owner)
    if unassigned:
        print(f"warning: {unassigned} sample(s) are in no split (kept in images/, unused)")
    return {name: sorted(members) for name, members in splits.items()}


def _resolve(what: str, stems: list[str], available: set[str], spec: str) -> list[str]:
    if what.startswith("@"):
        path = Path(what[1:])
        if not path.is_file():
            raise WeedsegError(f"split file {path} not found (in {spec!r})")
        listed = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return _existing([Path(s).stem if "." in s else s for s in listed if s], available, spec)
    if what not in available and "," not in what and what.count("-") == 1:
        low, high = (s.strip() for s in what.split("-"))
        if low.isdigit() and high.isdigit():
            return [s for s in stems if s.isdigit() and int(low) <= int(s) <= int(high)]
        return [s for s in stems if low <= s <= high]
    return _existing([s.strip() for s in what.split(",") if s.strip()], available, spec)


def _existing(listed: list[str], available: set[str], spec: str) -> list[str]:
    missing = [s for s in listed if s not in available]
    if missing:
        raise WeedsegError(
            f"split {spec!r} names samples that do not exist: {', '.join(missing[:10])}"
        )
    return listed
