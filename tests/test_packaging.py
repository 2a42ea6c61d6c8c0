"""The project installs one top-level package, `weedseg`; export/ and service/ go inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folder(package: str, package_dir: dict[str, str]) -> Path:
    """The repository folder that `package` installs from, after pyproject's package-dir."""
    for name, folder in sorted(package_dir.items(), key=lambda item: -len(item[0])):
        if package == name or package.startswith(name + "."):
            return REPO / folder / Path(*package[len(name) :].split(".")[1:])
    return REPO / Path(*package.split("."))


def test_every_package_folder_is_listed() -> None:
    """A new subpackage that is not listed would be missing from a non-editable install."""
    table = _setuptools_table()
    listed = {_package_folder(p, table["package-dir"]) for p in table["packages"]}
    on_disk = {
        init.parent
        for top in ("weedseg", "export", "service")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert on_disk == listed, f"pyproject packages differ: {sorted(map(str, on_disk ^ listed))}"


@pytest.mark.slow
def test_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    """`pip install .` would put only weedseg/ into site-packages (the wheel is what it unpacks)."""
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for top in ("weedseg", "export", "service"):
        shutil.copytree(REPO / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--wheel-dir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("weedseg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"weedseg"}
    for installed in (
        "weedseg/export/bundle_export.py",
        "weedseg/export/tensorrt_ops.json",  # read at run time by the TensorRT operator check
        "weedseg/service/app.py",
        "weedseg/service/routes/__init__.py",
        "weedseg/service/static/index.html",
    ):
        assert installed in names
