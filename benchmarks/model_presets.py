"""Forward cost (GFLOP, 1 multiply-add = 2 FLOP) and size of every model preset at 512x512.

    .venv/bin/python benchmarks/model_presets.py [--size 512] [--write]

FLOPs are counted with torch.utils.flop_counter (exact for the convolutions and matmuls that
dominate; elementwise ops are not counted), so the figures do not depend on the machine's load.
`--write` replaces this script's section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse

from pretrain_overhead import replace_section

from weedseg.models import PRESETS, build_model, count_gflops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = ["| preset | arch | encoder | decoder | GFLOP | params (M) |", "|---" * 6 + "|"]
    for name, spec in PRESETS.items():
        model = build_model(spec, out_channels=3)
        gflops = count_gflops(model, args.size)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        decoder = "default" if spec.decoder_channels is None else str(spec.decoder_channels)
        rows.append(
            f"| {name} | {spec.arch} | {spec.encoder} | {decoder} | {gflops:.1f} | {params:.1f} |"
        )
    table = "\n".join(rows)
    print(table)
    if args.write:
        section = "\n".join(
            [
                f"## Model presets: forward cost at {args.size}x{args.size} "
                "(`benchmarks/model_presets.py`)",
                "",
                f"Command: `.venv/bin/python benchmarks/model_presets.py --size {args.size} "
                "--write`; 3 output channels (a segmentation head with K classes differs only "
                "in the last conv). Counted, not timed: independent of the machine and its load.",
                "",
                table,
            ]
        )
        replace_section("model_presets", section)


if __name__ == "__main__":
    main()
