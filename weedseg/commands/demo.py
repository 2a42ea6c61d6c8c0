"""`weedseg demo`: the whole pipeline on an embedded default (synthetic fields), offline.

The demo is a list of named stages run in order; each reads the config and the outputs of the
stages before it and adds its own. Later capabilities (pretrain, finetune, evaluate, export,
predict, serve) append their stage to `STAGES`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HELP = "Run the pipeline end to end on a small synthetic field dataset and say where outputs are."


@dataclass
class DemoConfig:
    """Everything the demo needs; saved as demo.yaml in the output folder."""

    out: Path = Path("runs/demo")
    n: int = 32
    size: int = 256
    seed: int = 0


@dataclass
class DemoState:
    """What the stages produced so far: named output paths, shown to the user at the end."""

    outputs: dict[str, Path] = field(default_factory=dict)


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


STAGES: list[Stage] = [
    ("synth", stage_synth),
    ("check", stage_check),
    ("preview", stage_preview),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoConfig()
    parser.add_argument("--out", type=Path, default=defaults.out, help="output folder")
    parser.add_argument("--n", type=int, default=defaults.n, help="synthetic images")
    parser.add_argument("--size", type=int, default=defaults.size, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")


def run(args: argparse.Namespace) -> int:
    import yaml

    from weedseg.atomic import write_atomic

    config = DemoConfig(out=args.out, n=args.n, size=args.size, seed=args.seed)
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
        print(f"  {name:<10} {path}")
    return 0
