"""`weedseg demo`: the whole pipeline on an embedded default (synthetic fields), offline.

The demo is a list of named stages run in order; each reads the config and the outputs of the
stages before it and adds its own. Later capabilities (pretrain, finetune, evaluate, export,
predict, serve) append their stage to `STAGES`.
"""

from __future__ import annotations

import argparse
import html
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from weedseg.config_flags import add_config_flags, config_from_args, flag
from weedseg.defaults import DEFAULT_ARCH
from weedseg.errors import WeedsegError
from weedseg.formatting import format_number

if TYPE_CHECKING:
    from weedseg.bundle import Manifest

HELP = "Run the pipeline end to end on a small synthetic field dataset and say where outputs are."


_SHOWN = "default %(default)s"  # argparse fills in the flag's default


@dataclass
class DemoConfig:
    """Everything the demo needs; saved as demo.yaml in the output folder."""

    out: Path = field(default=Path("runs/demo"), metadata=flag("--out", type=Path, help=_SHOWN))
    # synthetic images (70% train: at least 50 calibrate the INT8 model)
    n: int = field(default=96, metadata=flag("--n", help=_SHOWN))
    size: int = field(default=256, metadata=flag("--size", help=_SHOWN))  # image side in pixels
    seed: int = field(default=0, metadata=flag("--seed", help=_SHOWN))
    arch: str = field(default=DEFAULT_ARCH, metadata=flag("--arch", help=_SHOWN))
    # training crop side: the default model works on half-size photos, 128 px of a 256 px field
    crop: int = field(default=128, metadata=flag("--crop", help=_SHOWN))
    batch: int = field(default=8, metadata=flag("--batch", help=_SHOWN))
    pretrain_steps: int = field(default=240, metadata=flag("--pretrain-steps", help=_SHOWN))
    finetune_steps: int = field(default=240, metadata=flag("--finetune-steps", help=_SHOWN))
    imgsz: int = field(default=256, metadata=flag("--imgsz", help=_SHOWN))  # export size
    int8: bool = field(default=True, metadata=flag("--int8", action=argparse.BooleanOptionalAction))


@dataclass
class DemoState:
    """What the stages produced so far: named output paths and numbers for the report."""

    outputs: dict[str, Path] = field(default_factory=dict)
    numbers: dict[str, object] = field(default_factory=dict)


Stage = tuple[str, Callable[[DemoConfig, DemoState], None]]


def stage_synth(config: DemoConfig, state: DemoState) -> None:
    """Generate the synthetic labeled dataset."""
    from weedseg.data.synth import SynthConfig, generate_dataset

    synth = SynthConfig(n=config.n, size=config.size, seed=config.seed)
    generate_dataset(config.out / "data", synth, force=True)
    state.outputs["dataset"] = config.out / "data"


def stage_check(config: DemoConfig, state: DemoState) -> None:
    """Check the dataset; a problem stops the demo."""
    from weedseg.data.check import check_dataset
    from weedseg.errors import WeedsegError

    report = check_dataset(state.outputs["dataset"])
    print(report.frequency_table())
    if not report.ok:
        raise WeedsegError("dataset check failed:\n  " + "\n  ".join(report.problems))


def stage_preview(config: DemoConfig, state: DemoState) -> None:
    """Render a preview PNG of the dataset for a person to look at."""
    from weedseg.data.preview import write_preview

    state.outputs["preview"] = write_preview(state.outputs["dataset"], config.out / "preview.png")


def _split_photos(dataset: Path, split: str, folder: Path) -> Path:
    """The photos of one split copied into a fresh plain folder, as unlabeled photos arrive."""
    from weedseg.data.format import DatasetInfo

    info = DatasetInfo.load(dataset)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for stem in info.split(split):
        shutil.copyfile(info.image_path(stem), folder / info.images[stem])
    return folder


