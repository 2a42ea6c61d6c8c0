"""weedseg.infer: Predictor on tiny ONNX bundles (no torch), tiling agreement, seams, rendering."""

from __future__ import annotations

import numpy as np
import pytest
from bundles import CROP_RGB, SOIL_RGB, WEED_RGB, build_colour_bundle, field_image

from weedseg.bundle import BundleError
from weedseg.classes import DEFAULT_CLASSES
from weedseg.errors import WeedsegError
from weedseg.infer import Prediction, Predictor
from weedseg.infer.analysis import class_fractions, weed_instances
from weedseg.infer.render import colorize, legend, overlay


def _truth(image: np.ndarray) -> np.ndarray:
    truth = np.zeros(image.shape[:2], dtype=np.uint8)
    truth[(image == CROP_RGB).all(-1)] = 1
    truth[(image == WEED_RGB).all(-1)] = 2
    return truth


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_colour_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.mark.parametrize(
    "options", [{}, {"layout": "NHWC"}, {"dynamic": False}], ids=["nchw", "nhwc-uint8", "static"]
)
def test_predict_any_size_and_layout(tmp_path, options) -> None:
    predictor = Predictor.from_bundle(build_colour_bundle(tmp_path / "b", **options))
    for height, width in [(37, 50), (64, 64), (150, 203)]:
        image = field_image(height, width, seed=height)
        prediction = predictor.predict(image, return_probs=True)
        assert isinstance(prediction, Prediction)
        assert prediction.labels.shape == (height, width)
        assert prediction.labels.dtype == np.uint8
        assert prediction.probs.shape == (3, height, width)
        np.testing.assert_allclose(prediction.probs.sum(0), 1.0, atol=1e-4)
        assert (prediction.labels == _truth(image)).mean() > 0.95
        assert sum(prediction.fractions.values()) == pytest.approx(1.0)
        assert set(prediction.timings_ms) == {"pre", "inference", "post"}


def test_layouts_agree(tmp_path) -> None:
    image = field_image(130, 170, seed=3)
    nchw = Predictor.from_bundle(build_colour_bundle(tmp_path / "a")).predict(image)
    nhwc = Predictor.from_bundle(build_colour_bundle(tmp_path / "b", layout="NHWC")).predict(image)
    assert (nchw.labels == nhwc.labels).mean() > 0.999


def test_predict_batch_matches_predict(bundle) -> None:
    predictor = Predictor.from_bundle(bundle, batch_size=2)
    images = [
        field_image(40, 60, 1),
        field_image(64, 50, 2),
        field_image(40, 60, 3),
        field_image(90, 80, 4),
    ]
    batched = predictor.predict_batch(images)
    for image, result in zip(images, batched, strict=True):
        np.testing.assert_array_equal(result.labels, predictor.predict(image).labels)


def test_input_scale_runs_the_model_on_shrunk_photos(bundle) -> None:
    full = Predictor.from_bundle(bundle, batch_size=2)
    half = Predictor.from_bundle(bundle, batch_size=2, input_scale=0.5)
    assert "input scale 0.5" in half.describe()
    images = [field_image(150, 203, 5), field_image(40, 60, 6), field_image(300, 260, 7)]
    for image in images:
        result = half.predict(image)
        assert result.labels.shape == image.shape[:2] and result.probs is None
        # discs lose a pixel or two at their borders, nothing else changes
        assert (result.labels == full.predict(image).labels).mean() > 0.95
        with_probs = half.predict(image, return_probs=True)
        assert with_probs.probs.shape == (3, *image.shape[:2])
        np.testing.assert_array_equal(with_probs.labels, result.labels)
    for image, batched in zip(images, half.predict_batch(images), strict=True):
        np.testing.assert_array_equal(batched.labels, half.predict(image).labels)
    with pytest.raises(WeedsegError, match="input scale"):
        Predictor.from_bundle(bundle, input_scale=0)


def test_tiled_agrees_with_whole_image_pass(tmp_path) -> None:
    root = build_colour_bundle(tmp_path / "b", smooth=7)
    image = field_image(3000, 4000, seed=7)
    tiled = Predictor.from_bundle(root, tile=512, overlap=64, batch_size=4).predict(image)
    whole = Predictor.from_bundle(root, tile=4000, overlap=0).predict(image)
    assert tiled.labels.shape == whole.labels.shape == (3000, 4000)
    assert (tiled.labels == whole.labels).mean() >= 0.995


def test_no_seams_in_uniform_region(bundle) -> None:
    image = np.empty((200, 260, 3), dtype=np.uint8)
    image[:] = SOIL_RGB
    image[20:180, 20:240] = WEED_RGB  # spans many 64-px tiles and their overlaps
    prediction = Predictor.from_bundle(bundle, tile=64, overlap=16).predict(image, True)
    inner = prediction.probs[:, 30:170, 30:230]  # away from the region's own edges
    assert (prediction.labels[30:170, 30:230] == 2).all()
    assert np.ptp(inner, axis=(1, 2)).max() < 1e-4
    stitched = Predictor.from_bundle(bundle, tile=64, overlap=16, merge="stitch").predict(image)
    assert stitched.probs is None
    np.testing.assert_array_equal(stitched.labels, prediction.labels)


