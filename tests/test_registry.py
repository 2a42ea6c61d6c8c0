"""Model registry: promote refuses a worse model, rollback restores, nothing half-written."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from bundles import build_colour_bundle
from labeled_datasets import write_colour_dataset

from weedseg.cli import main
from weedseg.errors import WeedsegError
from weedseg.registry.actions import promote, rollback
from weedseg.registry.store import Registry


@pytest.fixture()
def farm(tmp_path):
    """A labeled 'farm' split the colour rule segments well; sharp beats blurred."""
    return write_colour_dataset(tmp_path / "farm", {"val": [(64, 64)] * 3})


@pytest.fixture()
def bundles(tmp_path):
    return {
        "sharp": build_colour_bundle(tmp_path / "sharp", smooth=1),
        "blurred": build_colour_bundle(tmp_path / "blurred", smooth=31),
    }


def listing(root) -> list[str]:
    """Every path in the registry, hidden temporary folders included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_promote_refuses_worse_then_force_and_rollback(tmp_path, farm, bundles, capsys):
    root = tmp_path / "registry"
    registry = Registry(root)
    first = promote(registry, str(bundles["sharp"]))
    assert first.version.id == "v0001" and first.comparison is None
    assert (root / "versions" / "v0001" / "bundle" / "weedseg.json").is_file()

    before = listing(root)
    with pytest.raises(WeedsegError, match="refused.*worse than current v0001"):
        promote(registry, str(bundles["blurred"]), data=str(farm.root))
    assert listing(root) == before  # nothing registered, pointer untouched

    args = ["models", "--registry", str(root), "promote", str(bundles["blurred"])]
    assert main([*args, "--data", str(farm.root)]) == 2
    assert "refused" in capsys.readouterr().err
    assert main([*args, "--data", str(farm.root), "--force"]) == 0
    assert registry.current().id == "v0002"
    assert json.loads((root / "current.json").read_text())["history"] == ["v0001", "v0002"]

    assert main(["models", "--registry", str(root), "list"]) == 0
    table = capsys.readouterr().out
    assert "* v0002" in table and "  v0001" in table
    assert main(["models", "--registry", str(root), "show", "v0001"]) == 0
    assert '"id": "v0001"' in capsys.readouterr().out

    back = rollback(registry)
    assert back.version.id == "v0001" and registry.current().id == "v0001"
    with pytest.raises(WeedsegError, match="no earlier version"):
        rollback(registry)


def test_better_model_is_promoted_with_its_score(tmp_path, farm, bundles):
    registry = Registry(tmp_path / "registry")
    promote(registry, str(bundles["blurred"]))
    result = promote(registry, str(bundles["sharp"]), data=str(farm.root))
    assert result.comparison["candidate"] > result.comparison["current"]
    assert result.comparison["images"] == 3
    assert result.version.miou == pytest.approx(result.comparison["candidate"])
    # a registered version can be promoted again by id, and the current one is refused
    with pytest.raises(WeedsegError, match="already the current"):
        promote(registry, result.version.id)
    assert promote(registry, "v0001", force=True).version.id == "v0001"


def test_bundle_failing_its_checksum_is_refused_and_leaves_nothing(tmp_path, bundles, capsys):
    root = tmp_path / "registry"
    promote(Registry(root), str(bundles["sharp"]))
    before = listing(root)
    damaged = bundles["blurred"] / "model.onnx"
    damaged.write_bytes(damaged.read_bytes() + b"\0")
    assert main(["models", "--registry", str(root), "promote", str(bundles["blurred"])]) == 2
    assert "fails its checksum" in capsys.readouterr().err
    assert listing(root) == before


def test_missing_data_and_unknown_sources_are_clear_errors(tmp_path, bundles):
    registry = Registry(tmp_path / "registry")
    with pytest.raises(WeedsegError, match="not a version id, a `weedseg retrain` run"):
        promote(registry, str(tmp_path))
    promote(registry, str(bundles["sharp"]))
    with pytest.raises(WeedsegError, match="no farm validation score"):
        promote(registry, str(bundles["blurred"]))
    with pytest.raises(WeedsegError, match="not a weedseg dataset"):
        promote(registry, str(bundles["blurred"]), data=str(tmp_path / "nothing"))
    with pytest.raises(WeedsegError, match="no version v0009"):
        promote(registry, "v0009")


def test_concurrent_promotes_get_distinct_versions(tmp_path, bundles, monkeypatch):
    registry = Registry(tmp_path / "registry")
    both_copying = threading.Barrier(2, timeout=30)
    copytree = shutil.copytree

    def copy_together(*args, **kwargs):
        both_copying.wait()  # each promote has picked its version id before either finishes
        return copytree(*args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", copy_together)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda name: promote(registry, str(bundles[name])), bundles))
    assert sorted(r.version.id for r in results) == ["v0001", "v0002"]
    assert [v.id for v in registry.versions()] == ["v0001", "v0002"]
    models = {v.info["model_sha256"] for v in registry.versions()}
    assert len(models) == 2  # both bundles are there, neither replaced the other
    assert not [p for p in (tmp_path / "registry" / "versions").iterdir() if p.name[0] == "."]


def test_a_retrained_candidate_is_judged_on_its_cross_validated_scores(tmp_path, bundles):
    """A retrain run's shipped model trained on every farm photo: promote uses the recorded
    cross-validated comparison against the base it came from, and refuses any other current."""
    from weedseg.registry.actions import compare_on_split

    registry = Registry(tmp_path / "registry")
    current = promote(registry, str(bundles["sharp"])).version  # a registered copy of the base
    evaluation = {
        "data": str(tmp_path / "farm"), "split": "farm", "stems": ["a", "b", "c"],
        "mIoU": 0.71, "cross_validated": True, "base_mIoU": 0.64,
        "base_bundle": str(bundles["sharp"]),
    }  # fmt: skip
    comparison = compare_on_split(evaluation, bundles["blurred"], current)
    assert (comparison["candidate"], comparison["current"], comparison["images"]) == (0.71, 0.64, 3)
    assert comparison["method"].startswith("cross-validated")

    other = evaluation | {"base_bundle": str(bundles["blurred"])}  # retrained from another model
    with pytest.raises(WeedsegError, match="cross-validated against its base.*--data"):
        compare_on_split(other, bundles["blurred"], current)
