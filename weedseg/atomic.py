"""Atomic file output: write to a temporary sibling, then rename, so no reader sees half a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp creates files readable by the owner only; finished files get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


def fsync_file(path: str | Path) -> None:
    """Flush a written file's data to the disk (so a power cut cannot leave it empty)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (renames into it) to the disk; a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it over `path`, else delete it.

    The temporary name keeps the suffix, so writers that pick a format by extension still work.
    `durable` fsyncs the file before the rename and the folder after it (survives a power cut).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if durable:
            fsync_file(tmp_path)
        os.replace(tmp_path, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str, durable: bool = False) -> None:
    """Write bytes or text to `path` atomically (`durable`: fsynced, see `atomic_path`)."""
    with atomic_path(path, durable=durable) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces `path` in one rename.

    Refuses an existing `path` unless `force`; `force` replaces only the `path` that existed
    when the block began, never one that appeared while it ran (another writer's). On failure
    nothing is left behind.
    """
    path = Path(path)
    existed = path.exists()
    if existed and not force:
        raise FileExistsError(f"{path} already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if existed and path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                _rename_new(tmp, path)
            except OSError:
                if not path.exists():  # put the old folder back
                    os.replace(old / path.name, path)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            _rename_new(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rename_new(src: Path, dst: Path) -> None:
    """Rename folder `src` to `dst`, refusing a `dst` that exists (os.rename would replace an
    empty folder; a non-empty one makes it fail, which is reported the same way)."""
    if dst.exists():
        raise FileExistsError(f"{dst} appeared while it was being written; not replaced")
    try:
        os.rename(src, dst)
    except OSError as exc:
        if dst.exists():
            raise FileExistsError(
                f"{dst} appeared while it was being written; not replaced"
            ) from exc
        raise
