"""What a predict run has done, kept under OUT/.weedseg/ so `--resume` can skip finished work.

One small JSON record per input, written atomically after its outputs: `done` with its summary row,
output files, the model (sha256 of the bundle's manifest) and the output settings that made them,
or `error` with the reason. summary.csv and errors.csv are rebuilt from the records at the end of
every run, so they always describe the whole output folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from weedseg.atomic import write_atomic
from weedseg.predict.config import default_output_settings
from weedseg.predict.sources import SourceItem, inside

STATE_DIR = ".weedseg/records"
SUMMARY_FILE = "summary.csv"
ERRORS_FILE = "errors.csv"


def _file_stamp(path: Path) -> list[int]:
    """(size, mtime_ns) of an input, or (-1, -1) when it cannot be read: changes mean redo."""
    try:
        stat = path.stat()
    except OSError:
        return [-1, -1]
    return [stat.st_size, stat.st_mtime_ns]


@dataclass(frozen=True)
class RunState:
    """The records under `out` of a run with this model and these output settings."""

    out: Path
    model: str = ""  # sha256 of the bundle's manifest (which lists every model file's sha256)
    settings: dict = field(default_factory=dict)  # PredictConfig.output_settings()

    def _record_path(self, item: SourceItem) -> Path:
        return inside(self.out, f"{STATE_DIR}/{item.rel}.json")

    def load(self, item: SourceItem) -> dict | None:
        try:
            return json.loads(self._record_path(item).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_done(self, item: SourceItem, row: dict, outputs: list[Path], save: tuple) -> None:
        record = {
            "status": "done",
            "stamp": _file_stamp(item.path),
            "save": list(save),
            "model": self.model,
            "settings": self.settings,
            "outputs": [p.relative_to(self.out.resolve()).as_posix() for p in outputs],
            "row": row,
        }
        write_atomic(self._record_path(item), json.dumps(record))

    def save_error(self, item: SourceItem, reason: str) -> None:
        record = {"status": "error", "stamp": _file_stamp(item.path), "reason": reason}
        write_atomic(self._record_path(item), json.dumps(record))

    def is_settled(self, item: SourceItem, save: tuple) -> bool:
        """Whether `--resume` can skip `item`: done from the very same file, by this model with
        these settings, with every requested output still on disk (failures are retried)."""
        record = self.load(item)
        if record is None or record.get("stamp") != _file_stamp(item.path):
            return False
        if record["status"] != "done" or self.made_differently(record):
            return False
        return set(save) <= set(record["save"]) and all(
            (self.out / p).is_file() for p in record["outputs"]
        )

    def made_differently(self, record: dict) -> str | None:
        """How a done record's model or output settings differ from this run's (None: same)."""
        if record.get("model") != self.model:
            made = record.get("model") or "a model weedseg did not record"
            return f"model {made[:12]} (this run: {self.model[:12]})"
        # a setting added since the record was written: the record was made at its default
        settings = default_output_settings() | (record.get("settings") or {})
        changed = sorted(
            k for k in set(settings) | set(self.settings) if settings.get(k) != self.settings.get(k)
        )
        if changed:
            return ", ".join(
                f"{k} {settings.get(k)!r} (this run: {self.settings.get(k)!r})" for k in changed
            )
        return None

    def made_differently_items(self, items: list[SourceItem]) -> list[tuple[SourceItem, str]]:
        """The done items whose outputs came from another model or other output settings."""
        found = []
        for item in items:
            record = self.load(item)
            if record is not None and record["status"] == "done":
                reason = self.made_differently(record)
                if reason:
                    found.append((item, reason))
        return found

    def write_tables(
        self, items: list[SourceItem], class_names: list[str], summary: bool = True
    ) -> tuple[int, int]:
        """Rebuild summary.csv (when asked) and errors.csv for `items`; returns (done, failed)."""
        rows, errors = [], []
        for item in items:
            record = self.load(item)
            if record is None:
                errors.append({"path": str(item.path), "reason": "not processed"})
            elif record["status"] == "done":
                rows.append(record["row"])
            else:
                errors.append({"path": str(item.path), "reason": record["reason"]})
        columns = ["path", "output", "width", "height"]
        columns += [f"{name}_pct" for name in class_names]
        columns += ["weed_patches", "lat", "lon", "alt", "ms"]
        if summary:
            write_atomic(self.out / SUMMARY_FILE, _csv(columns, rows))
        write_atomic(self.out / ERRORS_FILE, _csv(["path", "reason"], errors))
        return len(rows), len(errors)


def _csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
