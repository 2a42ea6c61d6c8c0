"""The comparison report: per-class IoU of base and new side by side, and overlays to look at."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from weedseg.atomic import write_atomic
from weedseg.classes import IGNORE_INDEX, ClassInfo
from weedseg.formatting import format_number
from weedseg.infer.render import overlay

PANEL = 320  # longest side of each overlay panel


def pick_overlay_stems(base: dict[str, float], new: dict[str, float], count: int) -> list[str]:
    """Half the images the new model improved most, half where it is still worst."""
    common = [s for s in new if s in base and not (np.isnan(new[s]) or np.isnan(base[s]))]
    gains = sorted(common, key=lambda s: new[s] - base[s], reverse=True)
    worst = sorted(common, key=lambda s: new[s])
    chosen: list[str] = []
    for stem in [x for pair in zip(gains, worst, strict=True) for x in pair]:
        if stem not in chosen and len(chosen) < count:
            chosen.append(stem)
    return chosen


def comparison_panel(
    image: np.ndarray,
    target: np.ndarray,
    base: np.ndarray,
    new: np.ndarray,
    classes: Sequence[ClassInfo],
    scores: tuple[float, float],
) -> np.ndarray:
    """image | ground truth | base | new, one row with titles."""
    truth = overlay(image, np.where(target == IGNORE_INDEX, 0, target).astype(np.uint8), classes)
    panels = [
        ("image", image),
        ("ground truth", truth),
        (f"base mIoU {scores[0]:.3f}", overlay(image, base, classes)),
        (f"new mIoU {scores[1]:.3f}", overlay(image, new, classes)),
    ]
    height, width = image.shape[:2]
    scale = PANEL / max(height, width)  # small images grow so the panels stay readable
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    row = []
    for title, panel in panels:
        resized = cv2.resize(panel, size, interpolation=cv2.INTER_NEAREST)
        strip = np.full((24, size[0], 3), 255, np.uint8)
        cv2.putText(
            strip, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
        row.append(np.concatenate([strip, resized]))
    return np.concatenate(row, axis=1)


def _change(new: float | None, base: float | None) -> str:
    if new is None or base is None:
        return "n/a"
    return f"{(new - base) * 100:+.2f} pts"


def _row(name: str, base: float | None, new: float | None) -> str:
    return f"| {name} | {format_number(base)} | {format_number(new)} | {_change(new, base)} |"


def markdown(report: dict) -> str:
    """report.md: the verdict, the per-class table, the data, the budget and the overlays."""
    base, new = report["base"]["scores"], report["new"]["scores"]
    verdict = "beats" if report["new_beats_base"] else "does NOT beat"
    data, budget, comparison = report["data"], report["budget"], report["comparison"]
    mixed = f" + {data['base_train']} base images" if data["base_train"] else ""
    seconds = ", ".join(f"{k} {v}" for k, v in report["seconds"].items())
    photos, folds = comparison["images"], comparison["folds"]
    lines = [
        "# Retraining report",
        "",
        f"The new model {verdict} the base model in {comparison['method']} cross-validation on "
        f"the farm's {photos} labelled photos: mIoU {format_number(new['mIoU'])} vs "
        f"{format_number(base['mIoU'])} ({_change(new['mIoU'], base['mIoU'])}).",
        "",
        f"Each of {folds} fold models was fine-tuned as the shipped model, on the photos of the "
        "other folds, and scored with the base on its held-out photos; the scores below pool "
        f"the confusion matrices of all {photos} held-out photos. The shipped model is then "
        f"fine-tuned on all {photos} photos, so none is left to score it on: the comparison "
        "estimates how it does on the farm's new photos.",
        "",
        "| class | base IoU | new IoU | change |",
        "|---|---|---|---|",
        *(_row(n, b["iou"], new["per_class"][n]["iou"]) for n, b in base["per_class"].items()),
        _row("**mIoU**", base["mIoU"], new["mIoU"]),
        _row("aAcc", base["aAcc"], new["aAcc"]),
        "",
        f"- base: `{report['base']['model']['path']}` "
        f"(scored from its {report['base']['scored_from']})",
        f"- new: {report['new']['scored_from']}; shipped: `{report['new']['checkpoint']}`, "
        f"bundle `{report['new']['bundle']}`",
        f"- training data of the shipped model: {data['farm_labels']} farm images{mixed}",
        f"- budget: {budget['pretrain_steps']} SMS steps on {budget['images']} farm photos, "
        f"{budget['finetunes']} fine-tunes ({folds} folds + the shipped model) of "
        f"{budget['finetune_steps']} steps",
        f"- time per stage (s): {seconds}",
        "",
    ]
    if report["overlays"]:
        lines += ["## Overlays (image | ground truth | base | new, each photo's fold model)", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in report["overlays"]]
        lines.append("")
    return "\n".join(lines)


def write_report(folder: Path, report: dict) -> None:
    """report.json and report.md, each atomically."""
    write_atomic(folder / "report.json", json.dumps(report, indent=2))
    write_atomic(folder / "report.md", markdown(report))
