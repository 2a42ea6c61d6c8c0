"""Torch-free inference: run a model bundle (ONNX Runtime or TensorRT) on images of any size."""

from weedseg.infer.prediction import Prediction
from weedseg.infer.predictor import Predictor

__all__ = ["Prediction", "Predictor"]
