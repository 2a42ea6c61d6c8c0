"""Export stage: a trained model -> a self-describing bundle (ONNX, INT8, TensorRT engines).

`weedseg.export.bundle_export.export_bundle` runs the whole stage; `weedseg export` is its
command line.
The TensorRT parts (`weedseg.export.tensorrt`, `weedseg.export.trt_compat`) import no torch.
"""
