"""What a benchmark measures: our model (bundle, run, checkpoint or preset) or a peer's segmenter.

Every subject ends up as the same two things: a torch network (x [N, 3, H, W] normalised ->
logits [N, K, H, W], for FLOPs and the torch backends) wrapped in the bundle's `DeployModel`
(uint8 NHWC in, class map and probabilities out), and the ONNX graphs of that same computation
(a bundle's own files, or exported here), so every backend runs the same work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from weedseg.classes import DEFAULT_CLASSES
from weedseg.errors import WeedsegError
from weedseg.model_paths import resolve_model, run_name

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESET_PREFIX = "preset:"
PEERS = ("lraspp", "yolo11n-seg")
RANDOM_WEIGHTS = "random init (speed does not depend on the weights)"


@dataclass
class Subject:
    """One model to measure, with the graphs its ONNX Runtime backends will load."""

    name: str
    role: str  # "ours" or "peer"
    source: str
    network: nn.Module  # x: [N, 3, H, W] normalised -> logits [N, K, H, W]
    weights: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout: str = "NHWC"
    onnx: Path | None = None  # FP32 graph; None until exported
    onnx_int8: Path | None = None
    int8_origin: str = ""
    int8_missing: str = "no INT8 graph (export the bundle with --int8)"
    static_shape: tuple[int, int, int] | None = None  # (batch, height, width) of a static graph
    head: str = "classes"  # classes: class map + probs; raw: the network's own outputs

    def deploy(self) -> nn.Module:
        """The network as a bundle computes it: normalise -> network -> (labels, probs)."""
        from weedseg.export.onnx_export import DeployModel

        if self.head == "raw":
            return RawDeploy(self.network, self.mean, self.std).eval()
        return DeployModel(self.network, self.mean, self.std, self.layout).eval()

    def params_m(self) -> float:
        return sum(p.numel() for p in self.network.parameters()) / 1e6

    def shape_note(self, batch: int, size: int) -> str | None:
        """Why a static graph cannot run this batch/size, or None when it can."""
        if self.static_shape is None or self.static_shape == (batch, size, size):
            return None
        b, h, w = self.static_shape
        return f"static bundle graph takes {b}x{h}x{w} only; re-export with --dynamic"


class RawDeploy(nn.Module):
    """uint8 NHWC -> normalised NCHW -> the network's outputs as they are (no class map)."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        import torch

        self.model = model
        self.register_buffer("mean255", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std255", 1.0 / (torch.tensor(std).view(1, 3, 1, 1) * 255.0))

    def forward(self, images):
        # images: [B, H, W, 3] uint8 -> x: [B, 3, H, W]
        x = (images.float().permute(0, 3, 1, 2) - self.mean255) * self.inv_std255
        return self.model(x)


class _YoloOutputs(nn.Module):
    """An Ultralytics segmentation model's inference outputs before NMS: predictions
    [B, 4 + K + 32, anchors] (boxes, class scores, mask coefficients) and mask prototypes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]


def _yolo_subject(num_classes: int) -> Subject:
    try:
        from ultralytics.nn.tasks import SegmentationModel
    except ImportError as exc:
        raise WeedsegError(
            "peer yolo11n-seg needs the ultralytics package (not a weedseg dependency): "
            "pip install ultralytics, or use --peer lraspp"
        ) from exc
    model = SegmentationModel("yolo11n-seg.yaml", nc=num_classes, verbose=False).eval()
    for module in model.modules():
        if hasattr(module, "dynamic"):
            module.dynamic = True  # anchors follow the input size (as Ultralytics' ONNX export)
    return Subject(
        name="yolo11n-seg (ultralytics)",
        role="peer",
        source="ultralytics SegmentationModel('yolo11n-seg.yaml'); outputs before NMS",
        network=_YoloOutputs(model),
        weights=RANDOM_WEIGHTS,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        head="raw",
    )


def peer_subject(name: str, num_classes: int = len(DEFAULT_CLASSES)) -> Subject:
    """A peer's compact segmenter from its own package, without downloaded weights."""
    if name == "yolo11n-seg":
        return _yolo_subject(num_classes)
    if name != "lraspp":
        raise WeedsegError(f"unknown peer {name!r} (have {', '.join(PEERS)})")
    from weedseg.models import build_model

    return Subject(
        name="lraspp-mobilenetv3-large (torchvision)",
        role="peer",
        source="torchvision.models.segmentation.lraspp_mobilenet_v3_large (preset "
        "lraspp-mobilenetv3)",
        network=build_model("lraspp-mobilenetv3", num_classes).eval(),
        weights=RANDOM_WEIGHTS,
    )


def load_subject(model: str) -> Subject:
    """`preset:NAME` or a model path (`weedseg.model_paths`: a bundle, or what has one, is
    benchmarked as its bundle) as a Subject."""
    if model.startswith(PRESET_PREFIX):
        return _preset_subject(model.removeprefix(PRESET_PREFIX))
    path = Path(model)
    resolved = resolve_model(path)
    if resolved.bundle is not None:
        return _bundle_subject(resolved.bundle)
    if path.exists() or path.with_suffix(".json").is_file():
        return _checkpoint_subject(resolved.checkpoint())
    raise WeedsegError(
        f"{model}: not a bundle, run folder or checkpoint; for an untrained model use "
        f"preset:NAME (e.g. preset:unet-mobilenetv3-lite)"
    )


def _preset_subject(preset: str) -> Subject:
    from weedseg.models import build_model, spec_from_name

    spec = spec_from_name(preset)
    network = build_model(spec, out_channels=len(DEFAULT_CLASSES)).eval()
    return Subject(
        name=preset,
        role="ours",
        source=PRESET_PREFIX + preset,
        network=network,
        weights=RANDOM_WEIGHTS,
    )


def _checkpoint_subject(path: Path) -> Subject:
    from weedseg.checkpoint import load_checkpoint

    loaded = load_checkpoint(path)
    if loaded.task != "segmentation":
        raise WeedsegError(f"{loaded.path}: a {loaded.task} checkpoint has no class head")
    meta = loaded.meta
    return Subject(
        name=run_name(loaded.path),
        role="ours",
        source=str(loaded.path),
        network=loaded.model.eval(),
        weights="trained",
        mean=tuple(meta.mean or IMAGENET_MEAN),
        std=tuple(meta.std or IMAGENET_STD),
    )


def _bundle_subject(root: Path) -> Subject:
    """A bundle's own ONNX graphs; the torch side is rebuilt from its architecture entry."""
    from weedseg.bundle import load_bundle
    from weedseg.models import ModelSpec, build_model

    bundle = load_bundle(root)
    manifest = bundle.manifest
    if "arch" not in manifest.arch or "encoder" not in manifest.arch:
        raise WeedsegError(f"{root}: manifest has no architecture entry to rebuild the network")
    spec = ModelSpec.from_dict(manifest.arch)
    network = build_model(spec, out_channels=len(manifest.classes)).eval()
    spec_in = manifest.input
    static = None if spec_in.dynamic else (spec_in.max_batch, spec_in.height, spec_in.width)
    return Subject(
        name=manifest.model_name,
        role="ours",
        source=str(root),
        network=network,
        weights="bundle ONNX (trained); torch rows: same architecture, " + RANDOM_WEIGHTS,
        mean=tuple(manifest.mean),
        std=tuple(manifest.std),
        layout=spec_in.layout.upper(),
        onnx=bundle.onnx_path,
        onnx_int8=bundle.int8_path,
        int8_origin="bundle" if bundle.int8_path else "",
        static_shape=static,
    )
