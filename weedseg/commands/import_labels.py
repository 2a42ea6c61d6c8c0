"""`weedseg import-labels`: a farm's labels export -> a weedseg dataset on a model's classes."""

from __future__ import annotations

import argparse

HELP = "import COCO / CVAT / Roboflow / mask labels onto a base model's classes (clear errors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="COCO .json, CVAT or Roboflow export folder, images/+masks/")
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument(
        "--base", help="model whose classes to use: bundle, registry version, run or checkpoint"
    )
    parser.add_argument("--map", action="append", default=[], help="label rename LABEL=CLASS")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "coco", "cvat-masks", "roboflow-masks", "color-masks", "index-masks"],
    )
    parser.add_argument("--colors", nargs="*", help="colour masks: NAME=R,G,B per class")
    parser.add_argument("--values", help="index masks: VALUE=CLASS,... (default: value = index)")
    parser.add_argument("--split", action="append", help="NAME=A-B, NAME=a,b or NAME=@file")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from weedseg.classes import DEFAULT_CLASSES
    from weedseg.labels import import_labels, parse_rename

    classes = model_classes(args.base) if args.base else DEFAULT_CLASSES
    result = import_labels(
        args.src,
        args.out,
        classes=classes,
        rename=parse_rename(args.map),
        fmt=args.format,
        colors=args.colors,
        values=args.values,
        split_specs=args.split,
        force=args.force,
    )
    print(result.summary())
    print(f"classes: {', '.join(c.name for c in classes)}")
    return 0


def model_classes(path: str):
    """The class list of a bundle or registry version (no torch), or of a checkpoint's sidecar."""
    from weedseg.bundle import read_manifest
    from weedseg.errors import WeedsegError
    from weedseg.model_paths import resolve_model

    model = resolve_model(path)
    if model.bundle is not None:
        return read_manifest(model.bundle).class_infos()
    from weedseg.checkpoint import read_meta

    classes = read_meta(model.checkpoint()).classes
    if not classes:
        raise WeedsegError(f"{path}: no class list (give a fine-tuned model or a bundle)")
    return classes
