"""`weedseg data check`: a clean dataset passes; planted problems are each named, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from weedseg.cli import main
from weedseg.data.check import check_dataset
from weedseg.data.format import DatasetInfo
from weedseg.data.synth import SynthConfig, generate_dataset
from weedseg.imageio import write_image

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetInfo:
    return generate_dataset(tmp_path / "data", SynthConfig(n=6, size=64, seed=3))


def test_clean_dataset_passes_with_pixel_shares(dataset: DatasetInfo, capsys) -> None:
    assert main(["data", "check", str(dataset.root)]) == 0
    out = capsys.readouterr().out
    assert "OK: no problems found" in out
    report = check_dataset(dataset.root)
    train = report.pixel_counts["train"]
    assert train[:3].sum() == 64 * 64 * len(dataset.split("train"))
    assert "train" in report.frequency_table() and "weed" in report.frequency_table()


def test_planted_problems_are_all_named(dataset: DatasetInfo, capsys) -> None:
    stems = sorted(dataset.images)
    mismatch, unknown, truncated = stems[0], stems[1], stems[2]
    write_image(dataset.mask_path(mismatch), np.zeros((32, 64), np.uint8))
    write_image(dataset.mask_path(unknown), np.full((64, 64), 7, np.uint8))
    data = dataset.mask_path(truncated).read_bytes()
    dataset.mask_path(truncated).write_bytes(data[: len(data) // 2])

    assert main(["data", "check", str(dataset.root)]) == 2
    out = capsys.readouterr().out
    assert f"{mismatch}.png: size mismatch: mask is 64x32" in out
    assert f"{unknown}.png: unknown mask values (7 x4096)" in out
    assert f"{truncated}.png: truncated PNG" in out
    assert "3 problem(s)" in out


def test_missing_pairs_orphans_and_empty_split(dataset: DatasetInfo) -> None:
    stems = sorted(dataset.images)
    dataset.mask_path(stems[0]).unlink()
    dataset.image_path(stems[1]).unlink()
    write_image(dataset.root / "images" / "stray.jpg", np.zeros((64, 64, 3), np.uint8))
    dataset.splits["extra"] = []
    dataset.save()
    problems = "\n".join(check_dataset(dataset.root).problems)
    assert f"{stems[0]}.png: missing (mask of {stems[0]})" in problems
    assert f"{stems[1]}.jpg: missing (image of {stems[1]})" in problems
    assert "stray.jpg: image not listed in dataset.yaml" in problems
    assert "split 'extra' is empty" in problems


def test_truncated_jpeg_is_named(dataset: DatasetInfo) -> None:
    path = dataset.image_path(sorted(dataset.images)[0])
    path.write_bytes(path.read_bytes()[:-200])
    problems = check_dataset(dataset.root).problems
    assert problems == [f"{path}: truncated JPEG (no end-of-image marker)"]


def test_not_a_dataset_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(tmp_path)]) == 2
    assert "dataset.yaml is missing" in capsys.readouterr().err


def test_sixteen_bit_mask_is_named(dataset: DatasetInfo) -> None:
    path = dataset.mask_path(sorted(dataset.images)[0])
    write_image(path, np.full((64, 64), 300, np.uint16))
    problems = check_dataset(dataset.root).problems
    assert problems == [
        f"{path}: mask must be an 8-bit single-channel PNG (has bit depth 16, colour type 0)"
    ]


def test_data_tools_work_without_torch(tmp_path: Path) -> None:
    """Converting, checking, generating and previewing need no torch (the inference install)."""
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("torch is blocked in this test")\n')
    code = textwrap.dedent(
        f"""
        import sys
        import weedseg.commands.data, weedseg.commands.demo, weedseg.data.convert
        from weedseg.data.check import check_dataset
        from weedseg.data.preview import write_preview
        from weedseg.data.synth import SynthConfig, generate_dataset
        generate_dataset({str(tmp_path / "d")!r}, SynthConfig(n=3, size=32))
        assert check_dataset({str(tmp_path / "d")!r}).ok
        write_preview({str(tmp_path / "d")!r}, {str(tmp_path / "p.png")!r})
        assert "torch" not in sys.modules
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(REPO_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
