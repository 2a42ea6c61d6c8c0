"""Kill -9 a tiny training run inside its checkpoint saves again and again, resuming it each time.

    python tests/checkpoint_kills.py WORKDIR KILLS SEED

Trains a tiny model for STEPS steps twice, each in a forked child: once straight through
(WORKDIR/straight), and once (WORKDIR/killed) by children that resume the run and then send
themselves SIGKILL at a random file-system call (write, fsync, rename, link) of a `RunDir.save`,
KILLS times, before a last child finishes it. Children append what they did to
WORKDIR/events.jsonl: `{"resumed": step, "warnings": [...]}` after each resume and
`{"saved": step}` after each save returned. Prints one JSON line: the kills, and whether the two
runs ended with equal weights. Used by tests/test_resume_state.py.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter  # noqa: F401 (imported once, before forking)

import weedseg.checkpoint
from weedseg.checkpoint import CheckpointMeta, load_tensors
from weedseg.models import ModelSpec, build_model
from weedseg.run_dir import RunDir
from weedseg.seeding import seed_everything

STEPS = 60
SPEC = ModelSpec("unet", "tu-mobilenetv3_small_050", (16, 8, 8, 8, 8))  # 1.3 MB of weights
MAX_KILL_CALL = (
    80  # a kill lands before or after file-system call 1..40 of the saves after a resume
)


def train(root: Path, events: Path) -> None:
    """Run (or resume) the tiny training run in `root` to STEPS, saving after every step."""
    torch.set_num_threads(1)
    resume = (root / "config.yaml").is_file()
    run = RunDir(root, resume=resume)
    run.start({"steps": STEPS})
    seed_everything(0)
    model = build_model(SPEC, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + 0.1 * s))
    step = 0
    if resume and (root / "checkpoints" / "last.json").is_file():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step = run.load_state(model, optimizer, scheduler).step
        _event(events, {"resumed": step, "warnings": [str(w.message) for w in caught]})
    while step < STEPS:
        x = torch.randn(2, 3, 32, 32)  # x: [N, 3, H, W], from the RNG a resume restores
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        run.log(step, {"loss": loss.item()}, images_seen=step * len(x))
        run.save(
            step,
            model,
            optimizer,
            scheduler,
            spec=SPEC,
            task="reconstruction",
            meta=CheckpointMeta(),
        )
        _event(events, {"saved": step})
    run.close()


def _event(events: Path, record: dict) -> None:
    with open(events, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def arm_kill(at_call: int) -> None:
    """SIGKILL this process at its `at_call`-th file-system call made inside `RunDir.save`."""
    calls = 0
    saving = False

    def counted(fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            nonlocal calls
            if saving:
                calls += 1
                if calls == at_call:
                    os.kill(os.getpid(), signal.SIGKILL)
            result = fn(*args, **kwargs)
            if saving:
                calls += 1
                if calls == at_call:
                    os.kill(os.getpid(), signal.SIGKILL)
            return result

        return wrapper

    save = RunDir.save

    def watched_save(self, *args, **kwargs):
        nonlocal saving
        saving = True
        try:
            return save(self, *args, **kwargs)
        finally:
            saving = False

    RunDir.save = watched_save
    for module, name in [
        (os, "replace"),
        (os, "rename"),
        (os, "fsync"),
        (os, "link"),
        (shutil, "copyfile"),
        (torch, "save"),
        (weedseg.checkpoint, "save_file"),
    ]:
        setattr(module, name, counted(getattr(module, name)))


def train_until_killed(at_call: int, root: Path, events: Path) -> None:
    arm_kill(at_call)
    train(root, events)


def in_child(work: Callable[[], None]) -> int:
    """Run `work` in a forked child; its exit status (-signal when killed)."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(work: Path, kills: int, seed: int) -> dict:
    torch.set_num_threads(1)
    build_model(SPEC, 3)  # the first build imports a lot: done once here, not in every child
    rng = random.Random(seed)
    events = work / "events.jsonl"
    straight, killed = work / "straight", work / "killed"
    if in_child(lambda: train(straight, work / "straight.jsonl")) != 0:
        return {"error": "the uninterrupted run failed"}
    done = 0
    while done < kills:
        at_call = rng.randint(1, MAX_KILL_CALL)
        status = in_child(functools.partial(train_until_killed, at_call, killed, events))
        if status == -signal.SIGKILL:
            done += 1
        elif status == 0:
            break  # finished before the kill came: nothing left to interrupt
        else:
            return {"error": f"a resumed child failed (exit {status})", "kills": done}
    if in_child(lambda: train(killed, events)) != 0:
        return {"error": "the last resume failed", "kills": done}
    a = load_tensors(straight / "checkpoints" / "last")
    b = load_tensors(killed / "checkpoints" / "last")
    equal = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return {"kills": done, "equal_weights": equal}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