def _plant_with_a_weedy_patch() -> np.ndarray:
    """200x200 soil with one crop disc (under 1% of the frame) holding a small red patch."""
    import cv2

    image = np.empty((200, 200, 3), dtype=np.uint8)
    image[:] = SOIL_RGB
    cv2.circle(image, (100, 100), 9, CROP_RGB, thickness=-1)
    image[97:103, 97:103] = WEED_RGB
    return image


def test_plant_vote_gives_the_plant_one_class(tmp_path) -> None:
    image = _plant_with_a_weedy_patch()
    plant = (image != SOIL_RGB).any(-1)
    predictor = Predictor.from_bundle(build_colour_bundle(tmp_path / "b", smooth=1))
    pixel_wise = predictor.predict(image)
    assert set(np.unique(pixel_wise.labels[plant])) == {1, 2}
    voted = predictor.predict(image, plant_vote=True)
    assert (voted.labels[plant] == 1).all() and voted.probs is None
    np.testing.assert_array_equal(voted.labels[~plant], pixel_wise.labels[~plant])
    assert voted.fractions["weed"] < pixel_wise.fractions["weed"]
    whole = Predictor(predictor.bundle, predictor.session, tile=256)  # one window per image
    flags = whole.predict_batch([image, image], plant_vote=[True, False])
    assert set(np.unique(flags[0].labels)) == {0, 1}
    np.testing.assert_array_equal(flags[1].labels, pixel_wise.labels)


def test_manifest_sets_the_plant_vote_and_merge_defaults(tmp_path) -> None:
    import json

    root = build_colour_bundle(tmp_path / "b", smooth=1)
    manifest = json.loads((root / "weedseg.json").read_text())
    for key in ("plant_vote",):
        manifest.pop(key)  # a bundle written before these fields existed
    manifest["tile"].pop("merge")
    (root / "weedseg.json").write_text(json.dumps(manifest))
    old = Predictor.from_bundle(root)
    assert (old.plant_vote, old.tiling.merge) == (False, "blend")
    manifest.update(plant_vote=True, tile={**manifest["tile"], "merge": "stitch"})
    (root / "weedseg.json").write_text(json.dumps(manifest))
    voting = Predictor.from_bundle(root)
    assert (voting.plant_vote, voting.tiling.merge) == (True, "stitch")
    assert "plant vote" in voting.describe()
    image = _plant_with_a_weedy_patch()
    assert set(np.unique(voting.predict(image).labels)) == {0, 1}
    assert 2 in voting.predict(image, plant_vote=False).labels
    with pytest.raises(WeedsegError, match="tile merge"):
        Predictor.from_bundle(root, merge="average")


def test_static_bundle_refuses_other_tile(tmp_path) -> None:
    root = build_colour_bundle(tmp_path / "b", dynamic=False, size=64)
    with pytest.raises(WeedsegError, match="static"):
        Predictor.from_bundle(root, tile=128)


