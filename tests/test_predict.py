"""`weedseg predict`: sources, outputs under OUT only, bad inputs reported, resume, EXIF GPS."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from bundles import build_colour_bundle, field_image
from PIL import Image

from weedseg.cli import main
from weedseg.errors import WeedsegError
from weedseg.imageio import read_mask, write_image
from weedseg.infer import Predictor
from weedseg.predict import PredictConfig, run_predict
from weedseg.predict.sources import expand_sources, inside


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_colour_bundle(tmp_path_factory.mktemp("bundle"))


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def _bad_folder(root: Path) -> Path:
    """Three good images (one in a sub-folder) and three broken files."""
    folder = root / "field"
    write_image(folder / "a.jpg", field_image(96, 128, 1))
    write_image(folder / "b.png", field_image(80, 70, 2))
    write_image(folder / "day2" / "c.jpg", field_image(150, 100, 3))
    good = (folder / "a.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("this is not a picture\n")
    return folder


def test_bad_folder_reports_errors_and_resume_retries_only_the_failures(
    tmp_path, bundle, capsys
) -> None:
    folder, out = _bad_folder(tmp_path), tmp_path / "out"
    argv = ["predict", str(folder), "--model", str(bundle), "--out", str(out)]
    assert main(argv) == 1

    errors = {Path(r["path"]).name: r["reason"] for r in _read_csv(out / "errors.csv")}
    assert set(errors) == {"truncated.jpg", "empty.jpg", "notes.png"}
    assert "empty file" in errors["empty.jpg"]
    assert all(name in reason for name, reason in errors.items())
    rows = _read_csv(out / "summary.csv")
    assert sorted(r["output"] for r in rows) == ["a", "b", "day2/c"]
    for rel in ("a", "b", "day2/c"):
        assert (out / f"{rel}.overlay.jpg").is_file()
        mask = read_mask(out / f"{rel}.mask.png")
        assert set(np.unique(mask)) <= {0, 1, 2}
    row = next(r for r in rows if r["output"] == "a")
    assert (row["width"], row["height"]) == ("128", "96")
    shares = float(row["soil_pct"]) + float(row["crop_pct"]) + float(row["weed_pct"])
    assert shares == pytest.approx(100.0, abs=0.01)
    assert "Speed:" in capsys.readouterr().out

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    calls = []
    original = Predictor.predict
    Predictor.predict = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    try:
        assert main([*argv, "--resume"]) == 1
    finally:
        Predictor.predict = original
    assert calls == []  # the three good images are done; the broken ones fail again in decode
    assert "3 already done (--resume), 3 to process" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    assert len(_read_csv(out / "summary.csv")) == 3 and len(_read_csv(out / "errors.csv")) == 3


def test_resume_redoes_changed_and_missing_work(tmp_path, bundle) -> None:
    folder, out = _bad_folder(tmp_path), tmp_path / "out"
    config = PredictConfig(source=str(folder), model=str(bundle), out=str(out), resume=True)
    assert run_predict(config) == 1
    (out / "a.mask.png").unlink()
    write_image(folder / "empty.jpg", field_image(64, 64, 4))  # the broken file got fixed
    calls = []
    predictor = Predictor.from_bundle(bundle)
    original = predictor.predict
    predictor.predict = lambda image, **k: calls.append(image.shape) or original(image, **k)
    assert run_predict(config, predictor) == 1  # truncated.jpg and notes.png still fail
    assert sorted(calls) == [(64, 64, 3), (96, 128, 3)]
    assert len(_read_csv(out / "summary.csv")) == 4


def test_sources_folder_glob_list_and_filters(tmp_path) -> None:
    folder = _bad_folder(tmp_path)
    (folder / "readme.txt").write_text("not an image")
    rels = [i.rel for i in expand_sources(folder)]
    assert rels == ["a", "b", "day2/c", "empty", "notes", "truncated"]
    assert [i.rel for i in expand_sources(f"{folder}/**/*.jpg")] == [
        "a",
        "day2/c",
        "empty",
        "truncated",
    ]
    only = expand_sources(folder, include=["*.jpg"], exclude=["day2/*", "empty*"])
    assert [i.rel for i in only] == ["a", "truncated"]
    listing = tmp_path / "list.txt"
    listing.write_text("# field photos\nfield/a.jpg\n\nfield/day2/c.jpg\n")
    assert [i.rel for i in expand_sources(listing)] == ["field/a", "field/day2/c"]
    with pytest.raises(WeedsegError, match="no such file"):
        expand_sources(tmp_path / "missing")


def test_same_stem_inputs_keep_separate_outputs(tmp_path) -> None:
    write_image(tmp_path / "x.jpg", field_image(40, 40, 1))
    write_image(tmp_path / "x.png", field_image(40, 40, 2))
    assert [i.rel for i in expand_sources(tmp_path)] == ["x", "x_png"]


def test_outputs_never_escape_out(tmp_path, bundle) -> None:
    outside = tmp_path / "elsewhere"
    write_image(outside / "deep" / "z.jpg", field_image(40, 50, 5))
    write_image(tmp_path / "lists" / "y.jpg", field_image(40, 50, 6))
    listing = tmp_path / "lists" / "paths.txt"
    listing.write_text(
        "../elsewhere/deep/z.jpg\n"
        f"{outside / 'deep' / 'z.jpg'}\n"
        "./y.jpg\n"
        "..\n"
        "/\n"
        "../../../../../../etc/hostname\n"
    )
    out = tmp_path / "out"
    run_predict(PredictConfig(source=str(listing), model=str(bundle), out=str(out)))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    created = [p for p in files if p.name.endswith((".mask.png", ".overlay.jpg", ".json"))]
    assert created and all(out.resolve() in p.resolve().parents for p in created)
    assert (out / "y.mask.png").is_file()
    assert len(_read_csv(out / "summary.csv")) == 3
    with pytest.raises(WeedsegError, match="escape"):
        inside(out, "../evil")
    (out / "link").symlink_to(outside)
    with pytest.raises(WeedsegError, match="escape"):
        inside(out, "link/x.mask.png")


def _jpeg_with_gps(path: Path) -> None:
    image = Image.fromarray(field_image(64, 80, 7))
    exif = Image.Exif()
    exif[0x8825] = {
        1: "N",
        2: (52.0, 30.0, 36.0),
        3: "W",
        4: (1.0, 15.0, 0.0),
        5: b"\x00",
        6: 42.5,
    }
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    path.write_bytes(buffer.getvalue())


def test_summary_has_gps_and_patch_polygons(tmp_path, bundle) -> None:
    _jpeg_with_gps(tmp_path / "drone.jpg")
    out = tmp_path / "out"
    config = PredictConfig(
        source=str(tmp_path / "drone.jpg"),
        model=str(bundle),
        out=str(out),
        save=("mask", "csv", "geojson"),
        gsd=0.5,
        min_patch_px=4,
    )
    assert run_predict(config) == 0
    (row,) = _read_csv(out / "summary.csv")
    assert float(row["lat"]) == pytest.approx(52.51)
    assert float(row["lon"]) == pytest.approx(-1.25)
    assert float(row["alt"]) == pytest.approx(42.5)
    assert not (out / "drone.overlay.jpg").exists()
    import json

    features = json.loads((out / "drone.weeds.geojson").read_text())["features"]
    assert len(features) == int(row["weed_patches"]) > 0
    first = features[0]["properties"]
    assert first["area_cm2"] == pytest.approx(first["area_px"] * 0.25)


def test_bad_options_are_user_errors(tmp_path, bundle) -> None:
    with pytest.raises(WeedsegError, match="--save"):
        PredictConfig(source="x", model=str(bundle), out="o", save=("mask", "video"))
    with pytest.raises(WeedsegError, match="--streams"):
        PredictConfig(source="x", model=str(bundle), out="o", streams=0)
    assert main(["predict", str(tmp_path), "--model", str(bundle), "--out", "o"]) == 2
    assert main(["predict", str(tmp_path), "--model", str(tmp_path), "--out", "o"]) == 2


def test_outputs_get_the_usual_file_permissions(tmp_path, bundle) -> None:
    import os

    write_image(tmp_path / "in" / "a.jpg", field_image(40, 40, 1))
    run_predict(PredictConfig(str(tmp_path / "in"), str(bundle), str(tmp_path / "out")))
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.mask.png", "a.overlay.jpg", "summary.csv"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_streams_give_the_same_outputs_as_one(tmp_path, bundle) -> None:
    """Several images in the model at once: same masks, summary and errors as one at a time."""
    folder = _bad_folder(tmp_path)
    for i in range(5):
        write_image(folder / "more" / f"{i}.jpg", field_image(120, 90 + 10 * i, 10 + i))
    results = {}
    for streams in (1, 3):
        out = tmp_path / f"out{streams}"
        config = PredictConfig(str(folder), str(bundle), str(out), streams=streams, workers=1)
        assert run_predict(config) == 1
        masks = {p.relative_to(out): read_mask(p).tobytes() for p in out.rglob("*.mask.png")}
        rows = sorted((r["output"], r["weed_pct"]) for r in _read_csv(out / "summary.csv"))
        errors = sorted(Path(r["path"]).name for r in _read_csv(out / "errors.csv"))
        results[streams] = (masks, rows, errors)
    assert len(results[1][0]) == 8 and len(results[1][2]) == 3
    assert results[3] == results[1]


def test_stream_count_default(monkeypatch, bundle) -> None:
    from weedseg.predict import worker

    config = PredictConfig("x", str(bundle), "o")
    monkeypatch.setattr(worker, "resolve_providers", lambda _: ["CPUExecutionProvider"])
    for cores, expected in ((1, 1), (2, 2), (4, 2), (16, 1)):
        monkeypatch.setattr(worker.os, "cpu_count", lambda cores=cores: cores)
        assert worker.stream_count(config) == expected
    assert worker.stream_count(PredictConfig("x", str(bundle), "o", streams=3)) == 3
    monkeypatch.setattr(worker, "resolve_providers", lambda _: ["CUDAExecutionProvider"])
    monkeypatch.setattr(worker.os, "cpu_count", lambda: 2)
    assert worker.stream_count(config) == 1


def test_input_scale_option_reaches_the_model(tmp_path, bundle, capsys) -> None:
    write_image(tmp_path / "in" / "a.jpg", field_image(150, 203, 1))
    argv = ["predict", str(tmp_path / "in"), "--model", str(bundle), "--out", str(tmp_path / "o")]
    assert main([*argv, "--input-scale", "0.5"]) == 0
    assert "input scale 0.5" in capsys.readouterr().out
    assert read_mask(tmp_path / "o" / "a.mask.png").shape == (150, 203)  # the photo's size
    assert main([*argv, "--input-scale", "0", "--resume"]) == 2  # refused before any work
    assert "--input-scale must be in" in capsys.readouterr().err


def test_plant_vote_option_gives_each_plant_one_class(tmp_path, capsys) -> None:
    import cv2
    from bundles import CROP_RGB, SOIL_RGB, WEED_RGB

    image = np.empty((200, 200, 3), dtype=np.uint8)
    image[:] = SOIL_RGB
    cv2.circle(image, (100, 100), 9, CROP_RGB, thickness=-1)  # a crop plant, 0.6% of the frame
    image[97:103, 97:103] = WEED_RGB  # with a weedy patch
    write_image(tmp_path / "in" / "a.png", image)
    model = build_colour_bundle(tmp_path / "bundle", smooth=1)
    argv = ["predict", str(tmp_path / "in"), "--model", str(model), "--save", "mask"]
    assert main([*argv, "--out", str(tmp_path / "pixels")]) == 0
    assert 2 in read_mask(tmp_path / "pixels" / "a.mask.png")
    assert main([*argv, "--out", str(tmp_path / "plants"), "--plant-vote"]) == 0
    assert "plant vote" in capsys.readouterr().out
    np.testing.assert_array_equal(np.unique(read_mask(tmp_path / "plants" / "a.mask.png")), [0, 1])


def test_resume_after_a_model_change_is_refused_then_forced_redoes_the_images(
    tmp_path, bundle
) -> None:
    folder, out = _bad_folder(tmp_path), tmp_path / "out"
    other = build_colour_bundle(tmp_path / "other", smooth=1)
    argv = ["predict", str(folder), "--model", str(bundle), "--out", str(out)]
    assert main(argv) == 1
    config = PredictConfig(source=str(folder), model=str(other), out=str(out), resume=True)
    with pytest.raises(WeedsegError, match="3 image.*another model.*--force"):
        run_predict(config)
    calls = []
    predictor = Predictor.from_bundle(other)
    original = predictor.predict
    predictor.predict = lambda image, **k: calls.append(image.shape) or original(image, **k)
    assert run_predict(replace(config, force=True), predictor) == 1
    assert len(calls) == 3  # every image the first model made is redone
    resumed = PredictConfig(source=str(folder), model=str(other), out=str(out), resume=True)
    calls.clear()
    assert run_predict(resumed, predictor) == 1 and calls == []  # now all made by this model
    with pytest.raises(WeedsegError, match=r"min_patch_px 16 \(this run: 4\)"):
        run_predict(replace(resumed, min_patch_px=4))
    runs = yaml.safe_load((out / "predict.yaml").read_text())["runs"]
    assert [r["config"]["model"] for r in runs] == [str(bundle), str(other), str(other)]
    assert runs[0]["model_sha256"] != runs[1]["model_sha256"]


def test_out_inside_the_source_folder_is_not_read_back(tmp_path, bundle) -> None:
    folder = _bad_folder(tmp_path)
    out = folder / "predictions"
    argv = ["predict", str(folder), "--model", str(bundle), "--out", str(out)]
    assert main([*argv, "--save", "mask,csv"]) == 1
    assert main([*argv, "--save", "mask,csv"]) == 1  # else it would read the first run's masks
    names = sorted(r["output"] for r in _read_csv(out / "summary.csv"))
    assert names == ["a", "b", "day2/c"]
    assert sorted(p.name for p in out.glob("*.png")) == ["a.mask.png", "b.mask.png"]


def test_resume_takes_a_record_without_a_newer_setting_as_made_at_its_default(
    tmp_path, bundle
) -> None:
    folder, out = _bad_folder(tmp_path), tmp_path / "out"
    argv = ["predict", str(folder), "--model", str(bundle), "--out", str(out)]
    assert main(argv) == 1
    for record_path in (out / ".weedseg").rglob("*.json"):  # as written before --tta existed
        record = json.loads(record_path.read_text())
        record.get("settings", {}).pop("tta", None)
        record_path.write_text(json.dumps(record))
    config = PredictConfig(source=str(folder), model=str(bundle), out=str(out), resume=True)
    calls = []
    predictor = Predictor.from_bundle(bundle)
    original = predictor.predict
    predictor.predict = lambda image, **k: calls.append(image.shape) or original(image, **k)
    assert run_predict(config, predictor) == 1 and calls == []  # the done images are skipped
    with pytest.raises(WeedsegError, match=r"tta 'none' \(this run: 'flip'\)"):
        run_predict(replace(config, tta="flip"))
