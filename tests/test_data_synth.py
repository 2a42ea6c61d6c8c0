"""Synthetic fields: deterministic files, exact masks with all three classes, domain styles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weedseg.cli import main
from weedseg.data.format import DatasetInfo
from weedseg.data.synth import SynthConfig, generate_dataset, render_field
from weedseg.imageio import read_mask


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_and_other_seeds_differ(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        args = [
            "data",
            "synth",
            str(tmp_path / name),
            "--n",
            "4",
            "--size",
            "64",
            "--seed",
            str(seed),
        ]
        assert main(args) == 0
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.startswith("images/")]
    assert all(a[k] != c[k] for k in images)


def test_masks_are_exact_class_indices_with_crop_and_weed(tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "d", SynthConfig(n=5, size=96, seed=1))
    counts = np.zeros(256, np.int64)
    for stem in info.images:
        counts += np.bincount(read_mask(info.mask_path(stem)).ravel(), minlength=256)
    assert set(np.flatnonzero(counts).tolist()) == {0, 1, 2}
    assert counts[0] > counts[1] > counts[2] > 0  # soil dominates, weed is the small class


def test_splits_are_disjoint_and_cover_every_sample(tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "d", SynthConfig(n=20, size=32))
    members = [s for split in info.splits.values() for s in split]
    assert sorted(members) == sorted(info.images)
    assert [len(info.split(s)) for s in ("train", "val", "test")] == [14, 3, 3]
    assert DatasetInfo.load(tmp_path / "d").splits == info.splits


def test_one_sample_does_not_depend_on_how_many_are_made() -> None:
    image, mask = render_field(SynthConfig(n=3, size=64, seed=2), 1)
    again, again_mask = render_field(SynthConfig(n=50, size=64, seed=2), 1)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(mask, again_mask)


def test_soil_style_shifts_the_look() -> None:
    def soil_brightness(soil: str) -> float:
        config = SynthConfig(size=64, soil=soil, crop_density=0.0, weed_density=0.0)
        return float(np.mean([render_field(config, i)[0].mean() for i in range(3)]))

    assert soil_brightness("dark") < soil_brightness("loam") < soil_brightness("light")


def test_bad_style_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["data", "synth", str(tmp_path / "x"), "--soil", "lava"]) == 2
    assert "soil must be one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lighting"):
        SynthConfig(lighting="disco")