def test_tampered_bundle_is_refused(tmp_path) -> None:
    root = build_colour_bundle(tmp_path / "b")
    data = bytearray((root / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (root / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx"):
        Predictor.from_bundle(root)


def test_bad_input_and_providers(bundle) -> None:
    predictor = Predictor.from_bundle(bundle, providers="cpu")
    assert predictor.providers == ["CPUExecutionProvider"]
    with pytest.raises(WeedsegError, match="HxWx3 uint8"):
        predictor.predict(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(BundleError, match="INT8"):
        Predictor.from_bundle(bundle, precision="int8")


def test_render() -> None:
    labels = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    colours = colorize(labels, DEFAULT_CLASSES)
    assert colours[0, 1].tolist() == [0, 255, 0] and colours[1, 0].tolist() == [255, 0, 0]
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    blended = overlay(image, labels, DEFAULT_CLASSES, alpha=0.5)
    assert blended[0, 0].tolist() == [100, 100, 100]  # soil left clear
    assert blended[1, 1].tolist() == [178, 50, 50]
    assert legend(DEFAULT_CLASSES).shape[0] == 3 * 24


def test_analysis() -> None:
    labels = np.zeros((50, 60), dtype=np.uint8)
    labels[5:15, 5:25] = 2  # 200 px
    labels[30:33, 40:43] = 2  # 9 px
    labels[40:50, 0:10] = 1
    fractions = class_fractions(labels, DEFAULT_CLASSES)
    assert fractions["weed"] == pytest.approx(209 / 3000)
    instances = weed_instances(labels, class_id=2, min_area_px=10, gsd_cm=0.5, polygons=True)
    assert len(instances) == 1
    weed = instances[0]
    assert weed["area_px"] == 200 and weed["area_cm2"] == pytest.approx(50.0)
    assert weed["bbox"] == [5, 5, 20, 10]
    assert weed["centroid"] == pytest.approx([14.5, 9.5])
    xs, ys = zip(*weed["polygon"], strict=True)
    assert (min(xs), max(xs), min(ys), max(ys)) == (5, 24, 5, 14)
    assert len(weed_instances(labels, 2, min_area_px=1)) == 2


def test_dynamic_bundle_size_limits(tmp_path) -> None:
    root = build_colour_bundle(tmp_path / "b", min_size=64, max_size=256)
    seen = []
    predictor = Predictor.from_bundle(root, tile=128)
    run = predictor.session.run
    predictor.session.run = lambda names, feed: (
        seen.append(feed["images"].shape) or run(names, feed)
    )
    image = field_image(20, 30, seed=2)
    prediction = predictor.predict(image)
    assert prediction.labels.shape == (20, 30)
    assert seen == [(1, 3, 64, 64)]  # padded up to the bundle's minimum side
    assert (prediction.labels == _truth(image)).mean() > 0.9
    with pytest.raises(WeedsegError, match="larger than this bundle accepts"):
        Predictor.from_bundle(root, tile=512)


def test_close_releases_the_session_for_good(tmp_path) -> None:
    predictor = Predictor.from_bundle(build_colour_bundle(tmp_path / "b"), providers="cpu")
    image = field_image(32, 48, seed=4)
    assert predictor.predict(image).labels.shape == (32, 48) and not predictor.closed
    predictor.close()
    predictor.close()  # a second close (shutdown after a reload) is harmless
    assert predictor.closed and predictor.session is None
    with pytest.raises(WeedsegError, match="was closed"):
        predictor.predict(image)


def test_tensorrt_engine_is_used_only_where_it_can_run(tmp_path) -> None:
    from weedseg.bundle import load_bundle, read_manifest, write_manifest
    from weedseg.infer.tensorrt_engine import engine_precision, engine_runtime_available

    root = build_colour_bundle(tmp_path / "b")
    entry = {"file": "model.fp16.trt10.3.0.orin.engine", "tensorrt_version": "10.3.0"}
    manifest = read_manifest(root).model_copy(update={"tensorrt": [{**entry, "precision": "fp16"}]})
    (root / entry["file"]).write_bytes(b"an engine built elsewhere")
    write_manifest(root, manifest, ["model.onnx"])
    with pytest.raises(BundleError, match="no sha256 in the manifest's files"):
        load_bundle(root)  # an engine nobody hashed is never deserialised
    write_manifest(root, manifest, ["model.onnx", entry["file"]])
    bundle = load_bundle(root)
    assert engine_precision(bundle, "fp32") == "fp16"
    assert engine_precision(bundle, "int8") is None
    if engine_runtime_available():
        pytest.skip("TensorRT is installed here: the fallback is not what runs")
    assert Predictor.from_bundle(root).providers[-1] == "CPUExecutionProvider"
    with pytest.raises(WeedsegError, match="tensorrt"):
        Predictor.from_bundle(root, providers="tensorrt-engine")


def test_flip_tta_in_the_runtime_keeps_shapes_and_classes(tmp_path) -> None:
    image = field_image(150, 203, seed=5)  # tiled at 64 px
    stitched = build_colour_bundle(tmp_path / "b", tile=64, overlap=16)
    plain = Predictor.from_bundle(stitched, merge="stitch").predict(image, return_probs=True)
    predictor = Predictor.from_bundle(stitched, merge="stitch", tta="flip", batch_size=2)
    assert "flip TTA" in predictor.describe()
    augmented = predictor.predict(image, return_probs=True)
    assert augmented.labels.shape == plain.labels.shape == image.shape[:2]
    assert augmented.probs.shape == plain.probs.shape == (3, *image.shape[:2])
    # the colour rule and its box filter are mirror-symmetric: averaging the mirrors changes
    # nothing, and the class map still matches the truth
    np.testing.assert_allclose(augmented.probs, plain.probs, atol=1e-4)
    assert (augmented.labels == _truth(image)).mean() > 0.95
    # the class-map-only path (stitch, no probabilities asked) also averages the mirrors
    np.testing.assert_array_equal(predictor.predict(image).labels, augmented.labels)
    small = [field_image(40, 60, 1), field_image(64, 50, 2)]
    for result, one in zip(predictor.predict_batch(small), small, strict=True):
        np.testing.assert_array_equal(result.labels, predictor.predict(one).labels)
    assert augmented.timings_ms["inference"] > 0
    with pytest.raises(WeedsegError, match="tta"):
        Predictor.from_bundle(stitched, tta="rotate")
