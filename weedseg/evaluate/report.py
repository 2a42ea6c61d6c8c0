"""Evaluation report folder: report.json, report.md, confusion matrix, per-class IoU, worst images.

Figures use matplotlib's object API (`Figure`, Agg canvas) so no global backend state is touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from weedseg.atomic import atomic_path, write_atomic
from weedseg.classes import IGNORE_INDEX, ClassInfo
from weedseg.evaluate.metrics import SegmentationMetrics, json_number, metrics_from_matrix
from weedseg.formatting import format_number
from weedseg.imageio import write_image
from weedseg.infer.render import overlay

IGNORE_COLOR = (128, 128, 128)  # how ignored ground-truth pixels are drawn
ERROR_COLOR = (255, 0, 255)  # wrongly predicted pixels in the error panel
OVERLAY_PANEL_MAX = 800  # longest side of each overlay panel, in pixels


@dataclass
class ImageScore:
    """One image's own confusion matrix and mIoU (used to find the worst images)."""

    stem: str
    matrix: np.ndarray  # [K, K]

    @property
    def miou(self) -> float:
        return metrics_from_matrix(self.matrix).miou


@dataclass
class WorstImage:
    """What a person needs to look at one badly segmented image."""

    stem: str
    miou: float
    image: np.ndarray  # HxWx3 uint8 RGB
    target: np.ndarray  # HxW uint8, IGNORE_INDEX allowed
    pred: np.ndarray  # HxW uint8


def overlay_with_ignore(
    image: np.ndarray, labels: np.ndarray, classes: Sequence[ClassInfo]
) -> np.ndarray:
    """The runtime's class overlay, with ignored ground-truth pixels painted grey."""
    out = overlay(image, labels, classes)
    out[labels == IGNORE_INDEX] = IGNORE_COLOR
    return out


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    """Panel with a white title strip on top."""
    strip = np.full((28, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, panel], axis=0)


