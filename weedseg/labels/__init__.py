"""Import a farm's own labels (COCO polygons, colour or index masks) onto a model's class list.

    from weedseg.labels import import_labels
    result = import_labels("cvat_export/", "data/farm", classes=base_classes,
                           rename={"Carrot": "crop"})

Reuses the `weedseg.data.convert` converters; this package adds format detection, the label-map
files exporters write (CVAT `labelmap.txt`, Roboflow `_classes.csv`) and the check that every
label name is one of the base model's classes.
"""

from weedseg.labels.classmap import ClassResolver, parse_rename
from weedseg.labels.importer import detect_format, import_labels

__all__ = ["ClassResolver", "detect_format", "import_labels", "parse_rename"]
