"""Adapt a base model to a farm: SMS on its photos, fine-tune on its labels, prove it is better.

    from weedseg.retrain.config import RetrainConfig
    from weedseg.retrain.workflow import retrain
    result = retrain(RetrainConfig(images="farm/photos", labels="farm/labels",
                                   base="runs/registry/versions/v0001", out="runs/retrain"))
    result.report["new"]["scores"]["mIoU"], result.bundle   # cross-validated on the farm's labels

Modules: `config` (the knobs and budgets), `base_model` (which weights and bundle the base is),
`stages` (skip-if-done bookkeeping), `farm_data` (the training set and cross-validation folds),
`scoring` (base and new on the same photos, pooled over folds), `report` (report.md/json),
`workflow` (the run).
"""
