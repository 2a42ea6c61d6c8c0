"""Resume state: committed whole or not at all, damaged steps passed over, full disks survived."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import weedseg.resume_state
from weedseg.bundle import sha256_file
from weedseg.checkpoint import CheckpointMeta, load_tensors, save_checkpoint
from weedseg.errors import WeedsegError
from weedseg.models import ModelSpec, build_model
from weedseg.run_dir import RunDir
from weedseg.seeding import rng_state

torch.set_num_threads(1)
SPEC = ModelSpec("unet", "tu-mobilenetv3_small_050", (16, 8, 8, 8, 8))
KILLS = 20


def _training(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(SPEC, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, optimizer


def _step(model, optimizer) -> None:
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def _saved_run(root: Path, steps: int) -> tuple[RunDir, torch.nn.Module]:
    run = RunDir(root)
    run.start({"steps": steps})
    model, optimizer = _training()
    for step in range(1, steps + 1):
        _step(model, optimizer)
        run.save(step, model, optimizer, spec=SPEC, task="reconstruction", meta=CheckpointMeta())
    return run, model


def _resumed(root: Path):
    run = RunDir(root, resume=True)
    run.start({"steps": 0})
    model, optimizer = _training(seed=1)
    return run.load_state(model, optimizer), model


@pytest.mark.slow
def test_kill_9_inside_saves_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    script = Path(__file__).with_name("checkpoint_kills.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(KILLS), "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"kills": KILLS, "equal_weights": True}, done.stderr[-2000:]
    saved = 0
    resumes = 0
    for line in (tmp_path / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if "saved" in event:
            saved = event["saved"]
            continue
        resumes += 1
        # a save that returned is never lost; a kill after its commit may add the next step
        assert saved <= event["resumed"] <= saved + 1 or any(
            f"step {event['resumed']}" in w for w in event["warnings"]
        ), (event, saved)
    assert resumes >= KILLS - 2  # kills before the first commit start over instead
    logged = [
        json.loads(line)["step"]
        for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == list(range(1, len(logged) + 1))  # every step once, none cut or repeated


def test_layout_keeps_the_previous_step_and_last_is_the_newest(tmp_path):
    run, model = _saved_run(tmp_path / "run", 3)
    resume = tmp_path / "run" / "checkpoints" / "resume"
    assert sorted(p.name for p in resume.iterdir()) == ["step_000002", "step_000003"]
    manifest = json.loads((resume / "step_000003" / "manifest.json").read_text())
    assert manifest["step"] == 3
    assert manifest["parts"]["state.pt"] == sha256_file(resume / "step_000003" / "state.pt")
    last = load_tensors(tmp_path / "run" / "checkpoints" / "last")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in last.items())
    state, resumed = _resumed(tmp_path / "run")
    assert state.step == 3
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in last.items())


def test_parts_from_different_steps_fall_back_to_the_previous_step(tmp_path):
    _saved_run(tmp_path / "run", 3)
    resume = tmp_path / "run" / "checkpoints" / "resume"
    newest = resume / "step_000003"
    shutil.copyfile(resume / "step_000002" / "state.pt", newest / "state.pt")
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["parts"]["state.pt"] = sha256_file(newest / "state.pt")  # a consistent-looking lie
    (newest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(
        RuntimeWarning, match=r"step 3 \(its parts are from different steps\).*step 2"
    ):
        state, _ = _resumed(tmp_path / "run")
    assert state.step == 2
    assert not newest.exists()  # removed so it cannot shadow step 2 again
    meta = json.loads((tmp_path / "run" / "checkpoints" / "last.json").read_text())["meta"]
    assert meta["step"] == 2  # last.* now matches what training continues from


def test_a_damaged_newest_step_is_passed_over_and_none_complete_is_refused(tmp_path):
    _saved_run(tmp_path / "run", 2)
    resume = tmp_path / "run" / "checkpoints" / "resume"
    weights = resume / "step_000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # torn by the disk
    with pytest.warns(RuntimeWarning, match="step 2 .*differs.*step 1"):
        assert _resumed(tmp_path / "run")[0].step == 1
    (resume / "step_000001" / "manifest.json").unlink()
    with pytest.raises(WeedsegError, match="no complete checkpoint to resume from: step 1"):
        _resumed(tmp_path / "run")


def test_a_full_disk_while_saving_keeps_the_previous_step(tmp_path, monkeypatch):
    run, _ = _saved_run(tmp_path / "run", 1)
    model, optimizer = _training()

    def disk_full(state, path):
        Path(path).write_bytes(b"half a state")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(weedseg.resume_state.torch, "save", disk_full)
    with pytest.raises(WeedsegError, match="step 2 .*No space left.*step 1 is kept"):
        run.save(2, model, optimizer, spec=SPEC, task="reconstruction", meta=CheckpointMeta())
    monkeypatch.undo()
    resume = tmp_path / "run" / "checkpoints" / "resume"
    assert [p.name for p in resume.iterdir()] == ["step_000001"]  # no temporary folder left
    assert _resumed(tmp_path / "run")[0].step == 1


def _legacy_run(root: Path, state_step: int, weights_step: int) -> None:
    """A run folder as weedseg wrote it before resume/: last.* + last.state.pt."""
    (root / "checkpoints").mkdir(parents=True)
    (root / "config.yaml").write_text("steps: 2\n")
    model, optimizer = _training()
    meta = {"step": weights_step}
    save_checkpoint(
        root / "checkpoints" / "last", model, spec=SPEC, task="reconstruction", meta=meta
    )
    state = {"step": state_step, "optimizer": optimizer.state_dict(), "scheduler": None}
    state |= {"rng": rng_state(), "extra": {}}
    torch.save(state, root / "checkpoints" / "last.state.pt")


def test_runs_saved_before_resume_folders_still_resume_when_consistent(tmp_path):
    _legacy_run(tmp_path / "old", state_step=2, weights_step=2)
    assert _resumed(tmp_path / "old")[0].step == 2
    _legacy_run(tmp_path / "torn", state_step=1, weights_step=2)
    with pytest.raises(
        WeedsegError, match="last.state.pt is from step 1 but last.json from step 2"
    ):
        _resumed(tmp_path / "torn")
