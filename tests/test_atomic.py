import shutil
from pathlib import Path

import pytest

from weedseg.atomic import atomic_dir, atomic_path, write_atomic


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_refuses_existing_without_force(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic_dir(target):
            pass
    with atomic_dir(target, force=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_atomic_dir_never_replaces_a_folder_that_appeared_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "out"
    for force in (False, True):
        with pytest.raises(FileExistsError, match="appeared while"):
            with atomic_dir(target, force=force) as tmp:
                (tmp / "mine").write_text("1")
                target.mkdir()  # another writer got there first
                (target / "theirs").write_text("2")
        assert [p.name for p in target.iterdir()] == ["theirs"]
        shutil.rmtree(target)
    assert list(tmp_path.iterdir()) == []  # no temporary folders left
