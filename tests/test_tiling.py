"""weedseg.tiling: windows cover the image, blending weights sum to one, padding, exactness."""

from __future__ import annotations

import numpy as np
import pytest

from weedseg.tiling import (
    TilingOptions,
    blend_window,
    core_borders,
    edge_ramp,
    pad_image,
    predict_scaled,
    predict_tiled,
    predict_tiled_labels,
    resize_by,
    resize_planes,
    round_up,
    tile_starts,
    window_cores,
    with_tta,
)


def _colour_probs(tiles: np.ndarray) -> np.ndarray:
    """A per-pixel 'model': probabilities from the RGB values, no context."""
    x = tiles.astype(np.float32) + 1.0  # [N, h, w, 3]
    return (x / x.sum(-1, keepdims=True)).transpose(0, 3, 1, 2)  # [N, 3, h, w]


def test_tile_starts_cover_with_overlap() -> None:
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] + 256 == 1000
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ValueError):
        tile_starts(1000, 64, 64)


def test_ramps_of_neighbours_sum_to_one() -> None:
    tile, overlap = 64, 16
    ramp = edge_ramp(tile, overlap)
    assert ramp[0] == 0 and ramp[tile // 2] == 1
    np.testing.assert_allclose(ramp[:overlap] + ramp[:overlap][::-1], 1.0, rtol=1e-6)
    steps = np.diff(ramp[:overlap])
    assert (steps >= 0).all() and steps.max() > 2 * steps[steps > 0].min()  # a cosine, not a line
    assert (edge_ramp(tile, overlap, start=False)[:overlap] == 1).all()
    window = blend_window(tile, overlap, sides=(False, True, False, True))
    assert window.shape == (tile, tile) and window[0, 0] == 1 and window[-1, -1] == 0


def test_pad_image_and_round_up() -> None:
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = pad_image(image, 8, 9)
    assert padded.shape == (8, 9, 3)
    np.testing.assert_array_equal(padded[:5, :7], image)
    assert pad_image(image[:1, :1], 4, 4).shape == (4, 4, 3)
    assert round_up(33) == 64 and round_up(64) == 64


@pytest.mark.parametrize("shape", [(40, 50), (300, 410), (129, 64)])
def test_predict_tiled_is_exact_for_a_context_free_model(shape) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    calls = []

    def run_batch(tiles: np.ndarray) -> np.ndarray:
        calls.append(tiles.shape)
        return _colour_probs(tiles)

    probs = predict_tiled(image, run_batch, 3, TilingOptions(64, 16, batch_size=3))
    assert probs.shape == (3, *shape)
    np.testing.assert_allclose(probs, _colour_probs(image[None])[0], atol=1e-5)
    assert all(n <= 3 for n, *_ in calls)
    assert all(h % 32 == 0 and w % 32 == 0 for _, h, w, _ in calls)


def test_predict_tiled_rejects_odd_tile() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        predict_tiled(np.zeros((10, 10, 3), np.uint8), _colour_probs, 3, TilingOptions(100))


def test_core_borders_are_where_the_cores_meet() -> None:
    assert core_borders(64, 64, 16) == [] and core_borders(40, 64, 16) == []
    starts = tile_starts(300, 64, 16)
    assert core_borders(300, 64, 16) == [lo for lo, _ in window_cores(starts, 64, 300)[1:]]


def test_window_cores_partition_the_axis() -> None:
    for length, tile, overlap in [(300, 64, 16), (129, 64, 16), (1024, 512, 64), (64, 64, 16)]:
        starts = tile_starts(length, tile, overlap)
        cores = window_cores(starts, tile, length)
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(cores, cores[1:], strict=False))
        for start, (lo, hi) in zip(starts, cores, strict=True):
            assert start <= lo < hi <= start + tile  # each core lies inside its window
            # an inner edge is at least overlap/2 away from the window's own edge
            assert lo == 0 or lo - start >= overlap // 2
            assert hi == length or start + tile - hi >= overlap // 2


