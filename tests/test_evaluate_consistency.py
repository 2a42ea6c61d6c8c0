"""weedseg.evaluate.consistency: mixed plant regions, seams at core borders, crop plants kept."""

from __future__ import annotations

import numpy as np

from weedseg.classes import IGNORE_INDEX
from weedseg.evaluate.consistency import (
    ConsistencyCounts,
    border_disagreement,
    crop_plants_kept,
    mixed_regions,
)

NAMES = ["soil", "crop", "weed"]


def test_mixed_regions_counts_large_regions_holding_two_classes() -> None:
    labels = np.zeros((200, 200), dtype=np.uint8)
    labels[0:50, 0:50] = 1  # 2,500 px of crop with a 10% weed part: mixed
    labels[0:5, 0:50] = 2
    labels[100:150, 100:150] = 2  # 2,500 px of weed with 2% crop: not mixed
    labels[100:101, 100:150] = 1
    labels[180:190, 180:190] = 1  # 100 px: too small to count
    labels[180:185, 180:190] = 2
    assert mixed_regions(labels, 3) == (1, 2)
    labels[60:70, 0:50] = IGNORE_INDEX  # ignored pixels are not vegetation
    assert mixed_regions(labels, 3) == (1, 2)


def test_a_straight_seam_shows_as_border_disagreement() -> None:
    labels = np.zeros((60, 80), dtype=np.uint8)
    labels[10:50, 10:70] = 1
    labels[10:50, 40:70] = 2  # the class changes at column 40, a core border
    across, pairs, beside, beside_pairs = border_disagreement(labels, [30], [40])
    assert (pairs, beside_pairs) == (80 + 60, 2 * (80 + 60))
    assert across == 40 and beside == 0
    # the same map with the border one column off: no change across it, one beside it
    across, _, beside, _ = border_disagreement(labels, [], [41])
    assert across == 0 and beside == 40


def test_crop_plants_kept_needs_ninety_percent_of_the_plant() -> None:
    target = np.zeros((100, 100), dtype=np.uint8)
    target[0:20, 0:20] = 1  # plant A: 400 px
    target[50:70, 50:70] = 1  # plant B: 400 px
    target[90:95, 90:95] = 1  # 25 px: below the plant size
    pred = target.copy()
    pred[0:1, 0:20] = 2  # A: 95% crop, kept
    pred[50:54, 50:70] = 2  # B: 80% crop, lost
    assert crop_plants_kept(target, pred, crop_id=1) == (1, 2)


def test_counts_add_up_over_images_and_give_rates() -> None:
    target = np.zeros((100, 100), dtype=np.uint8)
    target[10:60, 10:60] = 1
    pred = target.copy()
    pred[10:60, 35:60] = 2  # the plant cut in two along column 35
    counts = ConsistencyCounts()
    counts.update(target, pred, NAMES, border_rows=[], border_cols=[35])
    counts.update(target, target, NAMES, border_rows=[], border_cols=[35])
    rates = counts.to_dict()
    assert rates["mixed_region_rate"] == 0.5 and rates["mixed_region_rate_ground_truth"] == 0.0
    assert rates["crop_plants_kept"] == 0.5
    assert rates["border_disagreement"] == 50 / 200 and rates["beside_border_disagreement"] == 0
