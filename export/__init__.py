"""Export stage: a trained model -> a self-describing bundle (ONNX, INT8, TensorRT engines).

`export.pipeline.export_bundle` runs the whole stage; `weedseg export` is its command line.
The TensorRT parts (`export.tensorrt`, `export.trt_compat`) import no torch.
"""
