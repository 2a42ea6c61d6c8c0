"""`weedseg data convert|check|synth|show`: make, check and look at labeled datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert, check, generate (synthetic fields) and preview labeled datasets."

SPLIT_HELP = (
    "NAME=SPEC, repeatable; SPEC is a name range (0001-0280), a list (a,b,c) or @file.txt "
    "with one name per line (default: everything in train)"
)
PAIRING_HELP = "file-name template with {stem} and * wildcards (default: {stem}.*)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    _add_convert(sub.add_parser("convert", help="convert a published layout to the weedseg format"))

    check = sub.add_parser("check", help="report problems and class pixel shares; exit 2 if any")
    check.add_argument("dataset", type=Path, help="dataset folder (with dataset.yaml)")
    check.set_defaults(data_run=_run_check)

    synth = sub.add_parser("synth", help="generate a synthetic field dataset with exact masks")
    synth.add_argument("out", type=Path, help="output dataset folder")
    synth.add_argument("--n", type=int, default=24, help="number of images (default 24)")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    synth.add_argument("--seed", type=int, default=0, help="same seed -> identical files")
    synth.add_argument("--soil", default="loam", help="soil style: loam, dark, light, red")
    synth.add_argument("--lighting", default="mixed", help="sun, overcast or mixed (default)")
    synth.add_argument("--crop-density", type=float, default=1.0, help="1.0 = default")
    synth.add_argument("--weed-density", type=float, default=1.0, help="1.0 = default")
    synth.add_argument("--force", action="store_true", help="replace an existing OUT")
    synth.set_defaults(data_run=_run_synth)

    show = sub.add_parser("show", help="render images with colour-coded masks to a PNG")
    show.add_argument("dataset", type=Path, help="dataset folder (with dataset.yaml)")
    show.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write")
    show.add_argument("--split", default=None, help="split to show (default: all samples)")
    show.add_argument("--n", type=int, default=8, help="samples to show (default 8)")
    show.add_argument("--tile", type=int, default=192, help="tile width in pixels (default 192)")
    show.set_defaults(data_run=_run_show)


def _add_convert(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("src", type=Path, help="source dataset (folder, or .json for coco)")
        p.add_argument("dst", type=Path, help="output folder in the weedseg format")
        p.add_argument("--force", action="store_true", help="replace an existing DST")

    cwfid = sub.add_parser("cwfid", help="CWFID: images/, annotations/, train_test_split.yaml")
    common(cwfid)

    index = sub.add_parser("index-masks", help="images + single-channel index masks")
    common(index)
    index.add_argument(
        "--map", required=True, help="value map, e.g. 0=soil,1=weed,2=crop,255=ignore"
    )
    index.add_argument("--masks", default="masks", help="mask folder under SRC (default masks)")

    color = sub.add_parser("color-masks", help="images + RGB label masks (e.g. Peanut)")
    common(color)
    color.add_argument(
        "--colors",
        nargs="+",
        default=None,
        metavar="CLASS=R,G,B",
        help="colour map (default: soil=0,0,0 crop=0,255,0 weed=255,0,0); CLASS may be ignore",
    )
    color.add_argument("--masks", default=None, help="mask folder (default: labels/ or masks/)")
    color.add_argument(
        "--unknown-as-ignore",
        action="store_true",
        help="map colours outside the colour map to 255 (ignore) instead of failing",
    )

    coco = sub.add_parser("coco", help="COCO polygons/RLE (CVAT, Roboflow, LabelMe exports)")
    common(coco)
    coco.add_argument("--map", default="", help="category map, e.g. carrot=crop,grass=weed")

    for p in (index, color):
        p.add_argument("--images", default="images", help="image folder under SRC (default images)")
        p.add_argument("--image-name", default="{stem}.*", help="image " + PAIRING_HELP)
        p.add_argument("--mask-name", default="{stem}.*", help="mask " + PAIRING_HELP)
    coco.add_argument("--images", default=None, help="image folder (default: beside the json)")
    for p in (index, color, coco):
        p.add_argument("--split", action="append", default=[], help=SPLIT_HELP)
    parser.set_defaults(data_run=_run_convert)


def run(args: argparse.Namespace) -> int:
    return int(args.data_run(args) or 0)


def _run_convert(args: argparse.Namespace) -> int:
    from weedseg.data import convert
    from weedseg.data.convert.coco import parse_category_map
    from weedseg.data.convert.masks import parse_color_map, parse_value_map

    if args.format == "cwfid":
        result = convert.convert_cwfid(args.src, args.dst, force=args.force)
    elif args.format == "index-masks":
        result = convert.convert_index_masks(
            args.src,
            args.dst,
            value_map=parse_value_map(args.map),
            images=args.images,
            masks=args.masks,
            split_specs=args.split,
            image_template=args.image_name,
            mask_template=args.mask_name,
            force=args.force,
        )
    elif args.format == "color-masks":
        result = convert.convert_color_masks(
            args.src,
            args.dst,
            images=args.images,
            masks=args.masks,
            color_map=parse_color_map(args.colors) if args.colors else None,
            split_specs=args.split,
            image_template=args.image_name,
            mask_template=args.mask_name,
            unknown_as_ignore=args.unknown_as_ignore,
            force=args.force,
        )
    else:
        result = convert.convert_coco(
            args.src,
            args.dst,
            images=args.images,
            category_map=parse_category_map(args.map),
            split_specs=args.split,
            force=args.force,
        )
    print(result.summary())
    print(f"check it with: weedseg data check {args.dst}")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from weedseg.data.check import check_dataset

    report = check_dataset(args.dataset)
    print(f"{args.dataset}: {len(report.info.images)} samples")
    print(report.frequency_table())
    if report.ok:
        print("OK: no problems found")
        return 0
    print(f"{len(report.problems)} problem(s):")
    for problem in report.problems:
        print(f"  {problem}")
    return 2


def _run_synth(args: argparse.Namespace) -> int:
    from weedseg.data.synth import SynthConfig, generate_dataset
    from weedseg.errors import WeedsegError

    try:
        config = SynthConfig(
            n=args.n,
            size=args.size,
            seed=args.seed,
            soil=args.soil,
            lighting=args.lighting,
            crop_density=args.crop_density,
            weed_density=args.weed_density,
        )
    except ValueError as exc:
        raise WeedsegError(str(exc)) from exc
    print(f"config: {config}")
    generate_dataset(args.out, config, force=args.force)
    print(f"look at it with: weedseg data show {args.out} --out {args.out}/preview.png")
    return 0


def _run_show(args: argparse.Namespace) -> int:
    from weedseg.data.preview import write_preview

    out = write_preview(args.dataset, args.out, split=args.split, n=args.n, tile=args.tile)
    print(f"wrote {out}")
    return 0
