"""Skip-if-done bookkeeping: a finished stage leaves `RUN/stages/<name>.json` (written last)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weedseg.atomic import write_atomic


class StageBook:
    """Runs each stage once; a stage whose record exists is skipped on a rerun."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.folder = root / "stages"
        self.log = log

    def record(self, name: str) -> dict[str, Any] | None:
        path = self.folder / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def run(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`work()` unless the stage finished earlier; returns (and keeps) its record."""
        done = self.record(name)
        if done is not None:
            self.log(f"[{name}] finished earlier, skipped")
            return done
        self.log(f"[{name}] ...")
        started = time.perf_counter()
        record = work() | {"seconds": round(time.perf_counter() - started, 2)}
        write_atomic(self.folder / f"{name}.json", json.dumps(record, indent=2))
        self.log(f"[{name}] done in {record['seconds']:.1f} s")
        return record