def side_by_side(worst: WorstImage, classes: Sequence[ClassInfo]) -> np.ndarray:
    """image | ground truth | prediction | errors (magenta: wrong, grey: ignored), one row."""
    wrong = (worst.pred != worst.target) & (worst.target != IGNORE_INDEX)
    errors = (worst.image.astype(np.float32) * 0.35).astype(np.uint8)
    errors[wrong] = ERROR_COLOR
    errors[worst.target == IGNORE_INDEX] = IGNORE_COLOR
    panels = [
        ("image", worst.image),
        ("ground truth", overlay_with_ignore(worst.image, worst.target, classes)),
        ("prediction", overlay(worst.image, worst.pred, classes)),
        ("errors", errors),
    ]
    height, width = worst.image.shape[:2]
    scale = min(1.0, OVERLAY_PANEL_MAX / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = [
        _titled(cv2.resize(p, size, interpolation=cv2.INTER_AREA) if scale < 1 else p, t)
        for t, p in panels
    ]
    gap = np.full((resized[0].shape[0], 4, 3), 255, dtype=np.uint8)
    row = [part for panel in resized for part in (panel, gap)][:-1]
    return np.concatenate(row, axis=1)


def safe_name(stem: str) -> str:
    """A file name from a sample stem that cannot leave the report folder."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "image"


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: Path) -> None:
    """Row-normalised confusion matrix (share of each true class) annotated with pixel counts."""
    from matplotlib.figure import Figure

    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    k = len(names)
    fig = Figure(figsize=(1.6 + 1.1 * k, 1.2 + 1.0 * k), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    for t in range(k):
        for p in range(k):
            color = "white" if shares[t, p] > 0.5 else "black"
            text = f"{shares[t, p]:.3f}\n{int(matrix[t, p]):,}"
            ax.text(p, t, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title("Confusion matrix (pixels)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)


def plot_class_iou(metrics: SegmentationMetrics, classes: Sequence[ClassInfo], path: Path) -> None:
    """Bar chart of per-class IoU in the class colours, mIoU as a dashed line."""
    from matplotlib.figure import Figure

    names = [c.name for c in classes]
    values = np.nan_to_num(metrics.iou, nan=0.0)
    colors = [tuple(ch / 255 for ch in c.color) for c in classes]
    fig = Figure(figsize=(1.5 + 1.0 * len(names), 3.6), dpi=100)
    ax = fig.add_subplot()
    bars = ax.bar(names, values, color=colors, edgecolor="black")
    for bar, value in zip(bars, metrics.iou, strict=True):
        label = "n/a" if np.isnan(value) else f"{value:.3f}"
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, label, ha="center")
    ax.axhline(metrics.miou, color="grey", linestyle="--")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("IoU")
    ax.set_title(f"Per-class IoU (dashed: mIoU {metrics.miou:.3f})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)


def markdown_report(report: dict, classes: Sequence[ClassInfo]) -> str:
    """report.md: summary, per-class table, confusion matrix, worst images."""
    names = [c.name for c in classes]
    scores = report["metrics"]
    lines = [
        f"# Evaluation: {report['model']}",
        "",
        f"Data `{report['data']}`, split `{report['split']}`, {report['images']} images "
        f"({len(report['skipped'])} skipped), tiling {report['settings']['tile']} px "
        f"with {report['settings']['overlap']} px overlap, scale {report['settings']['scale']}.",
        "",
        "| mIoU | aAcc | mAcc |",
        "|---|---|---|",
        f"| {format_number(scores['mIoU'])} | {format_number(scores['aAcc'])} "
        f"| {format_number(scores['mAcc'])} |",
        "",
        "## Per class",
        "",
        "| class | IoU | accuracy (recall) | precision | pixels | share |",
        "|---|---|---|---|---|---|",
    ]
    total = sum(c["pixels"] for c in scores["per_class"].values()) or 1
    for name in names:
        c = scores["per_class"][name]
        lines.append(
            f"| {name} | {format_number(c['iou'])} | {format_number(c['accuracy'])} "
            f"| {format_number(c['precision'])} "
            f"| {c['pixels']:,} | {100 * c['pixels'] / total:.2f}% |"
        )
    lines += [
        "",
        "## Confusion matrix (rows: ground truth, columns: prediction; pixels)",
        "",
        "| | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for name, row in zip(names, report["confusion_matrix"], strict=True):
        lines.append(f"| **{name}** | " + " | ".join(f"{v:,}" for v in row) + " |")
    lines += ["", "![confusion matrix](confusion_matrix.png)", ""]
    lines += ["![per-class IoU](class_iou.png)"]
    if report.get("consistency"):
        lines += consistency_lines(report["consistency"])
    if report["worst"]:
        lines += ["", "## Worst images (lowest per-image mIoU)", ""]
        for item in report["worst"]:
            lines.append(f"- `{item['stem']}`: mIoU {format_number(item['miou'])}")
            lines.append(f"  ![{item['stem']}]({item['overlay']})")
    if report["skipped"]:
        lines += ["", "## Skipped images", ""]
        lines += [f"- `{s['stem']}`: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def consistency_lines(consistency: dict) -> list[str]:
    """report.md's section on plant consistency and tile seams (weedseg.evaluate.consistency)."""
    counts = consistency["counts"]
    return [
        "",
        "## Plants and seams",
        "",
        "| measure | prediction | ground truth |",
        "|---|---|---|",
        f"| mixed-region rate (vegetation regions >= 2,000 px with two classes > 5% each) "
        f"| {format_number(consistency['mixed_region_rate'])} ({counts['pred_mixed']} of "
        f"{counts['pred_regions']}) "
        f"| {format_number(consistency['mixed_region_rate_ground_truth'])} "
        f"({counts['true_mixed']} of {counts['true_regions']}) |",
        f"| crop plants kept (> 90% of a plant's pixels predicted crop) "
        f"| {format_number(consistency['crop_plants_kept'])} ({counts['crop_kept']} of "
        f"{counts['crop_plants']}) | |",
        f"| class changes across tile-core borders "
        f"| {format_number(consistency['border_disagreement'])} "
        f"| |",
        f"| class changes one pixel beside them | "
        f"{format_number(consistency['beside_border_disagreement'])} | |",
    ]


def write_report(
    out: Path,
    *,
    matrix: np.ndarray,
    classes: Sequence[ClassInfo],
    per_image: Sequence[ImageScore],
    worst: Sequence[WorstImage],
    skipped: Sequence[dict],
    header: dict,
    consistency: dict | None = None,
) -> dict:
    """Write every report file into `out` and return the report.json content.

    `header` carries model, data, split and settings; it is copied into report.json as-is;
    `consistency` is `ConsistencyCounts.to_dict()` of the split.
    """
    out.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in classes]
    metrics = metrics_from_matrix(matrix)
    worst_entries = []
    for rank, item in enumerate(worst, start=1):
        name = f"worst/{rank:02d}_{safe_name(item.stem)}.jpg"
        write_image(out / name, side_by_side(item, classes))
        worst_entries.append({"stem": item.stem, "miou": json_number(item.miou), "overlay": name})
    report = {
        **header,
        "classes": [c.to_dict() for c in classes],
        "images": len(per_image),
        "metrics": metrics.to_dict(names),
        "confusion_matrix": matrix.astype(np.int64).tolist(),
        "consistency": consistency,
        "per_image": [{"stem": s.stem, "miou": json_number(s.miou)} for s in per_image],
        "worst": worst_entries,
        "skipped": list(skipped),
    }
    plot_confusion_matrix(matrix, names, out / "confusion_matrix.png")
    plot_class_iou(metrics, classes, out / "class_iou.png")
    write_atomic(out / "report.md", markdown_report(report, classes))
    write_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    return report
