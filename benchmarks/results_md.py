"""benchmarks/RESULTS.md: each script owns one section between its own markers and rewrites only
that, and its tables format seed spreads one way (imported by the scripts beside it, which run
with this folder on sys.path)."""

from __future__ import annotations

import statistics
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def replace_section(name: str, body: str) -> None:
    """Put `body` between the markers of `name` in RESULTS.md (appended the first time)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body}\n{end}"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(new, encoding="utf-8")


def mean_std(values: list[float | None], signed: bool = False) -> str:
    """`mean +- sample std` (the mean alone for one value); n/a when no value is known."""
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    form = "+.4f" if signed else ".4f"
    if len(known) < 2:
        return format(known[0], form)
    return f"{format(statistics.mean(known), form)} +- {statistics.stdev(known):.4f}"
