"""`weedseg predict`: segment images, folders, globs, path lists or GeoTIFF orthomosaics."""

from __future__ import annotations

import argparse

from weedseg.config_flags import add_config_flags, config_from_args

HELP = "segment images, folders or orthomosaics with a model bundle (torch-free)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.predict.config import PredictConfig

    add_config_flags(parser, PredictConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.predict import PredictConfig, run_predict

    return run_predict(config_from_args(PredictConfig, args))
