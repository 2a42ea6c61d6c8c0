"""`weedseg export`: a trained model as a self-describing bundle (ONNX, INT8, TensorRT)."""

from __future__ import annotations

import argparse

from weedseg.config_flags import add_config_flags, config_from_args
from weedseg.export.config import ExportConfig

HELP = "export a segmentation run/checkpoint as a bundle (ONNX + manifest, INT8, TensorRT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, ExportConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.errors import WeedsegError
    from weedseg.model_paths import is_bundle

    if is_bundle(args.source) and args.out is None:
        if not args.check:
            raise WeedsegError(f"{args.source} is a bundle: add --check to check it")
        from weedseg.export.check import check_bundle

        return check_bundle(args.source)
    if args.out is None:
        raise WeedsegError("--out BUNDLE is required")
    config = config_from_args(ExportConfig, args)
    print("export:", ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    from weedseg.export.bundle_export import export_bundle

    export_bundle(config)
    return 0