def stage_pretrain(config: DemoConfig, state: DemoState) -> None:
    """Selective-masking pretraining on the train images (no labels used)."""
    from weedseg.pretrain.config import PretrainConfig
    from weedseg.pretrain.trainer import pretrain

    # the train images only, as an unlabeled folder
    pool = _split_photos(state.outputs["dataset"], "train", config.out / "pool")
    run = config.out / "pretrain"
    shutil.rmtree(run, ignore_errors=True)
    result = pretrain(
        PretrainConfig(
            images=str(pool),
            out=str(run),
            arch=config.arch,
            masking="selective",
            schedule="paper",
            partitions=4,
            size=config.crop,
            batch=config.batch,
            steps=config.pretrain_steps,
            seed=config.seed,
            image_every=max(1, config.pretrain_steps // 2),
            workers=1,
        )
    )
    state.outputs["pretrain"] = run
    state.numbers |= pretrain_numbers(result.images_per_second, run)


def pretrain_numbers(images_per_second: float, run: Path) -> dict[str, object]:
    """The pretraining run's speed and how it computed (its config.yaml)."""
    return {"pretrain images/s": images_per_second, "pretrain trained in": _trained_in(run)}


def stage_finetune(config: DemoConfig, state: DemoState) -> None:
    """Fine-tune the pretrained network for soil/crop/weed on the train labels."""
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    run = config.out / "finetune"
    shutil.rmtree(run, ignore_errors=True)
    result = run_finetune(
        FinetuneConfig(
            data=str(state.outputs["dataset"]),
            out=str(run),
            init=str(state.outputs["pretrain"]),
            arch=config.arch,
            steps=config.finetune_steps,
            batch=config.batch,
            size=config.crop,
            val_every=max(1, config.finetune_steps // 3),
            seed=config.seed,
            workers=1,
        )
    )
    state.outputs["finetune"] = run
    state.numbers |= finetune_numbers(result.best_miou, run)


def finetune_numbers(best_miou: float | None, run: Path) -> dict[str, object]:
    """The fine-tuning run's best validation mIoU and how it computed (its config.yaml)."""
    return {"val mIoU (best)": best_miou, "finetune trained in": _trained_in(run)}


def _trained_in(run: Path) -> str:
    """The precision and memory format `auto` chose for a run (its config.yaml)."""
    import yaml

    chosen = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["train_format"]
    return f"{chosen['precision']}, {chosen['memory_format']}"


def stage_evaluate(config: DemoConfig, state: DemoState) -> None:
    """Evaluate on the test split at full resolution; write the report."""
    from weedseg.evaluate.evaluator import EvaluateConfig, run_evaluate

    out = config.out / "evaluate"
    report = run_evaluate(
        EvaluateConfig(
            model=str(state.outputs["finetune"]),
            data=str(state.outputs["dataset"]),
            split="test",
            out=str(out),
            force=True,
            progress=False,
        )
    )
    state.outputs["evaluation"] = out / "report.md"
    state.numbers |= evaluate_numbers(report)


def evaluate_numbers(report: dict) -> dict[str, object]:
    """The test split's mIoU and each class's IoU, from `run_evaluate`'s report."""
    metrics = report["metrics"]
    per_class = {f"test IoU {name}": s["iou"] for name, s in metrics["per_class"].items()}
    return {"test mIoU": metrics["mIoU"]} | per_class


def stage_export(config: DemoConfig, state: DemoState) -> None:
    """Export an ONNX bundle (FP32, and INT8 calibrated on the train images), verified."""
    from weedseg.export.bundle_export import export_bundle
    from weedseg.export.config import ExportConfig

    bundle = config.out / "bundle"
    manifest = export_bundle(
        ExportConfig(
            source=str(state.outputs["finetune"]),
            out=str(bundle),
            imgsz=config.imgsz,
            dynamic=True,
            int8=config.int8,
            calib=[str(state.outputs["dataset"])] if config.int8 else [],
            force=True,
        )
    )
    state.outputs["bundle"] = bundle
    state.numbers |= export_numbers(manifest)


def export_numbers(manifest: Manifest) -> dict[str, object]:
    """The bundle's ONNX-vs-PyTorch agreement and, with INT8, its accuracy and speed."""
    numbers: dict[str, object] = {
        "ONNX agreement with PyTorch": manifest.verification.get("agreement")
    }
    for key in ("agreement", "miou_delta_points", "cpu_speedup"):
        if manifest.int8 and key in manifest.int8:
            numbers[f"INT8 {key}"] = manifest.int8[key]
    return numbers


def stage_predict(config: DemoConfig, state: DemoState) -> None:
    """Batch-predict the test images with the bundle (torch-free runtime)."""
    from weedseg.predict.config import PredictConfig
    from weedseg.predict.run import run_predict

    folder = _split_photos(state.outputs["dataset"], "test", config.out / "field_photos")
    out = config.out / "predict"
    shutil.rmtree(out, ignore_errors=True)
    code = run_predict(
        PredictConfig(source=str(folder), model=str(state.outputs["bundle"]), out=str(out))
    )
    if code != 0:
        raise WeedsegError(f"weedseg predict failed (exit {code}); see {out / 'errors.csv'}")
    state.outputs["predictions"] = out / "summary.csv"


def stage_serve(config: DemoConfig, state: DemoState) -> None:
    """Start the HTTP service on 127.0.0.1, segment one image over HTTP, stop it."""
    from weedseg.client import WeedsegClient

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weedseg",
            "serve",
            "--model",
            str(state.outputs["bundle"]),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    )
    try:
        with WeedsegClient(f"http://127.0.0.1:{port}", timeout_s=30) as client:
            deadline = time.monotonic() + 120
            while not _ready(client):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise WeedsegError("the demo service did not become ready")
                time.sleep(0.5)
            photo = next(iter(sorted((config.out / "field_photos").iterdir())))
            answer = client.segment(photo.read_bytes(), format="json", mask="none")
            overlay = client.segment(photo.read_bytes(), format="overlay")
    finally:
        server.terminate()
        server.wait(timeout=30)
    (config.out / "http_overlay.jpg").write_bytes(overlay)
    state.outputs["http overlay"] = config.out / "http_overlay.jpg"
    state.numbers |= http_numbers(answer)


def http_numbers(answer: dict) -> dict[str, object]:
    """The weeds and class fractions in the service's JSON answer for one photo."""
    return {
        "HTTP weed instances": len(answer["weeds"]),
        "HTTP class fractions": answer["fractions"],
    }


def stage_report(config: DemoConfig, state: DemoState) -> None:
    """Write index.html: the pictures and numbers of every stage on one page."""
    from weedseg.atomic import write_atomic

    out = config.out
    pictures = [("dataset preview", out / "preview.png")]
    pictures += [
        ("reconstruction strip", p) for p in sorted((out / "pretrain" / "images").glob("*.png"))
    ]
    pictures += [
        (p.stem.replace("_", " "), out / "evaluate" / f"{p.stem}.png")
        for p in (Path("confusion_matrix"), Path("class_iou"))
    ]
    pictures += [
        ("worst test image", p) for p in sorted((out / "evaluate" / "worst").glob("*.jpg"))
    ]
    pictures += [
        ("predicted overlay", p) for p in sorted((out / "predict").rglob("*overlay*.jpg"))[:4]
    ]
    pictures += [("overlay over HTTP", out / "http_overlay.jpg")]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_number(v))}</td></tr>"
        for k, v in state.numbers.items()
    )
    figures = "".join(
        f'<figure><img src="{html.escape(p.relative_to(out).as_posix())}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, p in pictures
        if p.is_file()
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>weedseg demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}"
        "figure{display:inline-block;margin:8px}img{max-width:640px}</style>"
        f"<h1>weedseg demo</h1><p>Synthetic field data, model {html.escape(config.arch)}. "
        "Pipeline: synthetic data, selective-masking pretraining, fine-tuning, evaluation, "
        "ONNX export (FP32 + INT8), batch prediction, HTTP service.</p>"
        f"<h2>Numbers</h2><table>{rows}</table><h2>Pictures</h2>{figures}"
    )
    write_atomic(out / "index.html", page)
    state.outputs["report"] = out / "index.html"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(client) -> bool:
    try:
        return client.ready()
    except OSError:
        return False


