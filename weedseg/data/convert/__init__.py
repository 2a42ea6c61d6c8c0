"""Converters from published annotation layouts to the canonical weedseg dataset format."""

from weedseg.data.convert.coco import convert_coco
from weedseg.data.convert.color_masks import convert_color_masks
from weedseg.data.convert.cwfid import convert_cwfid
from weedseg.data.convert.index_masks import convert_index_masks

__all__ = ["convert_coco", "convert_color_masks", "convert_cwfid", "convert_index_masks"]