@pytest.mark.parametrize("shape", [(40, 50), (300, 410), (129, 64)])
def test_predict_tiled_labels_is_exact_for_a_context_free_model(shape) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)

    def run_labels(tiles: np.ndarray) -> np.ndarray:
        assert len(tiles) <= 3 and tiles.shape[1] % 32 == 0 and tiles.shape[2] % 32 == 0
        return _colour_probs(tiles).argmax(axis=1).astype(np.uint8)

    labels = predict_tiled_labels(image, run_labels, TilingOptions(64, 16, batch_size=3))
    assert labels.shape == shape and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, _colour_probs(image[None])[0].argmax(axis=0))


def test_resize_planes_matches_opencv_per_plane() -> None:
    import cv2

    planes = np.random.default_rng(1).random((3, 13, 17)).astype(np.float32)
    out = resize_planes(planes, 30, 40)
    assert out.shape == (3, 30, 40) and out.dtype == np.float32
    for k in range(3):
        expected = cv2.resize(planes[k], (40, 30), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(out[k], expected)
    assert resize_planes(planes, 13, 17) is planes


def test_predict_scaled_runs_the_model_on_the_resized_image() -> None:
    image = np.zeros((120, 200, 3), dtype=np.uint8)
    image[:, 100:] = (200, 30, 30)  # two flat halves: resizing keeps them
    assert resize_by(image, 1.0) is image
    assert resize_by(image, 0.5).shape == (60, 100, 3)
    seen = []

    def run_batch(tiles: np.ndarray) -> np.ndarray:
        seen.append(tiles.shape)
        return _colour_probs(tiles)

    probs = predict_scaled(image, run_batch, 3, TilingOptions(64, 16, input_scale=0.5))
    assert probs.shape == (3, 120, 200)  # back at the image's size
    assert sum(n for n, *_ in seen) == 2  # 60x100: one row of two windows (120x200: 12)
    np.testing.assert_allclose(probs[:, :, :90], _colour_probs(image[None, :, :90])[0], atol=1e-5)
    np.testing.assert_allclose(probs[:, :, 110:], _colour_probs(image[None, :, 110:])[0], atol=1e-5)


def _right_half_blind(tiles: np.ndarray) -> np.ndarray:
    """A 'model' that finds green crop pixels, but on the right half of each tile it is unsure
    (crop probability 0.4, so the argmax calls them soil): [N, h, w, 3] -> [N, 2, h, w]."""
    crop = tiles[..., 1] > 128  # [N, h, w]
    p_crop = np.where(crop, 0.9, 0.1).astype(np.float32)
    p_crop[:, :, tiles.shape[2] // 2 :] = np.where(crop[:, :, tiles.shape[2] // 2 :], 0.4, 0.1)
    return np.stack([1 - p_crop, p_crop], axis=1)


def test_flip_tta_keeps_the_shape_and_fixes_a_planted_one_sided_error() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    rows, cols = np.ogrid[:64, :64]
    truth = (rows - 31.5) ** 2 + (cols - 31.5) ** 2 <= 14**2  # a disc, mirror-symmetric
    image[truth] = (40, 170, 40)
    plain = predict_tiled(image, _right_half_blind, 2, TilingOptions(64))
    flipped = predict_tiled(image, with_tta(_right_half_blind, "flip"), 2, TilingOptions(64))
    assert flipped.shape == plain.shape == (2, 64, 64)
    np.testing.assert_allclose(flipped.sum(0), 1.0, atol=1e-6)

    def crop_iou(probs: np.ndarray) -> float:
        found = probs.argmax(0) == 1
        return (found & truth).sum() / (found | truth).sum()

    assert crop_iou(plain) == pytest.approx(0.5, abs=0.02)  # the right half is missed
    assert crop_iou(flipped) == 1.0  # the left-right mirror sees it on its good side


@pytest.mark.parametrize("shape", [(40, 50), (129, 150)])
def test_flip_tta_keeps_a_flip_equivariant_model_exact(shape) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    run = with_tta(_colour_probs, "flip")
    windows = TilingOptions(64, 16)
    probs = predict_tiled(image, run, 3, windows)
    np.testing.assert_allclose(probs, predict_tiled(image, _colour_probs, 3, windows), atol=1e-6)
    assert with_tta(_colour_probs, "none") is _colour_probs
    with pytest.raises(ValueError, match="flip"):
        with_tta(_colour_probs, "rotate")
