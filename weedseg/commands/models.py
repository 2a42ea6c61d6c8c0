"""`weedseg models list|show|promote|rollback`: the local model registry."""

from __future__ import annotations

import argparse
import json
import os

from weedseg.formatting import format_number

HELP = "list, inspect, promote and roll back model versions in a local registry folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.registry.store import DEFAULT_ROOT, ENV_VAR

    parser.add_argument(
        "--registry", help=f"registry folder (default: ${ENV_VAR}, else {DEFAULT_ROOT})"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every version, the current one marked *")
    show = sub.add_parser("show", help="one version's manifest, metrics and lineage")
    show.add_argument("version", nargs="?", help="version id (default: the current one)")
    promote = sub.add_parser(
        "promote", help="register and make current; refused when worse than the current one"
    )
    promote.add_argument("source", help="a retrain run folder, a bundle folder or a version id")
    promote.add_argument("--force", action="store_true", help="promote even if it scores worse")
    promote.add_argument(
        "--data", help="labeled farm dataset to compare on (default: the run's validation split)"
    )
    promote.add_argument("--split", default="val", help="split of --data (default: val)")
    rollback = sub.add_parser("rollback", help="make the previous version current again")
    for p in (promote, rollback):
        p.add_argument(
            "--service",
            help="URL of a running service to reload (serve it with WEEDSEG_RELOAD_ROOT=REGISTRY)",
        )
        p.add_argument("--api-key", help="the service's admin key (default: $WEEDSEG_API_KEY)")


def run(args: argparse.Namespace) -> int:
    from weedseg.registry.actions import promote, rollback
    from weedseg.registry.store import Registry, default_registry

    registry = Registry(args.registry or default_registry())
    if args.action == "list":
        return _list(registry)
    if args.action == "show":
        version = registry.version(args.version) if args.version else registry.current()
        if version is None:
            print(f"{registry.root}: no current version")
            return 1
        print(json.dumps(version.info, indent=2))
        print(f"bundle: {version.bundle}")
        return 0
    key = args.api_key or os.environ.get("WEEDSEG_API_KEY")
    if args.action == "promote":
        result = promote(
            registry,
            args.source,
            force=args.force,
            data=args.data,
            split=args.split,
            service=args.service,
            api_key=key,
        )
        if result.comparison:
            c = result.comparison
            print(
                f"farm validation mIoU: candidate {format_number(c['candidate'])} vs current "
                f"{format_number(c['current'])} on {c['images']} images ({c['method']})"
            )
    else:
        result = rollback(registry, service=args.service, api_key=key)
    was = result.previous.id if result.previous else "none"
    print(f"current: {result.version.id} (was {was}); bundle {result.version.bundle}")
    if result.service:
        print(f"service: {result.service['previous']} -> {result.service['current']}")
    return 0


def _list(registry) -> int:
    current = registry.pointer()["current"]
    versions = registry.versions()
    if not versions:
        print(f"{registry.root}: no versions yet (weedseg models promote RUN_OR_BUNDLE)")
        return 0
    print(f"   {'version':<9}{'created':<22}{'model':<24}{'farm mIoU':>10}  source")
    for v in versions:
        mark = "*" if v.id == current else " "
        miou = format_number(v.miou)
        name = v.info.get("model_name", "")[:23]
        print(f" {mark} {v.id:<9}{v.info['created']:<22}{name:<24}{miou:>10}  {v.info['source']}")
    return 0
