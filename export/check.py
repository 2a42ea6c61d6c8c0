"""TensorRT compatibility of a bundle's models: stored in the manifest at export, and
`weedseg export BUNDLE --check` on an existing bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weedseg.export.trt_compat import check_model, load_ops_table, profile_for

from weedseg.bundle import Manifest, load_bundle


def tensorrt_models(manifest: Manifest, files: list[str]) -> list[str]:
    """The bundle's ONNX models meant for TensorRT: the FP32 one, and a TensorRT-targeted INT8
    one (a CPU-targeted INT8 model has uint8 zero points, which TensorRT does not take)."""
    names = ["model.onnx"]
    int8 = manifest.int8
    if int8 and int8.get("target") == "tensorrt" and int8["file"] in files:
        names.append(int8["file"])
    return names


def compatibility_report(root: Path, manifest: Manifest, files: list[str]) -> dict[str, Any]:
    """Problems TensorRT would have with each model and with the manifest's input profile."""
    table = load_ops_table()
    profile = profile_for(manifest.input)
    problems = {
        name: check_model(root / name, profile, table) for name in tensorrt_models(manifest, files)
    }
    return {
        "tensorrt_version": table.tensorrt_version,
        "source": table.source,
        "profile": profile.to_dict(),
        "checked": list(problems),
        "problems": {name: found for name, found in problems.items() if found},
        "passed": not any(problems.values()),
    }


def compatibility_summary(report: dict[str, Any]) -> str:
    head = f"tensorrt check ({report['tensorrt_version']} operator list, {report['checked']}): "
    if report["passed"]:
        return head + "ok"
    lines = [f"  {name}: {p}" for name, found in report["problems"].items() for p in found]
    return head + f"{len(lines)} problem(s)\n" + "\n".join(lines)


def check_bundle(root: str | Path) -> int:
    """Verify a bundle, then check it for TensorRT; exit code 0 (ok) or 1 (problems)."""
    bundle = load_bundle(root)
    report = compatibility_report(bundle.root, bundle.manifest, list(bundle.manifest.files))
    print(f"profile {report['profile']}")
    print(compatibility_summary(report))
    return 0 if report["passed"] else 1
