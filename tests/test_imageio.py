"""weedseg.imageio: every input flavour ends as HxWx3 uint8 RGB; broken files raise clearly."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from weedseg.imageio import ImageReadError, read_image, read_mask, to_rgb8, write_image


def _rgb(height: int = 12, width: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_png_round_trip_keeps_rgb_order(tmp_path) -> None:
    image = _rgb()
    write_image(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)


def test_grey_rgba_and_16_bit(tmp_path) -> None:
    image = _rgb()
    grey = image[:, :, 0]
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert (read_image(tmp_path / "grey.png") == grey[:, :, None]).all()
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), image)
    deep = image.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1])
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png"), image)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_multiband_tiff_picks_bands(tmp_path) -> None:
    rasterio = pytest.importorskip("rasterio")
    bands = np.stack([np.full((10, 14), 40 * (i + 1), np.uint8) for i in range(5)])
    with rasterio.open(
        tmp_path / "multi.tif", "w", driver="GTiff", height=10, width=14, count=5, dtype="uint8"
    ) as dst:
        dst.write(bands)
    assert read_image(tmp_path / "multi.tif")[0, 0].tolist() == [40, 80, 120]
    assert read_image(tmp_path / "multi.tif", bands=(4, 2, 0))[0, 0].tolist() == [200, 120, 40]


def test_exif_orientation_is_applied(tmp_path) -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", exif=exif, quality=95)
    (tmp_path / "rot.jpg").write_bytes(buffer.getvalue())
    shown = read_image(tmp_path / "rot.jpg")
    assert shown.shape == (40, 20, 3)
    assert shown[:15].mean() > 200 and shown[25:].mean() < 50  # white half now on top


def test_to_rgb8_scales_dtypes() -> None:
    assert to_rgb8(np.full((2, 2), 1.0, np.float32))[0, 0].tolist() == [255, 255, 255]
    assert to_rgb8(np.full((2, 2, 3), 65535, np.uint16))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.png", b"not an image at all", "not a decodable image"),
        ("cut.jpg", None, "not a decodable image"),
    ],
)
def test_broken_files_raise_with_name(tmp_path, name, content, reason) -> None:
    if content is None:
        ok, buffer = cv2.imencode(".jpg", _rgb(64, 64))
        content = buffer.tobytes()[: len(buffer) // 2]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(tmp_path / name)
    assert name in str(info.value)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.jpg")


def test_read_mask_wants_single_channel(tmp_path) -> None:
    write_image(tmp_path / "m.png", np.array([[0, 1], [2, 255]], np.uint8))
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 1], [2, 255]]
    write_image(tmp_path / "rgb.png", _rgb(4, 4))
    with pytest.raises(ImageReadError, match="single-channel"):
        read_mask(tmp_path / "rgb.png")
