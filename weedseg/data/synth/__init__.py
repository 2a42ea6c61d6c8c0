"""Procedural field photos with exact crop/weed/soil masks (numpy + OpenCV), deterministic."""

from weedseg.data.synth.config import SynthConfig
from weedseg.data.synth.dataset import generate_dataset
from weedseg.data.synth.field import render_field

__all__ = ["SynthConfig", "generate_dataset", "render_field"]
