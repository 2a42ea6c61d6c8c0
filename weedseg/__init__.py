"""weedseg: crop/weed segmentation with Selective Masking self-supervision."""

__version__ = "0.1.0"
