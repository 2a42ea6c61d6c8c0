"""Adapt a base model to a farm: SMS on its photos, fine-tune on its labels, prove it is better.

    from weedseg.retrain import RetrainConfig, retrain
    result = retrain(RetrainConfig(images="farm/photos", labels="farm/labels",
                                   base="runs/registry/versions/v0001", out="runs/retrain"))
    result.report["new"]["mIoU"], result.bundle       # scores on the farm's validation split

Modules: `config` (the knobs and budgets), `base` (which weights and bundle the base is),
`stages` (skip-if-done bookkeeping), `farm_data` (the training/validation dataset),
`scoring` (base and new on the same split), `report` (report.md/json), `workflow` (the run).
"""

from weedseg.retrain.config import BUDGETS, RetrainConfig
from weedseg.retrain.workflow import RetrainResult, retrain

__all__ = ["BUDGETS", "RetrainConfig", "RetrainResult", "retrain"]
