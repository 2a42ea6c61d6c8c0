"""weedseg.infer.plant_vote: one class per plant across tile borders; large regions stay apart."""

from __future__ import annotations

import cv2
import numpy as np

from weedseg.infer.plant_vote import plant_vote
from weedseg.tiling import TilingOptions, core_borders, predict_tiled, predict_tiled_labels

TILE, OVERLAP = 64, 16


def _plant_image(height: int, width: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    """Soil with one green disc (the plant)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    cv2.circle(image, centre, radius, (0, 200, 0), thickness=-1)
    return image


def _unsure_model(tiles: np.ndarray) -> np.ndarray:
    """tiles [N, h, w, 3] -> probs [N, 3, h, w]: green is vegetation, called crop on the left of
    each window and weed on its right (a model unsure of the species, swayed by what it sees)."""
    count, height, width = tiles.shape[:3]
    green = (tiles[..., 1] > 100).astype(np.float32)  # [N, h, w]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, None, :]  # position in the window
    crop = green * (0.75 - 0.5 * x)
    weed = green * (0.25 + 0.5 * x)
    return np.stack([1.0 - green, crop, weed], axis=1)  # [N, 3, h, w]


def test_a_plant_on_a_tile_border_gets_one_class_with_blending_and_vote() -> None:
    height, width = 128, 240  # the plant is under 1% of the frame: one plant, voted
    border = core_borders(width, TILE, OVERLAP)[0]
    image = _plant_image(height, width, (border, 32), 9)
    plant = image[..., 1] > 100

    def labels_of(tiles: np.ndarray) -> np.ndarray:
        return _unsure_model(tiles).argmax(axis=1).astype(np.uint8)

    stitched = predict_tiled_labels(image, labels_of, TilingOptions(TILE, OVERLAP))
    assert set(np.unique(stitched[plant])) == {1, 2}  # cut in two by the seam
    assert (stitched[:, border - 1] != stitched[:, border]).any()

    probs = predict_tiled(image, _unsure_model, 3, TilingOptions(TILE, OVERLAP))  # [3, H, W]
    voted = plant_vote(probs.argmax(axis=0).astype(np.uint8), probs)
    assert len(np.unique(voted[plant])) == 1 and voted[plant][0] in (1, 2)
    assert (voted[~plant] == 0).all()


def test_the_class_with_more_probability_mass_wins_not_the_most_pixels() -> None:
    labels = np.zeros((40, 40), dtype=np.uint8)
    probs = np.zeros((3, 40, 40), dtype=np.float32)
    probs[0] = 1.0
    labels[10:20, 10:16] = 1  # 60 crop pixels, barely crop
    probs[:, 10:20, 10:16] = np.array([0.05, 0.5, 0.45])[:, None, None]
    labels[10:20, 16:20] = 2  # 40 weed pixels, surely weed: mass 36 + 27 > 30 + 2
    probs[:, 10:20, 16:20] = np.array([0.05, 0.05, 0.9])[:, None, None]
    labels[30, 30] = 1  # a separate one-pixel crop plant keeps its class
    probs[:, 30, 30] = (0.1, 0.8, 0.1)
    voted = plant_vote(labels, probs, max_region_share=0.5)
    assert (voted[10:20, 10:20] == 2).all()
    assert voted[30, 30] == 1
    assert (voted[labels == 0] == 0).all()


def test_the_vote_leaves_a_large_multi_species_region_pixel_wise() -> None:
    labels = np.zeros((100, 100), dtype=np.uint8)
    labels[20:60, 20:50] = 1  # crop touching weed: one region of 2,400 px, 24% of the frame
    labels[20:60, 50:80] = 2
    probs = np.stack([labels == k for k in range(3)]).astype(np.float32)
    np.testing.assert_array_equal(plant_vote(labels, probs, max_region_share=0.1), labels)
    # the same region voted when the size limit allows it
    assert len(np.unique(plant_vote(labels, probs, max_region_share=0.5)[labels > 0])) == 1
