"""The registry folder: versions (added whole, atomically) and the `current` pointer."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weedseg.atomic import write_atomic
from weedseg.errors import WeedsegError
from weedseg.model_paths import BUNDLE_DIR, VERSION_CHECKPOINT, VERSION_FILE

ENV_VAR = "WEEDSEG_REGISTRY"
DEFAULT_ROOT = "runs/registry"
POINTER_FILE = "current.json"
VERSION_NAME = re.compile(r"v\d{4,}\Z")


def default_registry() -> str:
    """$WEEDSEG_REGISTRY, else runs/registry."""
    return os.environ.get(ENV_VAR) or DEFAULT_ROOT


@dataclass(frozen=True)
class Version:
    """One registered model."""

    id: str
    root: Path
    info: dict[str, Any]  # version.json

    @property
    def bundle(self) -> Path:
        return self.root / BUNDLE_DIR

    @property
    def checkpoint(self) -> Path | None:
        stem = self.root / VERSION_CHECKPOINT
        return stem if stem.with_suffix(".json").is_file() else None

    @property
    def miou(self) -> float | None:
        return (self.info.get("evaluation") or {}).get("mIoU")


class Registry:
    """A registry folder; reading never needs a lock, writes are single renames."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    def versions(self) -> list[Version]:
        if not self.versions_dir.is_dir():
            return []
        names = sorted(
            p.name
            for p in self.versions_dir.iterdir()
            if VERSION_NAME.match(p.name) and (p / VERSION_FILE).is_file()  # else being added
        )
        return [self.version(name) for name in names]

    def version(self, version_id: str) -> Version:
        if not VERSION_NAME.match(version_id):
            raise WeedsegError(f"{version_id!r} is not a version id (like v0001)")
        root = self.versions_dir / version_id
        path = root / VERSION_FILE
        if not path.is_file():
            raise WeedsegError(f"{self.root}: no version {version_id}")
        return Version(version_id, root, json.loads(path.read_text(encoding="utf-8")))

    def pointer(self) -> dict[str, Any]:
        path = self.root / POINTER_FILE
        if not path.is_file():
            return {"current": None, "history": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def current(self) -> Version | None:
        current = self.pointer()["current"]
        return self.version(current) if current else None

    def set_pointer(self, history: list[str]) -> None:
        """Point `current` at the last of `history` (one atomic rename)."""
        pointer = {
            "current": history[-1] if history else None,
            "history": history,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_atomic(self.root / POINTER_FILE, json.dumps(pointer, indent=2))

    def add(self, bundle: Path, checkpoint: Path | None, info: dict[str, Any]) -> Version:
        """Copy a bundle (and its checkpoint) in as the next version; verified before it shows."""
        from weedseg.bundle import load_bundle

        load_bundle(bundle)  # the source must pass its checksums
        version_id = self._claim_version_id()
        final = self.versions_dir / version_id
        tmp = Path(tempfile.mkdtemp(prefix=f".{version_id}.", suffix=".tmp", dir=self.versions_dir))
        try:
            shutil.copytree(bundle, tmp / BUNDLE_DIR)
            manifest = load_bundle(tmp / BUNDLE_DIR).manifest  # the copy too
            if checkpoint is not None:
                stem = tmp / VERSION_CHECKPOINT
                stem.parent.mkdir()
                for suffix in (".safetensors", ".json"):
                    shutil.copyfile(checkpoint.with_suffix(suffix), stem.with_suffix(suffix))
            record = info | {
                "id": version_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "model_name": manifest.model_name,
                "model_sha256": manifest.files["model.onnx"],
            }
            write_atomic(tmp / VERSION_FILE, json.dumps(record, indent=2))
            os.rename(tmp, final)  # replaces the empty claimed folder in one step
        except BaseException:
            final.rmdir()  # give the id back (only ever empty here)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.version(version_id)

    def _claim_version_id(self) -> str:
        """The next free id, claimed by creating its (empty) folder: mkdir is atomic, so two
        concurrent promotes never get the same id."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name[1:]) for p in self.versions_dir.iterdir() if VERSION_NAME.match(p.name)]
        number = max(taken, default=0) + 1
        while True:
            try:
                (self.versions_dir / f"v{number:04d}").mkdir()
                return f"v{number:04d}"
            except FileExistsError:
                number += 1