STAGES: list[Stage] = [
    ("synth", stage_synth),
    ("check", stage_check),
    ("preview", stage_preview),
    ("pretrain", stage_pretrain),
    ("finetune", stage_finetune),
    ("evaluate", stage_evaluate),
    ("export", stage_export),
    ("predict", stage_predict),
    ("serve", stage_serve),
    ("report", stage_report),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, DemoConfig)


def run(args: argparse.Namespace) -> int:
    import yaml

    from weedseg.atomic import write_atomic

    config = config_from_args(DemoConfig, args)
    config.out.mkdir(parents=True, exist_ok=True)
    saved = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    write_atomic(config.out / "demo.yaml", yaml.safe_dump(saved, sort_keys=False))
    print(f"demo config: {saved}")
    state = DemoState()
    start = time.perf_counter()
    for number, (name, stage) in enumerate(STAGES, 1):
        print(f"[{number}/{len(STAGES)}] {name}: {stage.__doc__}")
        began = time.perf_counter()
        stage(config, state)
        print(f"[{number}/{len(STAGES)}] {name} done in {time.perf_counter() - began:.1f} s")
    print(f"demo finished in {time.perf_counter() - start:.1f} s; outputs:")
    for name, path in state.outputs.items():
        print(f"  {name:<12} {path}")
    print(f"Report: {state.outputs['report'].resolve()}")
    return 0
