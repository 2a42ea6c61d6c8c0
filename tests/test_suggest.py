"""suggest-labels: uncertain photos first, no near-duplicates, list + CSV + contact sheet."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from bundles import CROP_RGB, SOIL_RGB, build_colour_bundle

from weedseg.cli import main
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, write_image
from weedseg.suggest.config import SuggestConfig
from weedseg.suggest.runner import suggest_labels
from weedseg.suggest.selection import rank_normalise, select_diverse
from weedseg.suggest.signals import mean_entropy

# the colour rule's soil and crop logits tie near this colour: the bundle is unsure there
UNSURE_RGB = (100, 142, 80)


def photo(colour, spot, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.empty((48, 64, 3), np.uint8)
    image[:] = colour
    y, x = rng.integers(4, 36), rng.integers(4, 52)
    image[y : y + 8, x : x + 8] = spot
    return image


@pytest.fixture()
def photos(tmp_path):
    """6 clear soil photos, 3 copies of one unsure photo, 1 other unsure photo, 1 broken file."""
    folder = tmp_path / "photos"
    for i in range(6):
        write_image(folder / f"clear_{i}.png", photo(SOIL_RGB, CROP_RGB, i))
    for i in range(3):
        write_image(folder / f"unsure_copy_{i}.png", photo(UNSURE_RGB, SOIL_RGB, 100))
    write_image(folder / "unsure_other.png", photo(UNSURE_RGB, (150, 150, 150), 7)[:, ::-1])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return folder


def test_bundle_picks_unsure_photos_once_each_and_writes_outputs(tmp_path, photos, capsys):
    bundle = build_colour_bundle(tmp_path / "bundle", smooth=1)
    out = tmp_path / "to_label.txt"
    args = ["suggest-labels", "--images", str(photos), "--model", str(bundle), "--k", "3"]
    assert main([*args, "--out", str(out)]) == 0
    assert "1 skipped" in capsys.readouterr().out
    picked = [line.split("/")[-1] for line in out.read_text().splitlines()]
    assert len(picked) == 3
    assert sum(name.startswith("unsure_copy") for name in picked) == 1  # no near-duplicates
    assert "unsure_other.png" in picked[:2] and picked[0].startswith("unsure")
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert len(rows) == 10 and {"suggested_rank", "path", "score", "entropy"} <= set(rows[0])
    assert [r["suggested_rank"] for r in rows if r["suggested_rank"]] != []
    sheet = read_image(out.with_suffix(".png"))
    assert sheet.shape[1] == 3 * 200 and sheet.shape[0] > 200

    version = tmp_path / "registry" / "versions" / "v0001"  # a registry version is its bundle
    shutil.copytree(bundle, version / "bundle")
    (version / "version.json").write_text("{}")
    result = suggest_labels(
        SuggestConfig(images=str(photos), model=str(version), out=str(tmp_path / "b.txt"), k=3,
                      diversity=False),
        log=lambda _: None,
    )  # fmt: skip
    assert sum(p.name.startswith("unsure_copy") for p in result.chosen) == 3  # plain top-k


def test_runs_give_entropy_and_reconstruction_difficulty(tmp_path, photos):
    import torch

    from weedseg.checkpoint import save_checkpoint
    from weedseg.models import build_model, spec_from_name

    torch.manual_seed(0)
    spec = spec_from_name("unet-tiny")
    meta = {"mean": [0.5] * 3, "std": [0.25] * 3, "config": {"patch": 16, "mask_ratio": 0.5}}
    classes = [{"name": n, "color": [0, 0, 0]} for n in ("soil", "crop", "weed")]
    seg = save_checkpoint(
        tmp_path / "seg", build_model(spec, 3), spec=spec, task="segmentation",
        meta=meta | {"classes": classes},
    )  # fmt: skip
    pre = tmp_path / "pre" / "checkpoints" / "last"
    save_checkpoint(pre, build_model(spec, 3), spec=spec, task="reconstruction", meta=meta)
    out = tmp_path / "list.txt"
    result = suggest_labels(
        SuggestConfig(images=str(photos), model=str(seg), pretrain=str(tmp_path / "pre"),
                      out=str(out), k=2, masks=1, device="cpu"),
        log=lambda _: None,
    )  # fmt: skip
    assert len(result.chosen) == 2 and result.scored == 10
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert all(0 <= float(r["entropy"]) <= 1 and float(r["difficulty"]) > 0 for r in rows)
    with pytest.raises(WeedsegError, match="needs a pretraining run"):
        suggest_labels(
            SuggestConfig(images=str(photos), model=str(seg), pretrain=str(seg), out=str(out)),
            log=lambda _: None,
        )


def test_empty_folder_and_bad_outputs_are_clear_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    bundle = build_colour_bundle(tmp_path / "bundle")
    args = ["suggest-labels", "--images", str(tmp_path / "empty"), "--model", str(bundle)]
    assert main([*args, "--out", str(tmp_path / "list.txt")]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "list.csv")]) == 2
    assert not list(tmp_path.glob("list*"))


def test_scores_and_selection_rules():
    assert mean_entropy(np.full((3, 2, 2), 1 / 3)) == pytest.approx(1.0)
    assert mean_entropy(np.eye(3)[:, :, None]) == pytest.approx(0.0, abs=1e-5)
    assert rank_normalise(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == [5 / 6, 0.0, 5 / 6, 1 / 3]
    embeddings = np.array([[0, 0], [0, 0.01], [1, 0], [0, 1]], dtype=np.float32)
    scores = np.array([1.0, 0.99, 0.2, 0.1])
    assert select_diverse(scores, embeddings, 3) == [0, 2, 3]
    assert select_diverse(scores, None, 2) == [0, 1]


def test_bundle_path_never_imports_torch(tmp_path, photos):
    import subprocess
    import sys

    bundle = build_colour_bundle(tmp_path / "bundle")
    code = (
        "import sys\n"
        "from weedseg.suggest.config import SuggestConfig\n"
        "from weedseg.suggest.runner import suggest_labels\n"
        f"suggest_labels(SuggestConfig(images={str(photos)!r}, model={str(bundle)!r}, "
        f"out={str(tmp_path / 'l.txt')!r}, k=2), log=lambda _: None)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((tmp_path / "l.txt").read_text().splitlines()) == 2
