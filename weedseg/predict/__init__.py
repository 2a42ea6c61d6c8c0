"""`weedseg predict`: batch segmentation of image folders and orthomosaics with a model bundle."""

from weedseg.predict.config import PredictConfig
from weedseg.predict.pipeline import run_predict

__all__ = ["PredictConfig", "run_predict"]
