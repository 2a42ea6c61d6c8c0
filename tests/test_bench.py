"""weedseg bench: the table and JSON are written, unusable backends are skipped with a reason."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from weedseg.bench import BenchConfig, markdown_table, run_bench, write_results
from weedseg.bench.memory import PeakRss
from weedseg.bench.subjects import peer_subject
from weedseg.bench.timing import Timing
from weedseg.cli import main
from weedseg.errors import WeedsegError
from weedseg.models import count_gflops

TINY = "preset:unet-tiny"


def test_bench_command_writes_table_json_and_skips(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--model", TINY, "--sizes", "64", "--batch", "1,2", "--runs", "2"]
    argv += [
        "--warmup",
        "1",
        "--threads",
        "1",
        "--peer",
        "none",
        "--calib-n",
        "2",
        "--gemm-size",
        "256",
    ]
    argv += ["--backends", "torch,ort,ort-int8,cuda,tensorrt", "--out", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "bench.json").read_text())
    ok = {(r["backend"], r["batch"]): r for r in results["rows"] if r["status"] == "ok"}
    assert {("torch", 1), ("ort", 1), ("ort-int8", 1), ("torch", 2), ("ort", 2)} <= set(ok)
    for row in ok.values():
        assert row["runs"] == 2 == len(row["times_ms"])
        assert 0 < row["best_ms"] <= row["median_ms"] <= row["p90_ms"]
        assert row["gflop_per_image"] > 0 and row["percent_of_fp32_peak"] > 0
        assert row["images_per_s"] == pytest.approx(row["batch"] * 1000 / row["median_ms"], 0.01)
    assert ok[("torch", 1)]["speedup_vs_torch"] == 1.0
    assert results["fp32_peak"]["peak_gflops"] > 0
    assert results["subjects"][0]["gflop_per_image"]["64"] > 0
    skipped = [r for r in results["rows"] if r["status"] == "skipped"]
    assert all(r["reason"] for r in skipped)
    if not torch.cuda.is_available():
        assert {r["backend"] for r in skipped} == {"cuda", "tensorrt"}
        assert "Skipped: **cuda**" in (out / "bench.md").read_text()
    table = (out / "bench.md").read_text()
    assert "| unet-tiny | ort | 64 | 1 |" in table and "Machine:" in table
    assert "| unet-tiny | ort-int8 | 64 | 2 |" in capsys.readouterr().out


def test_bench_torch_only_without_onnx_export(tmp_path):
    config = BenchConfig(
        models=[TINY],
        sizes=[32],
        batches=[1],
        backends=["torch"],
        peer=None,
        runs=1,
        warmup=0,
        threads=1,
        gemm_size=64,
        out=str(tmp_path),
    )
    results = run_bench(config)
    json_path, md_path = write_results(results, tmp_path)
    assert [r["status"] for r in results["rows"]] == ["ok"]
    assert json.loads(json_path.read_text())["config"]["backends"] == ["torch"]
    assert markdown_table(results).count("\n") == 2  # header, rule, one row
    assert md_path.is_file()


def test_peer_lraspp_builds_offline_with_flops():
    peer = peer_subject("lraspp")
    assert peer.role == "peer" and peer.params_m() > 1
    assert count_gflops(peer.network, 64) > 0
    with pytest.raises(WeedsegError, match="unknown peer"):
        peer_subject("segformer")


@pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed"
)
def test_yolo_peer_without_ultralytics_says_how_to_get_it():
    with pytest.raises(WeedsegError, match="pip install ultralytics"):
        peer_subject("yolo11n-seg")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sizes": [100]}, "multiples of 32"),
        ({"batches": [0]}, "--batch"),
        ({"backends": ["openvino"]}, "unknown backend"),
        ({"runs": 0}, "--runs"),
    ],
)
def test_config_refuses_bad_settings(change, message):
    with pytest.raises(WeedsegError, match=message):
        BenchConfig(models=[TINY], **change)


def test_bad_model_names_the_way_out(tmp_path):
    config = BenchConfig(models=[str(tmp_path / "missing")], backends=["torch"], peer=None)
    with pytest.raises(WeedsegError, match="preset:NAME"):
        run_bench(config)


def test_timing_median_and_p90():
    timing = Timing(times_ms=[float(v) for v in range(1, 11)])
    assert timing.median_ms == 5.5 and timing.p90_ms == pytest.approx(9.1)


def test_peak_rss_sees_an_allocation():
    with PeakRss() as rss:
        block = np.ones(256 * 2**20 // 8)  # 256 MiB, touched (more than any freed heap to reuse)
        assert block[-1] == 1.0
    assert rss.mib is not None and rss.mib >= 128


def _tiny_checkpoint(tmp_path):
    from weedseg.checkpoint import save_checkpoint
    from weedseg.classes import DEFAULT_CLASSES
    from weedseg.models import build_model, spec_from_name

    spec = spec_from_name(TINY.removeprefix("preset:"))
    classes = [{"name": c.name, "color": list(c.color)} for c in DEFAULT_CLASSES]
    meta = {"classes": classes, "mean": [0.5] * 3, "std": [0.25] * 3}
    model = build_model(spec, len(DEFAULT_CLASSES))
    return save_checkpoint(tmp_path / "ck", model, spec=spec, task="segmentation", meta=meta)


def test_bench_checkpoint_and_static_bundle(tmp_path):
    from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx

    from weedseg.bundle import InputSpec, Manifest, TileSpec, write_manifest
    from weedseg.checkpoint import load_checkpoint
    from weedseg.classes import DEFAULT_CLASSES

    stem = _tiny_checkpoint(tmp_path)
    loaded = load_checkpoint(stem)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    deploy = DeployModel(loaded.model.eval(), (0.5,) * 3, (0.25,) * 3, "NHWC")
    export_onnx(deploy, bundle / "model.onnx", OnnxOptions(64, 64, layout="NHWC"))
    manifest = Manifest(
        model_name="tiny-bundle",
        arch=loaded.spec.to_dict() | {"out_channels": 3},
        classes=[{"name": c.name, "color": c.color} for c in DEFAULT_CLASSES],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        input=InputSpec(layout="NHWC", dtype="uint8", height=64, width=64, max_batch=1),
        tile=TileSpec(size=64, overlap=8),
    )
    write_manifest(bundle, manifest, ["model.onnx"])
    config = BenchConfig(
        models=[str(stem), str(bundle)], sizes=[64], batches=[1, 2],
        backends=["ort", "ort-int8"], peer=None, runs=1, warmup=0, threads=1,
        gemm_size=64, calib_n=1, interleave_models=True, out=str(tmp_path / "out"),
    )  # fmt: skip
    rows = {(r["model"], r["backend"], r["batch"]): r for r in run_bench(config)["rows"]}
    assert rows[("ck", "ort", 2)]["status"] == "ok"  # a checkpoint is exported dynamic
    assert rows[("tiny-bundle", "ort", 1)]["status"] == "ok"
    assert "static bundle graph" in rows[("tiny-bundle", "ort", 2)]["reason"]
    assert "--int8" in rows[("tiny-bundle", "ort-int8", 1)]["reason"]


def test_fp32_peak_counts_numpy_only_when_every_core_is_used(monkeypatch):
    from weedseg.bench import machine

    monkeypatch.setattr(machine.os, "cpu_count", lambda: 4)
    fewer = machine.measure_fp32_peak(threads=1, size=64, repeats=1)  # NumPy's BLAS: all cores
    assert fewer["numpy_gflops"] is None and fewer["peak_gflops"] == fewer["torch_gflops"]
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 1)
    every = machine.measure_fp32_peak(threads=1, size=64, repeats=1)
    assert every["numpy_gflops"] > 0
    assert every["peak_gflops"] == max(every["torch_gflops"], every["numpy_gflops"])


def test_timed_onnx_sessions_do_not_spin_while_another_runs(tmp_path):
    """Backends take turns: an idle ONNX Runtime pool that busy-waits steals the next's cores."""
    from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx

    from weedseg.bench.backends import _ort_session
    from weedseg.infer.onnx_session import NO_SPINNING, cpu_session
    from weedseg.models import build_model

    path = tmp_path / "tiny.onnx"
    model = build_model("unet-tiny", 3).eval()
    export_onnx(DeployModel(model, (0.5,) * 3, (0.25,) * 3, "NHWC"), path, OnnxOptions(64, 64))
    key, off = NO_SPINNING
    bench = _ort_session(path, "CPUExecutionProvider", (1, 64, 64, 3), 2, None)
    assert bench.get_session_options().get_session_config_entry(key) == off
    export_timing = cpu_session(path, spinning=False)
    assert export_timing.get_session_options().get_session_config_entry(key) == off
