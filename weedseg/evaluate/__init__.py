"""Evaluation: dataset-level confusion-matrix metrics, full-resolution tiled evaluation, reports."""
