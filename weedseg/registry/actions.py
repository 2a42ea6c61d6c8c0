"""`promote` (refuses a worse model unless forced) and `rollback`, optionally reloading a service.

Order of effects: compare -> register the version (atomic) -> reload the service -> move the
pointer (atomic). A failure at any step leaves the pointer where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weedseg.bundle import MANIFEST_FILE, load_bundle, read_manifest
from weedseg.data.format import DATASET_FILE, DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.formatting import format_number
from weedseg.registry.service import reload_service
from weedseg.registry.sources import Candidate, read_candidate
from weedseg.registry.store import VERSION_NAME, Registry, Version


@dataclass
class PromoteResult:
    version: Version
    previous: Version | None
    comparison: dict[str, Any] | None  # None: first version or --force
    service: dict[str, Any] | None  # the service's reload answer


def compare_on_split(evaluation: dict[str, Any] | None, bundle: Path, current: Version) -> dict:
    """Candidate and current mIoU on the candidate's farm validation split.

    Both bundles are run now, as the service runs them, when the split's dataset is on disk;
    otherwise the current version must have been scored on exactly the same images.
    """
    if not evaluation:
        raise WeedsegError(
            f"{bundle}: no farm validation score to compare with {current.id} (register the "
            "output of `weedseg retrain`), or promote anyway with --force"
        )
    if evaluation.get("cross_validated"):
        return _cross_validated(evaluation, bundle, current)
    data, stems = Path(evaluation["data"]), list(evaluation["stems"])
    if (data / DATASET_FILE).is_file():
        from weedseg.retrain.scoring import Segmenter

        info = DatasetInfo.load(data)
        names = info.class_names
        scores = {
            who: Segmenter.from_bundle(path).score(info, stems).to_dict(names)["mIoU"]
            for who, path in (("candidate", bundle), ("current", current.bundle))
        }
        method = "both bundles evaluated now (ONNX Runtime)"
    else:
        recorded = current.info.get("evaluation") or {}
        same = recorded.get("data") == evaluation["data"] and recorded.get("stems") == stems
        if not same:
            raise WeedsegError(
                f"cannot compare with {current.id}: the validation data {data} is gone and "
                f"{current.id} was not scored on it; use --force to promote anyway"
            )
        scores = {"candidate": evaluation["mIoU"], "current": recorded["mIoU"]}
        method = "recorded scores on the same images"
    return scores | {"data": str(data), "images": len(stems), "method": method}


def _cross_validated(evaluation: dict[str, Any], bundle: Path, current: Version) -> dict:
    """A retrain run's recorded comparison: each farm photo scored by a fold model that never
    saw it, and the base on the same photos. It holds only against the base it was retrained
    from: the shipped model trained on every one of these photos, so scoring it on them again
    would favour it."""
    base = evaluation.get("base_bundle")
    if not (base and _same_model(Path(base), current.bundle)):
        raise WeedsegError(
            f"cannot compare {bundle} with {current.id}: it was cross-validated against its base "
            f"{base}, not {current.id}, and it trained on every farm label; compare on held-out "
            "photos with --data DATASET --split NAME, or promote anyway with --force"
        )
    return {
        "candidate": evaluation["mIoU"],
        "current": evaluation["base_mIoU"],
        "data": evaluation["data"],
        "images": len(evaluation["stems"]),
        "method": "cross-validated on the farm's labels (recorded by weedseg retrain)",
    }


def _same_model(first: Path, second: Path) -> bool:
    """Whether two bundle folders hold the same files (a registered copy of a bundle does)."""
    if not (first / MANIFEST_FILE).is_file() or not (second / MANIFEST_FILE).is_file():
        return False
    files = read_manifest(first).files
    return bool(files) and files == read_manifest(second).files


def promote(
    registry: Registry,
    source: str,
    *,
    force: bool = False,
    data: str | None = None,
    split: str = "val",
    service: str | None = None,
    api_key: str | None = None,
) -> PromoteResult:
    """Make `source` (a version id, a retrain run or a bundle) the current version.

    The comparison runs on the candidate's farm validation split (recorded by `weedseg retrain`),
    or on `data`/`split` when given.
    """
    current = registry.current()
    existing = registry.version(source) if VERSION_NAME.match(source) else None
    candidate = (
        Candidate(existing.bundle, existing.checkpoint, existing.info)
        if existing
        else read_candidate(source)
    )
    if existing is not None and current is not None and existing.id == current.id:
        raise WeedsegError(f"{existing.id} is already the current version")
    load_bundle(candidate.bundle)  # a modified or incomplete bundle stops here
    evaluation = candidate.info.get("evaluation")
    if data:
        evaluation = _split_of(data, split)
    comparison = None
    if current is not None and not force:
        comparison = compare_on_split(evaluation, candidate.bundle, current)
        if comparison["candidate"] is None or (
            comparison["current"] is not None and comparison["candidate"] < comparison["current"]
        ):
            raise WeedsegError(
                f"refused: the candidate scores mIoU {format_number(comparison['candidate'])} on "
                f"{comparison['images']} farm validation images, worse than current "
                f"{current.id} at {format_number(comparison['current'])}; "
                "use --force to promote anyway"
            )
    if comparison and not (candidate.info.get("evaluation") or {}).get("mIoU"):
        evaluation = evaluation | {"mIoU": comparison["candidate"]}
    record = {"evaluation": evaluation, "promotion": comparison}
    version = existing or registry.add(
        candidate.bundle,
        candidate.checkpoint,
        candidate.info | record | {"replaced": current.id if current else None},
    )
    load_bundle(version.bundle)  # a version whose files fail their checksums never goes live
    try:
        answer = reload_service(service, api_key, version.bundle) if service else None
    except WeedsegError as exc:
        still = current.id if current else "nothing"
        raise WeedsegError(f"{exc}; {version.id} is registered, {still} stays current") from exc
    history = [v for v in registry.pointer()["history"] if v != version.id] + [version.id]
    registry.set_pointer(history)
    return PromoteResult(version, current, comparison, answer)


def rollback(
    registry: Registry, *, service: str | None = None, api_key: str | None = None
) -> PromoteResult:
    """Make the previously current version current again."""
    history = registry.pointer()["history"]
    if len(history) < 2:
        raise WeedsegError(f"{registry.root}: no earlier version to roll back to")
    current, previous = registry.version(history[-1]), registry.version(history[-2])
    load_bundle(previous.bundle)
    answer = reload_service(service, api_key, previous.bundle) if service else None
    registry.set_pointer(history[:-1])
    return PromoteResult(previous, current, None, answer)


def _split_of(data: str, split: str) -> dict[str, Any]:
    """The evaluation record of a `--data DATASET --split NAME` comparison."""
    if not (Path(data) / DATASET_FILE).is_file():
        raise WeedsegError(f"--data {data}: not a weedseg dataset ({DATASET_FILE} missing)")
    stems = DatasetInfo.load(data).splits.get(split)
    if not stems:
        raise WeedsegError(f"--data {data}: split {split!r} is missing or empty")
    return {"data": str(Path(data).resolve()), "split": split, "stems": list(stems)}
