"""Training datasets: shapes, masks/aux maps that follow the image, corrupt files, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from weedseg.data.format import DatasetInfo
from weedseg.data.loaders import (
    LabeledDataset,
    UnlabeledImages,
    image_mean_std,
    native_crop_scale,
)
from weedseg.data.synth import SynthConfig, generate_dataset
from weedseg.errors import WeedsegError
from weedseg.imageio import write_image

torch.set_num_threads(1)
QUADRANT_COLORS = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [250, 250, 10]], np.uint8)


def _quadrants(height: int = 64, width: int = 96) -> np.ndarray:
    """[H, W] quadrant ids 0..3: a map whose values are readable back from the image colour."""
    ids = np.zeros((height, width), np.uint8)
    ids[: height // 2, width // 2 :] = 1
    ids[height // 2 :, : width // 2] = 2
    ids[height // 2 :, width // 2 :] = 3
    return ids


def _ids_from_colors(image: torch.Tensor) -> np.ndarray:
    """Nearest quadrant colour of every pixel of a [3, S, S] 0..1 image."""
    pixels = image.permute(1, 2, 0).numpy()[..., None, :] * 255  # [S, S, 1, 3]
    return np.argmin(((pixels - QUADRANT_COLORS) ** 2).sum(-1), axis=-1)


@pytest.fixture
def quadrant_files(tmp_path: Path) -> list[Path]:
    files = []
    for i in range(3):
        path = tmp_path / "photos" / f"q{i}.png"
        write_image(path, QUADRANT_COLORS[_quadrants()])
        files.append(path)
    return files


def test_unlabeled_crops_have_the_contract_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = []
    for i, (h, w) in enumerate([(40, 60), (100, 80), (32, 32)]):
        files.append(tmp_path / f"{i}.jpg")
        write_image(files[-1], rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    dataset = UnlabeledImages(files, size=32)
    item = dataset[1]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["index"] == 1 and "aux" not in item
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch["image"].shape == (3, 3, 32, 32)


def test_aux_map_follows_the_crop_and_flip(quadrant_files: list[Path]) -> None:
    calls = []

    def aux(index: int, shape: tuple[int, int]) -> np.ndarray:
        calls.append((index, shape))
        return _quadrants(*shape).astype(np.float32)

    dataset = UnlabeledImages(
        quadrant_files, size=32, scale=(0.2, 0.6), color_jitter=False, aux=aux
    )
    for seed in range(8):
        torch.manual_seed(seed)
        item = dataset[seed % 3]
        assert item["aux"].shape == (32, 32) and item["aux"].dtype == torch.float32
        agreement = (_ids_from_colors(item["image"]) == item["aux"].numpy()).mean()
        assert agreement > 0.9, (seed, agreement)
    assert calls[0] == (0, (64, 96))


def test_aux_may_be_a_coarse_map_per_image(quadrant_files: list[Path]) -> None:
    patch_maps = [_quadrants(2, 2).astype(np.int64) for _ in quadrant_files]  # 2x2 patch grid
    dataset = UnlabeledImages(quadrant_files, size=32, color_jitter=False, aux=patch_maps)
    torch.manual_seed(0)
    item = dataset[2]
    assert (_ids_from_colors(item["image"]) == item["aux"].numpy()).mean() > 0.9


def test_corrupt_unlabeled_file_is_skipped_with_one_warning(quadrant_files: list[Path]) -> None:
    bad = quadrant_files[0].parent / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    dataset = UnlabeledImages([*quadrant_files, bad], size=16)
    with pytest.warns(RuntimeWarning, match="broken.jpg"):
        item = dataset[3]
    assert item["index"] in (0, 1, 2) and item["image"].shape == (3, 16, 16)
    again = dataset[3]
    assert again["index"] == item["index"]  # the stand-in is chosen deterministically
    assert dataset.skipper.bad == {3}


def test_all_files_corrupt_is_a_clear_error(tmp_path: Path) -> None:
    files = [tmp_path / f"{i}.png" for i in range(2)]
    for path in files:
        path.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning), pytest.raises(WeedsegError, match="all 2 samples"):
        UnlabeledImages(files, size=16)[0]


def test_torch_seed_reproduces_the_crop(quadrant_files: list[Path]) -> None:
    dataset = UnlabeledImages(quadrant_files, size=24)
    torch.manual_seed(7)
    first = dataset[1]["image"]
    torch.manual_seed(7)
    assert torch.equal(first, dataset[1]["image"])
    assert not torch.equal(first, dataset[1]["image"])


@pytest.fixture
def quadrant_dataset(tmp_path: Path) -> DatasetInfo:
    root = tmp_path / "labeled"
    for stem in ("a", "b"):
        write_image(root / "images" / f"{stem}.png", QUADRANT_COLORS[_quadrants()])
        mask = _quadrants()
        mask[:4, :4] = 255  # an ignore corner
        write_image(root / "masks" / f"{stem}.png", mask)
    info = DatasetInfo(root, splits={"train": ["a", "b"]}, images={"a": "a.png", "b": "b.png"})
    info.save()
    return info


def test_labeled_train_crops_keep_image_and_mask_aligned(quadrant_dataset: DatasetInfo) -> None:
    dataset = LabeledDataset(quadrant_dataset, "train", size=32, train=True, color_jitter=False)
    for seed in range(6):
        torch.manual_seed(seed)
        item = dataset[seed % 2]
        assert item["image"].shape == (3, 32, 32)
        assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
        valid = item["mask"].numpy() != 255
        agreement = (_ids_from_colors(item["image"])[valid] == item["mask"].numpy()[valid]).mean()
        assert agreement > 0.9, (seed, agreement)
        assert set(np.unique(item["mask"].numpy())) <= {0, 1, 2, 3, 255}


def test_labeled_eval_is_full_resolution_or_resized(quadrant_dataset: DatasetInfo) -> None:
    full = LabeledDataset(quadrant_dataset, ["b"], size=None, train=False)[0]
    assert full["stem"] == "b" and full["mask"].shape == (64, 96)
    assert torch.equal(full["mask"][0, 0], torch.tensor(255))
    assert (_ids_from_colors(full["image"])[8:] == full["mask"].numpy()[8:]).all()
    resized = LabeledDataset(quadrant_dataset, "train", size=32, train=False)[0]
    assert resized["image"].shape == (3, 32, 32) and resized["mask"].shape == (32, 32)


def test_corrupt_labeled_pair_is_skipped(quadrant_dataset: DatasetInfo) -> None:
    quadrant_dataset.mask_path("a").write_bytes(b"\x89PNG broken")
    dataset = LabeledDataset(quadrant_dataset, "train", size=16, train=True)
    with pytest.warns(RuntimeWarning, match=r"a\.png"):
        assert dataset[0]["stem"] == "b"


def test_synthetic_dataset_batches(tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "s", SynthConfig(n=4, size=64))
    loader = torch.utils.data.DataLoader(LabeledDataset(info, "train", 32, train=True), 2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 32, 32)
    assert len(batch["stem"]) == 2


def test_image_mean_std_of_known_colours(tmp_path: Path) -> None:
    files = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        files.append(tmp_path / f"{i}.png")
        write_image(files[-1], np.full((8, 8, 3), color, np.uint8))
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.warns(RuntimeWarning, match="bad.png"):
        mean, std = image_mean_std([*files, tmp_path / "bad.png"])
    np.testing.assert_allclose(mean, (0.5, 0.0, 0.5), atol=1e-6)
    np.testing.assert_allclose(std, (0.5, 0.0, 0.5), atol=1e-5)


def test_native_crop_scale_ranges() -> None:
    assert native_crop_scale(192, 966, 1296) == pytest.approx((0.0150, 0.1178), abs=1e-4)
    assert native_crop_scale(256, 512, 512) == pytest.approx((0.1276, 1.0), abs=1e-4)
    assert native_crop_scale(256, 128, 128) == (1.0, 1.0)  # smaller than a crop: taken whole
    # a model working at half scale sees plants at 0.25-0.7x: crops cover 4x the area
    assert native_crop_scale(192, 966, 1296, input_scale=0.5) == pytest.approx(
        (0.0601, 0.4711), abs=1e-4
    )
    # fine-tuning's default zoom 1: one area share, a crop of exactly size x size photo pixels
    share = 192 * 192 / (966 * 1296)
    assert native_crop_scale(192, 966, 1296, zoom=(1.0, 1.0)) == pytest.approx((share, share))


def test_zoom_1_square_crops_copy_the_photo_pixels(tmp_path: Path) -> None:
    """Fine-tuning's default sampler (zoom 1, square, no jitter): every crop is a 64x64 window
    of the photo, not resampled (noise shows any interpolation)."""
    root = tmp_path / "noise"
    image = np.random.default_rng(0).integers(0, 256, (120, 150, 3), dtype=np.uint8)
    write_image(root / "images" / "n.png", image)
    write_image(root / "masks" / "n.png", np.zeros((120, 150), np.uint8))
    info = DatasetInfo(root, splits={"train": ["n"]}, images={"n": "n.png"})
    info.save()
    dataset = LabeledDataset(
        info, "train", size=64, train=True, color_jitter=False, crop_ratio=(1.0, 1.0),
        crop_zoom=(1.0, 1.0), hflip=False, vflip=False,
    )  # fmt: skip
    photo = torch.from_numpy(image).permute(2, 0, 1).float() / 255  # [3, 120, 150]
    windows = photo.unfold(1, 64, 1).unfold(2, 64, 1)  # [3, 57, 87, 64, 64]
    for seed in range(4):
        torch.manual_seed(seed)
        crop = dataset[0]["image"]  # [3, 64, 64]
        error = (windows - crop[:, None, None]).abs().amax(dim=(0, 3, 4))  # [57, 87]
        assert error.min().item() < 1e-6, seed


def test_native_crops_keep_the_photo_pixel_scale(tmp_path: Path) -> None:
    yy, xx = np.mgrid[:966, :1296]
    board = ((yy // 16 + xx // 16) % 2 * 255).astype(np.uint8)  # 16 px cells
    path = tmp_path / "board.png"
    write_image(path, np.repeat(board[:, :, None], 3, axis=2))
    for scale, low, high in [(None, 6, 30), ((0.25, 1.0), 31, 80)]:
        dataset = UnlabeledImages([path], size=192, scale=scale, color_jitter=False)
        for seed in range(6):
            torch.manual_seed(seed)
            row = dataset[0]["image"][0, 96].numpy() > 0.5
            edges = np.count_nonzero(row[1:] != row[:-1])
            # native: zoom 0.5-1.4 (x aspect 3/4-4/3) -> 192 / (16 * zoom) cell edges per row;
            # whole-photo crops shrink 3-6x -> many more
            assert low <= edges <= high, (scale, seed, edges)


@pytest.fixture
def tiny_crop_blob(tmp_path: Path) -> DatasetInfo:
    """Two 192x192 soil photos, each with one crop disc of radius 3 (0.08% of the pixels)."""
    root = tmp_path / "blob"
    info = DatasetInfo(root, splits={"train": []})
    for stem, centre in (("a", (150, 40)), ("b", (20, 170))):
        image = np.full((192, 192, 3), (110, 90, 70), np.uint8)
        mask = np.zeros((192, 192), np.uint8)
        rows, cols = np.ogrid[:192, :192]
        disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= 9
        image[disc], mask[disc] = (40, 170, 40), 1
        write_image(root / "images" / f"{stem}.png", image)
        write_image(root / "masks" / f"{stem}.png", mask)
        info.images[stem] = f"{stem}.png"
        info.splits["train"].append(stem)
    info.save()
    return info


def _share_with_crop(dataset: LabeledDataset, samples: int) -> float:
    """Share of `samples` seeded training crops holding at least one crop pixel."""
    hits = 0
    for seed in range(samples):
        torch.manual_seed(seed)  # as weedseg.seeding.SeededSamples does before each item
        hits += bool((dataset[seed % len(dataset)]["mask"] == 1).any())
    return hits / samples


def test_rare_share_centres_that_share_of_crops_on_rare_pixels(tiny_crop_blob, tmp_path) -> None:
    from weedseg.data.photo_cache import PhotoCache

    cache = PhotoCache(tmp_path / "cache", max_bytes=10**7)  # memory-mapped arrays, as training
    settings = dict(size=32, train=True, scale=(0.02, 0.03), color_jitter=False, cache=cache)
    random_crops = LabeledDataset(tiny_crop_blob, "train", **settings)
    half_rare = LabeledDataset(tiny_crop_blob, "train", rare_share=0.5, **settings)
    all_rare = LabeledDataset(tiny_crop_blob, "train", rare_share=1.0, **settings)
    assert _share_with_crop(random_crops, 300) < 0.1  # the blob is 0.08% of the photo
    assert 0.4 < _share_with_crop(half_rare, 300) < 0.62  # 0.5 centred + ~3% by chance
    assert _share_with_crop(all_rare, 100) == 1.0
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4  # crops came from the cache
    torch.manual_seed(3)
    first = half_rare[1]
    torch.manual_seed(3)
    again = half_rare[1]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])


def test_rare_share_on_a_photo_without_rare_pixels_gives_ordinary_crops(tmp_path) -> None:
    root = tmp_path / "soil"
    write_image(root / "images" / "s.png", np.full((64, 64, 3), 100, np.uint8))
    write_image(root / "masks" / "s.png", np.zeros((64, 64), np.uint8))
    info = DatasetInfo(root, splits={"train": ["s"]}, images={"s": "s.png"})
    info.save()
    item = LabeledDataset(info, "train", size=32, train=True, rare_share=1.0)[0]
    assert item["image"].shape == (3, 32, 32) and not item["mask"].any()


def test_crop_ratio_sets_the_aspect_of_the_crop_box(tmp_path: Path) -> None:
    root = tmp_path / "disc"
    image = np.full((200, 200, 3), (110, 90, 70), np.uint8)
    rows, cols = np.ogrid[:200, :200]
    disc = (rows - 100) ** 2 + (cols - 100) ** 2 <= 12**2
    image[disc] = (40, 170, 40)
    write_image(root / "images" / "d.png", image)
    write_image(root / "masks" / "d.png", disc.astype(np.uint8))
    info = DatasetInfo(root, splits={"train": ["d"]}, images={"d": "d.png"})
    info.save()

    def extents(ratio: tuple[float, float]) -> tuple[int, int]:
        """(rows, columns) the disc spans in a crop centred on it, box area 25% of the photo."""
        torch.manual_seed(0)
        dataset = LabeledDataset(
            info, "train", size=32, train=True, scale=(0.25, 0.25), rare_share=1.0,
            crop_ratio=ratio, color_jitter=False,
        )  # fmt: skip
        found = np.argwhere(dataset[0]["mask"].numpy() == 1)
        return tuple(int(v) + 1 for v in found.max(0) - found.min(0))

    tall, wide = extents((2.0, 2.0))  # a box twice as wide as tall, squeezed into a square
    assert tall > 1.6 * wide
    tall, wide = extents((1.0, 1.0))  # square boxes: a disc stays round
    assert abs(tall - wide) <= 1
