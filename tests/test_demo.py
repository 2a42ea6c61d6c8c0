"""`weedseg demo`: runs every stage on a tiny synthetic dataset and says where outputs are."""

from __future__ import annotations

from pathlib import Path

from weedseg.cli import main
from weedseg.commands.demo import STAGES


def test_tiny_demo_runs_and_lists_outputs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "4", "--size", "64"]) == 0
    printed = capsys.readouterr().out
    assert (out / "data" / "dataset.yaml").is_file()
    assert (out / "preview.png").stat().st_size > 1000
    assert (out / "demo.yaml").is_file()
    assert f"preview    {out / 'preview.png'}" in printed
    for number, (name, _) in enumerate(STAGES, 1):
        assert f"[{number}/{len(STAGES)}] {name} done" in printed
    assert main(["demo", "--out", str(out), "--n", "4", "--size", "64"]) == 0  # reruns in place
