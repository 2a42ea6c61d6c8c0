"""`weedseg export`: checkpoint -> verified bundle folder, built aside and swapped in whole.

Steps: ONNX export -> ONNX Runtime vs PyTorch check -> TensorRT compatibility check -> optional
INT8 model with its measured accuracy delta and CPU speed-up -> optional TensorRT engines ->
manifest with checksums. Any failure leaves no bundle (and an existing one untouched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from weedseg.export.bundle_writer import build_manifest, checkpoint_classes
from weedseg.export.check import compatibility_report, compatibility_summary
from weedseg.export.config import ExportConfig
from weedseg.export.images import (
    ImageSource,
    calibration_tiles,
    evenly_spaced,
    open_source,
    read_fitted,
    read_labeled,
    synthetic_images,
)
from weedseg.export.onnx_export import (
    MAX_CLASSES,
    DeployModel,
    OnnxOptions,
    export_onnx,
    model_input,
)
from weedseg.export.quantize import (
    DEFAULT_CALIBRATION_IMAGES,
    class_map_agreement,
    cpu_speed,
    quantize_int8,
    require_calibration_count,
    tiled_miou,
)
from weedseg.export.tensorrt import PRECISIONS, EngineRequest, build_engine
from weedseg.export.trt_compat import profile_for
from weedseg.export.verify import require_agreement, verify_onnx

from weedseg.atomic import atomic_dir
from weedseg.bundle import Manifest, load_bundle, write_manifest
from weedseg.errors import WeedsegError
from weedseg.infer.tensorrt_engine import import_tensorrt
from weedseg.model_paths import resolve_model, run_name
from weedseg.models import head_classes
from weedseg.tiling import TilingOptions

INT8_MAX_LOSS_POINTS = 1.0  # mIoU points INT8 may lose before the export warns


def onnx_options(config: ExportConfig) -> OnnxOptions:
    options = OnnxOptions(
        height=config.imgsz,
        width=config.imgsz,
        dynamic=config.dynamic,
        min_size=config.min_size,
        max_size=max(config.max_size, config.imgsz) if config.dynamic else config.max_size,
        max_batch=config.max_batch,
        opset=config.opset,
        layout=config.layout,
    )
    options.validate()
    return options


def _model_name(config: ExportConfig, checkpoint_path: Path) -> str:
    return config.name or run_name(checkpoint_path)


def _fitted_images(source: str | None, n: int, size: int) -> tuple[list[np.ndarray], str]:
    """`n` real images (a dataset's test split first) cropped to the export size, or synthetic."""
    if source is None:
        return synthetic_images(n, size, size), "synthetic"
    found = open_source(source, splits=("test", "val", "train"))
    picked = [found.images[i] for i in evenly_spaced(len(found.images), n)]
    images, _ = read_fitted(picked, size, size)
    if not images:
        raise WeedsegError(f"{source}: no readable images to verify the export with")
    return images, f"{source} ({found.split or 'all'})"


def _calibration_inputs(
    config: ExportConfig, manifest: Manifest
) -> tuple[np.ndarray, list[ImageSource], int]:
    """Runtime-sized tiles (at the model's input scale) from every calibration source (refuses
    fewer than 50 images). On CWFID, tiles from the field itself calibrated the INT8 model to
    the FP32 mIoU; centre crops of mostly another field's images lost 1.2 points."""
    sources = [open_source(path) for path in config.calib]
    label = " + ".join(config.calib)
    require_calibration_count(sum(len(source.images) for source in sources), label)
    tiles, used = calibration_tiles(
        sources, config.calib_n, config.imgsz, manifest.tile.overlap, manifest.input_scale
    )
    require_calibration_count(used, label)
    inputs = model_input(np.stack(tiles), manifest.input.layout, manifest.mean, manifest.std)
    return inputs, sources, used


def _int8_entry(
    config: ExportConfig,
    root: Path,
    manifest: Manifest,
    verify_inputs: np.ndarray,
    batch_size: int,
) -> dict[str, Any]:
    """Quantise, then measure agreement, CPU speed-up and (labeled calibration data) mIoU delta."""
    calibration, sources, used = _calibration_inputs(config, manifest)
    target = config.resolved_int8_target
    print(
        f"int8: calibrating on {len(calibration)} tiles of {used} images from "
        f"{' + '.join(config.calib)} ({target})"
    )
    quantize_int8(root / "model.onnx", root / "model.int8.onnx", calibration, target)
    entry: dict[str, Any] = {
        "file": "model.int8.onnx",
        "format": "QDQ",
        "target": target,
        "weights": "int8 per-channel symmetric",
        "activations": "int8 symmetric" if target == "tensorrt" else "uint8 asymmetric",
        "calibration": {
            "sources": config.calib,
            "images": used,
            "tiles": len(calibration),
            "method": "MinMax",
        },
        "agreement": class_map_agreement(
            root / "model.onnx", root / "model.int8.onnx", verify_inputs, batch_size
        ),
        "agreement_images": len(verify_inputs),
    }
    entry |= cpu_speed(root / "model.onnx", root / "model.int8.onnx", verify_inputs[:1])
    labeled = [str(source.root) for source in sources if source.labeled]
    evaluation = config.int8_eval or (labeled[0] if labeled else None)
    if evaluation:
        entry |= _miou_delta(evaluation, config.int8_eval_n, root, manifest)
    return entry


def _miou_delta(dataset: str, n: int, root: Path, manifest: Manifest) -> dict[str, Any]:
    """mIoU of FP32 and INT8 on a dataset's test (else val) split, tiled like the runtime."""
    evaluation = open_source(dataset, splits=("test", "val"))
    if not evaluation.labeled:
        raise WeedsegError(f"{dataset}: --int8-eval needs a labeled weedseg dataset")
    pairs = read_labeled(evaluation, n)
    spec = manifest.input
    kwargs = {
        "num_classes": len(manifest.classes),
        "layout": spec.layout,
        "mean": manifest.mean,
        "std": manifest.std,
        "tiling": TilingOptions(
            tile=manifest.tile.size,
            overlap=manifest.tile.overlap,
            batch_size=1,
            input_scale=manifest.input_scale,
        ),
        "static_size": None if spec.dynamic else (spec.height, spec.width),
    }
    fp32 = tiled_miou(root / "model.onnx", pairs, **kwargs)
    int8 = tiled_miou(root / "model.int8.onnx", pairs, **kwargs)
    return {
        "miou_fp32": round(fp32, 5),
        "miou_int8": round(int8, 5),
        "miou_delta_points": round((int8 - fp32) * 100, 3),
        "miou_images": len(pairs),
        "miou_dataset": f"{dataset} ({evaluation.split or 'all'})",
    }


def check_config(config: ExportConfig) -> None:
    """Refuse option combinations that cannot work, before any slow step."""
    unknown = sorted(set(config.tensorrt) - set(PRECISIONS))
    if unknown:
        raise WeedsegError(f"--tensorrt takes {', '.join(PRECISIONS)}; got {', '.join(unknown)}")
    if "int8" in config.tensorrt and not config.int8:
        raise WeedsegError("--tensorrt int8 builds from the INT8 model: add --int8 --calib DIR")
    if "int8" in config.tensorrt and config.resolved_int8_target != "tensorrt":
        raise WeedsegError("--tensorrt int8 needs --int8-target tensorrt (zero-point-free QDQ)")
    if config.int8 and not config.calib:
        raise WeedsegError("--int8 needs --calib DIR_OR_DATASET (real images the model will see)")
    if config.int8 and config.calib_n < 1:
        raise WeedsegError(f"--calib-n must be positive (default {DEFAULT_CALIBRATION_IMAGES})")


def _engine_request(
    config: ExportConfig, root: Path, manifest: Manifest, precision: str
) -> EngineRequest:
    onnx_name = "model.int8.onnx" if precision == "int8" else "model.onnx"
    return EngineRequest(
        onnx_path=root / onnx_name,
        precision=precision,
        profile=profile_for(manifest.input),
        workspace_mb=config.workspace_mb,
        timing_cache=Path(config.timing_cache).expanduser(),
    )


def int8_summary(entry: dict[str, Any]) -> str:
    """The INT8 figures in one line, and a warning line for each reason not to ship it."""
    line = (
        f"int8: {entry['agreement']:.2%} of pixels agree with FP32; CPU "
        f"{entry['cpu_ms_fp32']:.1f} -> {entry['cpu_ms_int8']:.1f} ms "
        f"({entry['cpu_speedup']:.2f}x)"
    )
    if "miou_delta_points" in entry:
        line += (
            f"; mIoU {entry['miou_fp32']:.4f} -> {entry['miou_int8']:.4f} "
            f"({entry['miou_delta_points']:+.2f} points on {entry['miou_images']} images)"
        )
    if entry.get("miou_delta_points", 0.0) < -INT8_MAX_LOSS_POINTS:
        line += (
            f"\nint8 warning: loses more than {INT8_MAX_LOSS_POINTS:g} mIoU point; serve the FP32 "
            "model.onnx, or calibrate on more images of the field it will see"
        )
    if entry["cpu_speedup"] < 1.0:
        line += "\nint8 warning: not faster than FP32 on this CPU; measure on the target device"
    return line


def export_bundle(config: ExportConfig) -> Manifest:
    """Export a checkpoint as a verified bundle at `config.out`; returns its manifest."""
    from weedseg.checkpoint import load_checkpoint

    check_config(config)
    if config.tensorrt:
        import_tensorrt()  # fail before any work when TensorRT is missing
    options = onnx_options(config)
    loaded = load_checkpoint(resolve_model(config.source).checkpoint(config.which))
    if loaded.task != "segmentation":
        raise WeedsegError(
            f"{loaded.path}: a {loaded.task} checkpoint has no class head; fine-tune it first"
        )
    model = loaded.model.eval()
    num_classes = head_classes(model)
    if num_classes > MAX_CLASSES:
        raise WeedsegError(f"{num_classes} classes do not fit the uint8 class map")
    classes = checkpoint_classes(loaded.meta, num_classes, loaded.path)
    if loaded.meta.mean is None or loaded.meta.std is None:
        raise WeedsegError(f"{loaded.path}: checkpoint metadata has no mean/std")
    mean, std = tuple(loaded.meta.mean), tuple(loaded.meta.std)
    deploy = DeployModel(model, mean, std, options.layout)
    images, image_source = _fitted_images(
        config.verify or (config.calib[0] if config.calib else None), config.verify_n, config.imgsz
    )
    verify_inputs = model_input(np.stack(images), options.layout, mean, std)
    batch_size = 2 if options.dynamic else 1

    with atomic_dir(config.out, force=config.force) as root:
        export_onnx(deploy, root / "model.onnx", options)
        verification = verify_onnx(
            deploy, root / "model.onnx", verify_inputs, batch_size=batch_size, source=image_source
        )
        print(f"verify: {verification.summary()}")
        require_agreement(verification)
        meta = loaded.meta
        manifest = build_manifest(
            model_name=_model_name(config, loaded.path),
            arch=loaded.spec.to_dict() | {"out_channels": num_classes},
            classes=classes,
            meta=meta,
            options=options,
            provenance={
                "checkpoint": str(loaded.path),
                "task": loaded.task,
                "step": meta.step,
                "seed": meta.seed,
                "data": meta.data,
                "init": meta.init,
                "export_config": config.to_dict(),
            },
            verification=verification.to_dict(),
            tile_merge=config.tile_merge,
            plant_vote=config.plant_vote,
        )
        files = ["model.onnx"]
        if config.int8:
            manifest.int8 = _int8_entry(config, root, manifest, verify_inputs, batch_size)
            files.append("model.int8.onnx")
            print(int8_summary(manifest.int8))
        compatibility = compatibility_report(root, manifest, files)
        manifest.tensorrt_compatibility = compatibility
        print(compatibility_summary(compatibility))
        if config.check and not compatibility["passed"]:
            raise WeedsegError("TensorRT compatibility check failed; no bundle was written")
        for precision in config.tensorrt:
            entry = build_engine(_engine_request(config, root, manifest, precision), root)
            manifest.tensorrt.append(entry)
            files.append(entry["file"])
            print(f"tensorrt: built {entry['file']}")
        manifest = write_manifest(root, manifest, files)
        load_bundle(root)  # the bundle reads back and verifies before it replaces anything
    print(f"bundle: {config.out} ({', '.join(files)}, weedseg.json)")
    return manifest
