"""Torch datasets for training: random crops of unlabeled photos, augmented labeled pairs.

Randomness comes from torch's global generator only, so `torch.manual_seed` (per sample, or
per DataLoader worker as PyTorch seeds them) reproduces every crop, flip and jitter. A corrupt
file is skipped with one warning naming it and replaced by another sample chosen by a generator
seeded with the index, so the replacement does not depend on the order of access.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from weedseg.classes import IGNORE_INDEX
from weedseg.data.format import DatasetInfo
from weedseg.data.photo_cache import PhotoCache
from weedseg.data.stats import image_mean_std
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, read_mask

__all__ = [
    "LabeledDataset",
    "SegmentationPresetEval",
    "SegmentationPresetTrain",
    "UnlabeledImages",
    "image_mean_std",
    "native_crop_scale",
]

T = TypeVar("T")
AuxSource = Callable[[int, tuple[int, int]], np.ndarray] | Sequence[np.ndarray]
# Zoom of a "native" training crop relative to the photo's own pixels: inference runs at full
# resolution, so training sees plants at 0.5-1.4x their real pixel size. On CWFID fine-tuning
# (192 px crops of 1296x966 photos, 600 steps) this gave validation mIoU 0.656 where whole-photo
# crops (area share 0.25-1, zoom 0.17-0.34) gave 0.600 (benchmarks/RESULTS.md). Pretraining
# keeps this range; fine-tuning defaults to zoom 1 (FinetuneConfig.crop_zoom, issue 17's ablation).
NATIVE_ZOOM = (0.5, 1.4)
RATIO = (3 / 4, 4 / 3)  # width/height range of a training crop's box (RandomResizedCrop's)


def native_crop_scale(
    size: int,
    height: int,
    width: int,
    input_scale: float = 1.0,
    zoom: tuple[float, float] = NATIVE_ZOOM,
) -> tuple[float, float]:
    """RandomResizedCrop's area-share range that keeps a `size` crop of an HxW photo near its
    native pixel scale times `input_scale` (zoom within `zoom` x input_scale, the scale the
    model will see photos at); photos smaller than that are taken whole."""
    share = size * size / (height * width)  # the share a crop at zoom 1 covers
    low, high = (min(1.0, share / (factor * input_scale) ** 2) for factor in reversed(zoom))
    return low, high


def remaining_scale(input_scale: float, cache: PhotoCache | None) -> float:
    """The zoom native-scale crops still need to show photos at `input_scale`: cached photos are
    already `cache.scale` x their size."""
    return input_scale / cache.scale if cache else input_scale


class NativeResizedCrop:
    """RandomResizedCrop with the area-share range chosen per photo by `native_crop_scale`."""

    def __init__(
        self,
        size: int,
        input_scale: float = 1.0,
        ratio: tuple[float, float] = RATIO,
        zoom: tuple[float, float] = NATIVE_ZOOM,
    ):
        self.size = size
        self.input_scale = input_scale
        self.ratio = ratio
        self.zoom = zoom

    def for_photo(self, height: int, width: int) -> v2.RandomResizedCrop:
        """The crop transform for an HxW photo."""
        scale = native_crop_scale(self.size, height, width, self.input_scale, self.zoom)
        return v2.RandomResizedCrop(self.size, scale=scale, ratio=self.ratio, antialias=True)

    def __call__(self, *inputs):  # an image [3, H, W], then masks/maps cropped alike
        return self.for_photo(*inputs[0].shape[-2:])(*inputs)


class RareClassCrop:
    """`crop`, but a `share` of the crops is centred on a pixel of a rare class.

    The rare classes are every class but 0 (the background, soil by the dataset convention) and
    the ignore label. A centred crop picks one of the rare classes present in the photo's mask
    uniformly (not by pixel frequency: the rarest class gets as many centred crops as the
    others), then one of its pixels uniformly, and keeps the crop's random size and aspect;
    the box is shifted inside the photo where the pixel is near a border. A photo with no rare
    pixel gets an ordinary crop. All draws come from torch's global generator.
    """

    def __init__(self, crop: NativeResizedCrop | v2.RandomResizedCrop, share: float):
        self.crop = crop
        self.share = share

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask):
        if torch.rand(1).item() >= self.share:
            return self.crop(image, mask)
        centre = rare_pixel(mask)
        if centre is None:
            return self.crop(image, mask)
        height, width = mask.shape[-2:]
        crop = (
            self.crop.for_photo(height, width)
            if isinstance(self.crop, NativeResizedCrop)
            else self.crop
        )
        box = crop.make_params([image])  # random size and aspect (and a position, replaced)
        box["top"] = min(max(centre[0] - box["height"] // 2, 0), height - box["height"])
        box["left"] = min(max(centre[1] - box["width"] // 2, 0), width - box["width"])
        return crop.transform(image, box), crop.transform(mask, box)


def rare_pixel(mask: torch.Tensor) -> tuple[int, int] | None:
    """(row, column) of a random pixel of a random rare class present in `mask` [H, W] uint8
    (any class but 0 and IGNORE_INDEX, chosen uniformly), or None when it has none."""
    counts = torch.bincount(mask.reshape(-1), minlength=256)  # [256] pixels per label
    counts[0] = counts[IGNORE_INDEX] = 0
    present = counts.nonzero().flatten()  # [C] rare class ids in the mask
    if not len(present):
        return None
    label = present[torch.randint(len(present), (1,))].item()
    nth = torch.randint(int(counts[label]), (1,)).item()
    flat = (mask.reshape(-1) == label).nonzero()[nth].item()
    return divmod(flat, mask.shape[-1])


def field_color_jitter() -> v2.ColorJitter:
    """Field photos vary in exposure and white balance far more than in hue."""
    return v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.25, hue=0.02)


class SegmentationPresetTrain:
    """Random resized crop (a share of them on rare classes), flips and colour jitter; the mask
    follows every geometric step."""

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] | None = None,
        hflip: bool = True,
        vflip: bool = True,
        jitter: bool = True,
        input_scale: float = 1.0,
        rare_share: float = 0.0,
        ratio: tuple[float, float] = RATIO,
        zoom: tuple[float, float] = NATIVE_ZOOM,
    ):
        """`scale`: the crop's share of the photo's area, or None for native scale (times
        `input_scale`, the scale the model sees photos at, with a zoom drawn from `zoom`);
        `rare_share`: the share of crops centred on a rare-class pixel of the mask
        (`RareClassCrop`); `ratio`: the range of the crop box's width/height before it is
        resized to a square (1,1: no aspect jitter)."""
        crop = (
            NativeResizedCrop(size, input_scale, ratio, zoom)
            if scale is None
            else v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True)
        )
        steps: list[Callable] = [RareClassCrop(crop, rare_share) if rare_share else crop]
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
        if vflip:  # nadir field photos have no "up"
            steps.append(v2.RandomVerticalFlip())
        if jitter:
            steps.append(field_color_jitter())  # applies to the image only, masks pass through
        self.transforms = v2.Compose(steps)

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask):
        return self.transforms(image, mask)


class SegmentationPresetEval:
    """Nothing (full resolution), or a resize to `size` x `size` (nearest for the mask)."""

    def __init__(self, size: int | None = None):
        self.transforms = v2.Resize((size, size), antialias=True) if size else v2.Identity()

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask):
        return self.transforms(image, mask)


class CorruptSkipper:
    """Load sample `index`, or a deterministic stand-in when its files are bad (warned once)."""

    def __init__(self, count: int, seed: int):
        self.count = count
        self.seed = seed
        self.bad: set[int] = set()

    def load(self, index: int, loader: Callable[[int], T]) -> tuple[T, int]:
        """(the loaded sample, the index it really came from)."""
        for candidate in self._candidates(index):
            if len(self.bad) == self.count:
                break
            if candidate in self.bad:
                continue
            try:
                return loader(candidate), candidate
            except WeedsegError as exc:
                self.bad.add(candidate)
                warnings.warn(f"skipping corrupt sample: {exc}", RuntimeWarning, stacklevel=3)
        raise WeedsegError(f"all {self.count} samples are unreadable")

    def _candidates(self, index: int) -> Iterator[int]:
        """`index`, then seeded random draws, then every sample in order (so one is found)."""
        yield index
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        for _ in range(3 * self.count):
            yield int(torch.randint(self.count, (1,), generator=generator))
        yield from range(self.count)


class UnlabeledImages(torch.utils.data.Dataset):
    """Random crops of unlabeled photos of any size, decoding one file per access.

    `aux(i, (H, W))` (or `aux[i]`) gives an HxW map of image `i` (e.g. patch difficulty) that
    goes through the same crop and flip as the image (nearest interpolation); colour jitter
    touches the image only. Items: {"image": float [3, S, S] 0..1, "index": int, "aux": [S, S]}
    where "index" names the image actually returned (a corrupt file's stand-in).
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        size: int,
        scale: tuple[float, float] | None = None,  # area share per crop; None: native scale
        hflip: bool = True,
        color_jitter: bool = True,
        aux: AuxSource | None = None,
        vflip: bool = True,
        seed: int = 0,
        cache: PhotoCache | None = None,  # decoded photos, e.g. at input_scale, shared by workers
        input_scale: float = 1.0,  # native-scale crops: plants at input_scale x their size
    ):
        self.files = [Path(f) for f in files]
        self.cache = cache
        if not self.files:
            raise WeedsegError("UnlabeledImages: no image files given")
        self.aux = aux
        self.skipper = CorruptSkipper(len(self.files), seed)
        crop_input_scale = remaining_scale(input_scale, cache)
        self.geometry = SegmentationPresetTrain(
            size, scale, hflip, vflip, jitter=False, input_scale=crop_input_scale
        )
        self.jitter = field_color_jitter() if color_jitter else None

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> np.ndarray:
        if self.cache is not None:
            return self.cache.image(self.files[index])
        return read_image(self.files[index])

    def _aux_map(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        if callable(self.aux):
            values = np.asarray(self.aux(index, shape))
        else:
            values = np.asarray(self.aux[index])
        if values.ndim != 2:
            raise ValueError(f"aux map of {self.files[index]} must be 2-D, got {values.shape}")
        if values.shape != shape:  # e.g. a patch-grid map: stretch it over the image (nearest)
            rows = np.arange(shape[0]) * values.shape[0] // shape[0]
            cols = np.arange(shape[1]) * values.shape[1] // shape[1]
            values = values[rows[:, None], cols[None, :]]
        return np.ascontiguousarray(values)

    def __getitem__(self, index: int) -> dict:
        array, index = self.skipper.load(index, self._load)
        image = tv_tensors.Image(torch.from_numpy(array).permute(2, 0, 1))  # image: [3, H, W] uint8
        item: dict = {"index": index}
        if self.aux is None:
            image = self.geometry.transforms(image)
        else:
            aux = tv_tensors.Mask(torch.from_numpy(self._aux_map(index, array.shape[:2])))
            image, aux = self.geometry(image, aux)
            item["aux"] = aux.as_subclass(torch.Tensor)  # aux: [S, S]
        if self.jitter is not None:
            image = self.jitter(image)
        item["image"] = image.as_subclass(torch.Tensor).float() / 255.0  # image: [3, S, S]
        return item


class LabeledDataset(torch.utils.data.Dataset):
    """Image/mask pairs of a canonical dataset with joint augmentation.

    `split` is a split name or an explicit list of stems. train=True: random resized crops of
    `size` (`rare_share` of them centred on a crop or weed pixel), flips and colour jitter;
    train=False: full resolution, or resized to `size`.
    Items: {"image": float [3, S, S] 0..1, "mask": int64 [S, S] (255 = ignore), "stem": str}.
    """

    def __init__(
        self,
        info: DatasetInfo,
        split: str | Sequence[str],
        size: int | None,
        train: bool,
        scale: tuple[float, float] | None = None,  # area share per crop; None: native scale
        hflip: bool = True,
        vflip: bool = True,
        color_jitter: bool = True,
        seed: int = 0,
        input_scale: float = 1.0,  # native-scale crops: plants at input_scale x their size
        cache: PhotoCache | None = None,  # decoded photos and masks, e.g. at input_scale
        rare_share: float = 0.0,  # share of training crops centred on a rare-class pixel
        crop_ratio: tuple[float, float] = RATIO,  # width/height range of a crop's box
        crop_zoom: tuple[float, float] = NATIVE_ZOOM,  # zoom range of native-scale crops
    ):
        self.info = info
        self.cache = cache
        crop_input_scale = remaining_scale(input_scale, cache)
        self.stems = info.split(split) if isinstance(split, str) else list(split)
        if not self.stems:
            raise WeedsegError(f"{info.root}: split {split!r} has no samples")
        if train and not size:
            raise WeedsegError("LabeledDataset: training crops need a size")
        self.transform = (
            SegmentationPresetTrain(
                size,
                scale,
                hflip,
                vflip,
                color_jitter,
                crop_input_scale,
                rare_share,
                crop_ratio,
                crop_zoom,
            )
            if train
            else SegmentationPresetEval(size)
        )
        self.skipper = CorruptSkipper(len(self.stems), seed)

    def __len__(self) -> int:
        return len(self.stems)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        stem = self.stems[index]
        image_path, mask_path = self.info.image_path(stem), self.info.mask_path(stem)
        if self.cache is not None:
            image, mask = self.cache.image(image_path), self.cache.mask(mask_path)
        else:
            image, mask = read_image(image_path), read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise WeedsegError(f"{self.info.mask_path(stem)}: size differs from its image")
        return image, mask

    def __getitem__(self, index: int) -> dict:
        (image, mask), index = self.skipper.load(index, self._load)
        image_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))  # [3, H, W] uint8
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))  # [H, W] uint8
        image_t, mask_t = self.transform(image_t, mask_t)
        return {
            "image": image_t.as_subclass(torch.Tensor).float() / 255.0,  # [3, S, S]
            "mask": mask_t.as_subclass(torch.Tensor).long(),  # [S, S], IGNORE_INDEX kept
            "stem": self.stems[index],
        }
