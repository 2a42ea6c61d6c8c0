"""Datasets: the canonical labeled format, converters, checks, the synthetic field generator."""
