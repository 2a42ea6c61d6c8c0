"""Model specs, named presets and the one constructor used by pretraining and fine-tuning."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from weedseg.errors import WeedsegError

SIZE_MULTIPLE = 32  # total encoder stride: input sides must be multiples of it

_SMP_ARCHS = {"unet": "Unet", "fpn": "FPN"}
_ARCHS = (*_SMP_ARCHS, "lraspp")  # lraspp: torchvision's LR-ASPP (weedseg.models.lraspp)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a segmenter: smp architecture, smp encoder and decoder width (or
    `lraspp` with torchvision's `mobilenet_v3_large`, the only encoder its LR-ASPP has).

    `decoder_channels` is the U-Net decoder width per stage (5 values) or, for FPN, the pair
    (pyramid channels, segmentation channels); None keeps smp's default.
    """

    arch: str
    encoder: str
    decoder_channels: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "decoder_channels": list(self.decoder_channels) if self.decoder_channels else None
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        channels = data.get("decoder_channels")
        return cls(
            arch=str(data["arch"]),
            encoder=str(data["encoder"]),
            decoder_channels=tuple(int(c) for c in channels) if channels else None,
        )


PRESETS: dict[str, ModelSpec] = {
    # the paper's network (about 63 GFLOP at 512x512)
    "unet-resnet34": ModelSpec("unet", "resnet34"),
    "unet-resnet18": ModelSpec("unet", "resnet18"),
    # stock smp decoder on a mobile encoder: ~24.6 GFLOP, mostly in the full-resolution decoder
    "unet-mobilenetv3": ModelSpec("unet", "tu-mobilenetv3_large_100"),
    # narrow decoder: ~7.7 GFLOP at 512x512
    "unet-mobilenetv3-lite": ModelSpec("unet", "tu-mobilenetv3_large_100", (96, 48, 24, 16, 8)),
    # FPN head at 1/4 resolution, upsampled: ~6.4 GFLOP at 512x512
    "fpn-mobilenetv3": ModelSpec("fpn", "tu-mobilenetv3_large_100", (128, 64)),
    # narrow FPN (32 pyramid and segmentation channels; GroupNorm needs multiples of 32):
    # ~2.9 GFLOP at 512x512
    "fpn-mobilenetv3-lite": ModelSpec("fpn", "tu-mobilenetv3_large_100", (32, 32)),
    # torchvision's LR-ASPP (the bench's peer), head at 1/8 resolution: ~3.9 GFLOP at 512x512
    "lraspp-mobilenetv3": ModelSpec("lraspp", "mobilenet_v3_large"),
    "unet-mobilenetv2-lite": ModelSpec("unet", "mobilenet_v2", (96, 48, 24, 16, 8)),
    "unet-efficientnet-b0": ModelSpec("unet", "efficientnet-b0"),
    # for tests and smoke runs only: 0.39 M parameters (1.6 MB of weights), so a test's
    # checkpoints and resume states stay small on disk
    "unet-tiny": ModelSpec("unet", "tu-mobilenetv3_small_050", (32, 16, 16, 8, 8)),
}


def spec_from_name(name: str | ModelSpec) -> ModelSpec:
    """A preset name, or `arch:encoder` (e.g. `fpn:resnet18`), as a ModelSpec."""
    if isinstance(name, ModelSpec):
        return name
    if name in PRESETS:
        return PRESETS[name]
    arch, sep, encoder = name.partition(":")
    if sep and arch in _ARCHS and encoder:
        return ModelSpec(arch, encoder)
    raise WeedsegError(
        f"unknown model {name!r}: use a preset ({', '.join(PRESETS)}) or arch:encoder "
        f"with arch in {sorted(_ARCHS)}"
    )


def build_model(spec: ModelSpec | str, out_channels: int) -> nn.Module:
    """A freshly initialised model: x [N, 3, H, W] normalised -> [N, out_channels, H, W]."""
    spec = spec_from_name(spec)
    if spec.arch == "lraspp":
        model = _build_lraspp(spec, out_channels)
    elif spec.arch in _SMP_ARCHS:
        model = _build_smp(spec, out_channels)
    else:
        raise WeedsegError(f"unknown architecture {spec.arch!r} (have {sorted(_ARCHS)})")
    model.register_forward_pre_hook(_check_input_hook)
    return model


def _build_smp(spec: ModelSpec, out_channels: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    kwargs: dict[str, Any] = {}
    if spec.decoder_channels and spec.arch == "unet":
        kwargs["decoder_channels"] = tuple(spec.decoder_channels)
    if spec.decoder_channels and spec.arch == "fpn":
        kwargs["decoder_pyramid_channels"], kwargs["decoder_segmentation_channels"] = (
            spec.decoder_channels
        )
    if spec.arch == "fpn":
        kwargs["decoder_dropout"] = 0.0
    try:
        return getattr(smp, _SMP_ARCHS[spec.arch])(
            encoder_name=spec.encoder, encoder_weights=None, classes=out_channels, **kwargs
        )
    except (KeyError, ValueError) as exc:
        raise WeedsegError(f"cannot build {spec}: {exc}") from exc


def _build_lraspp(spec: ModelSpec, out_channels: int) -> nn.Module:
    from weedseg.models.lraspp import ENCODERS, LRASPPSegmenter

    if spec.encoder not in ENCODERS or spec.decoder_channels:
        raise WeedsegError(f"cannot build {spec}: lraspp takes encoder {ENCODERS[0]} only")
    return LRASPPSegmenter(out_channels)


def check_input_size(height: int, width: int) -> None:
    """Refuse input sides that are not multiples of the encoder stride, with a clear message."""
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise WeedsegError(
            f"model input {height}x{width} is not a multiple of {SIZE_MULTIPLE} on both sides "
            f"(pad or crop, e.g. to {-(-height // SIZE_MULTIPLE) * SIZE_MULTIPLE}x"
            f"{-(-width // SIZE_MULTIPLE) * SIZE_MULTIPLE})"
        )


def _check_input_hook(module: nn.Module, args: tuple) -> None:
    import torch

    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return  # shapes may be symbolic while exporting; smp's own check is skipped there too
    x = args[0]
    check_input_size(int(x.shape[-2]), int(x.shape[-1]))


def _class_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The head's class classifiers: the Conv2d direct children of `segmentation_head` (smp:
    its first layer; LR-ASPP: its low- and high-resolution classifiers)."""
    return [
        (name, child)
        for name, child in model.segmentation_head.named_children()
        if isinstance(child, nn.Conv2d)
    ]


def class_head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict key prefixes of the head's class convs: the part that changes between tasks."""
    return tuple(f"segmentation_head.{name}." for name, _ in _class_convs(model))


def head_classes(model: nn.Module) -> int:
    """How many channels the model's head outputs (classes, or 3 for reconstruction)."""
    return int(_class_convs(model)[0][1].out_channels)


def replace_head(model: nn.Module, out_channels: int) -> nn.Module:
    """Swap the head's class convs for fresh ones with `out_channels`; the rest is kept."""
    for name, conv in _class_convs(model):
        new = nn.Conv2d(
            conv.in_channels,
            out_channels,
            kernel_size=conv.kernel_size,
            padding=conv.padding,
            bias=conv.bias is not None,
        )
        new = new.to(device=conv.weight.device, dtype=conv.weight.dtype)
        setattr(model.segmentation_head, name, new)
    return model
