"""The inference side works where `import torch` fails: modules, a prediction, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bundles import build_colour_bundle, field_image

from weedseg.imageio import write_image

REPO_ROOT = Path(__file__).resolve().parents[1]

# Everything that must import without torch; add new torch-free packages here.
TORCH_FREE_MODULES = [
    "weedseg.bundle",
    "weedseg.imageio",
    "weedseg.tiling",
    "weedseg.infer",
    "weedseg.infer.render",
    "weedseg.infer.analysis",
    "weedseg.infer.onnx_session",
    "weedseg.infer.model_runner",
    "weedseg.infer.tensorrt_engine",
    "weedseg.predict",
    "weedseg.predict.geo",
    "weedseg.predict.ray_runner",
    "weedseg.commands.predict",
    "weedseg.service",
    "weedseg.service.app",
    "weedseg.client",
    "weedseg.commands.serve",
]


def run_without_torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python *args` with a `torch` package on the path whose import raises ImportError."""
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text('raise ImportError("torch is blocked in this test")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), str(REPO_ROOT)])
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def test_blocker_blocks_torch(tmp_path) -> None:
    result = run_without_torch(tmp_path, "-c", "import torch")
    assert result.returncode != 0 and "torch is blocked" in result.stderr


@pytest.mark.parametrize("module", TORCH_FREE_MODULES)
def test_module_imports_without_torch(tmp_path, module) -> None:
    code = f"import sys, {module}; assert 'torch' not in sys.modules"
    result = run_without_torch(tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr


def test_predict_runs_without_torch(tmp_path) -> None:
    bundle = build_colour_bundle(tmp_path / "bundle")
    write_image(tmp_path / "field" / "a.jpg", field_image(70, 90, 1))
    code = textwrap.dedent(
        f"""
        import sys
        from weedseg.imageio import read_image
        from weedseg.infer import Predictor
        prediction = Predictor.from_bundle({str(bundle)!r}).predict(
            read_image({str(tmp_path / "field" / "a.jpg")!r})
        )
        assert prediction.labels.shape == (70, 90)
        assert "torch" not in sys.modules
        """
    )
    result = run_without_torch(tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr

    cli = ["-m", "weedseg", "predict", "field", "--model", str(bundle), "--out", "out"]
    result = run_without_torch(tmp_path, *cli)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.mask.png").is_file()
    assert "Speed:" in result.stdout

    result = run_without_torch(tmp_path, "-m", "weedseg", "--help")
    assert result.returncode == 0, result.stderr
    assert "predict" in result.stdout


def test_inference_install_declares_no_torch() -> None:
    """Core + geo + serve + ray (what predict/serve need) list no torch-based package.

    (`pip install --dry-run '.[geo]'` resolved to 25 packages without torch on 2026-11-25.)
    """
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["geo"] + extras["serve"] + extras["ray"]
    heavy = ("torch", "torchvision", "segmentation-models-pytorch", "torchmetrics")
    names = {
        r.split("=")[0].split("[")[0].split("<")[0].split(">")[0].strip() for r in requirements
    }
    assert not names & set(heavy)


@pytest.mark.parametrize("command", ["serve", "predict"])
def test_inference_commands_leave_torch_unloaded(command) -> None:
    """Where torch is installed, `weedseg serve`/`predict` still never load it (~470 MB RSS)."""
    code = textwrap.dedent(
        f"""
        import sys
        from weedseg.cli import main
        try:
            main(["{command}", "--help"])
        except SystemExit:
            pass
        sys.exit(3 if "torch" in sys.modules else 0)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO_ROOT)
    assert done.returncode == 0, "building the CLI imported torch"
