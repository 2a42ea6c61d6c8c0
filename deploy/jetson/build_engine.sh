#!/usr/bin/env bash
# Build a TensorRT engine for a weedseg bundle on the Jetson itself, with JetPack's trtexec.
#
#   deploy/jetson/build_engine.sh BUNDLE [fp16|fp32|int8] [WORKSPACE_MB]
#
#   BUNDLE        folder written by `weedseg export` (model.onnx + weedseg.json)
#   precision     fp16 (default; the Jetson's fast path), fp32, or int8 (needs a bundle exported
#                 with `--int8 --int8-target tensorrt`: symmetric Q/DQ from real calibration images)
#   WORKSPACE_MB  builder scratch memory limit, default 2048 (lower it on 4 GB boards)
#
# Engines only run on the TensorRT version and GPU that built them, so the file name carries
# both (model.fp16.trt10.3.0.nvidia-jetson-orin-nano-....engine) and the engine is recorded in
# weedseg.json (`tensorrt` list + sha256 in `files`), where weedseg's runtime finds it and
# refuses it after a JetPack upgrade with a rebuild message. Same result as
# `weedseg export ... --tensorrt fp16` on a machine with TensorRT's Python API.
#
# trtexec flags used (TensorRT 10; see `trtexec --help`):
#   --onnx=FILE                     the bundle's model (model.int8.onnx for int8)
#   --minShapes/--optShapes/--maxShapes=images:BxHxWx3
#                                   the optimisation profile, read from the manifest's input spec
#                                   (static bundles: all three equal the fixed input shape)
#   --fp16                          let fp32 layers run in fp16
#   --stronglyTyped                 int8: the Q/DQ nodes of model.int8.onnx decide which layers
#                                   run in int8, the others keep their float type (TensorRT's
#                                   explicit-quantisation guide; no precision flags)
#   --memPoolSize=workspace:NM      workspace limit in MiB
#   --timingCacheFile=FILE          reuse kernel timings across builds (faster rebuilds)
#   --skipInference                 build and save only
#   --saveEngine=FILE               where the engine goes (next to the ONNX model)
set -euo pipefail

bundle=${1:?usage: build_engine.sh BUNDLE [fp16|fp32|int8] [WORKSPACE_MB]}
precision=${2:-fp16}
workspace_mb=${3:-2048}
manifest="$bundle/weedseg.json"
trtexec=${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}

[[ -f "$manifest" ]] || { echo "error: $manifest not found: not a weedseg bundle" >&2; exit 2; }
[[ -x "$trtexec" ]] || { echo "error: trtexec not found (JetPack's TensorRT; set TRTEXEC=)" >&2; exit 2; }
case "$precision" in
    fp32) onnx=model.onnx; flags=() ;;
    fp16) onnx=model.onnx; flags=(--fp16) ;;
    int8) onnx=model.int8.onnx; flags=(--stronglyTyped) ;;
    *) echo "error: precision must be fp16, fp32 or int8, got $precision" >&2; exit 2 ;;
esac
[[ -f "$bundle/$onnx" ]] || {
    echo "error: $bundle/$onnx missing (int8 needs: weedseg export --int8 --int8-target tensorrt)" >&2
    exit 2
}

# TensorRT version and GPU name: both go into the engine's name and the manifest.
trt_version=$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null ||
    dpkg-query -W -f='${Version}' libnvinfer10 2>/dev/null | cut -d- -f1 || true)
[[ -n "$trt_version" ]] || { echo "error: cannot tell the TensorRT version" >&2; exit 2; }
if [[ -r /proc/device-tree/model ]]; then
    gpu=$(tr -d '\0' </proc/device-tree/model)
else
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader --id=0)
fi
slug=$(printf '%s' "$gpu" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9.]+/-/g; s/^-+|-+$//g')
engine="model.$precision.trt$trt_version.$slug.engine"

# min/opt/max shapes from the manifest (python3 standard library only).
read -r min_shape opt_shape max_shape < <(python3 - "$manifest" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))["input"]
def shape(batch, h, w):
    dims = (batch, h, w, 3) if spec["layout"] == "NHWC" else (batch, 3, h, w)
    return "x".join(str(d) for d in dims)
if spec["dynamic"]:
    print(shape(1, spec["min_size"], spec["min_size"]),
          shape(min(4, spec["max_batch"]), spec["height"], spec["width"]),
          shape(spec["max_batch"], spec["max_size"], spec["max_size"]))
else:
    fixed = shape(1, spec["height"], spec["width"])
    print(fixed, fixed, fixed)
PY
)

echo "building $engine: TensorRT $trt_version, $gpu, profile $min_shape / $opt_shape / $max_shape"
"$trtexec" --onnx="$bundle/$onnx" \
    --minShapes=images:"$min_shape" --optShapes=images:"$opt_shape" --maxShapes=images:"$max_shape" \
    "${flags[@]}" --memPoolSize=workspace:"${workspace_mb}M" \
    --timingCacheFile="$bundle/../tensorrt.timing.cache" \
    --skipInference --saveEngine="$bundle/.$engine.tmp"
mv "$bundle/.$engine.tmp" "$bundle/$engine"

# Record the engine in the manifest (entry + sha256), replacing one of the same precision,
# TensorRT version and GPU; the manifest is replaced in one rename.
python3 - "$bundle" "$engine" "$precision" "$trt_version" "$gpu" "$onnx" \
    "$min_shape" "$opt_shape" "$max_shape" "$workspace_mb" <<'PY'
import hashlib, json, os, sys
root, engine, precision, version, gpu, onnx, lo, opt, hi, workspace = sys.argv[1:]
path = os.path.join(root, "weedseg.json")
manifest = json.load(open(path))
digest = hashlib.sha256(open(os.path.join(root, engine), "rb").read()).hexdigest()
dims = lambda s: [int(d) for d in s.split("x")]
entry = {"file": engine, "precision": precision, "tensorrt_version": version, "gpu": gpu,
         "onnx": onnx, "workspace_mb": int(workspace), "built_with": "trtexec",
         "profile": {"input": "images", "min": dims(lo), "opt": dims(opt), "max": dims(hi)}}
same = lambda e: (e["precision"], e["tensorrt_version"], e["gpu"]) == (precision, version, gpu)
manifest["tensorrt"] = [e for e in manifest.get("tensorrt", []) if not same(e)] + [entry]
manifest["files"][engine] = digest
with open(path + ".tmp", "w") as f:
    json.dump(manifest, f, indent=2)
os.replace(path + ".tmp", path)
PY
echo "engine: $bundle/$engine (recorded in $manifest)"
