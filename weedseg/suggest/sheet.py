"""The contact sheet: the suggested photos in rank order, each with its rank and score."""

from __future__ import annotations

import cv2
import numpy as np

CELL = 200  # thumbnail cell side in pixels
CAPTION = 34  # caption strip height
COLUMNS = 5


def contact_sheet(thumbs: list[np.ndarray], captions: list[tuple[str, str]]) -> np.ndarray:
    """Grid of letterboxed thumbnails (HxWx3 RGB) with two caption lines each."""
    columns = max(1, min(COLUMNS, len(thumbs)))
    rows = (len(thumbs) + columns - 1) // columns
    sheet = np.full((rows * (CELL + CAPTION), columns * CELL, 3), 255, np.uint8)
    for i, (thumb, (first, second)) in enumerate(zip(thumbs, captions, strict=True)):
        top, left = (i // columns) * (CELL + CAPTION), (i % columns) * CELL
        height, width = thumb.shape[:2]
        scale = (CELL - 8) / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(thumb, size, interpolation=cv2.INTER_AREA)
        y, x = top + (CELL - size[1]) // 2, left + (CELL - size[0]) // 2
        sheet[y : y + size[1], x : x + size[0]] = small
        for line, text in enumerate((first, second)):
            origin = (left + 4, top + CELL + 13 + 15 * line)
            cv2.putText(
                sheet, text[:30], origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
            )
    return sheet
