"""The project's default network (torch-free, so configs and the CLI can name it).

Picked by the default-model table in benchmarks/RESULTS.md: the fastest candidate within 1 CWFID
mIoU point of the most accurate one, at most about 8 GFLOP at 512x512.
"""

DEFAULT_ARCH = "fpn-mobilenetv3"
