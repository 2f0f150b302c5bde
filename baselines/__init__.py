"""Baseline methods of the DeepLight benchmark: interpolation, calibration-based,
single-modality SR and multi-modality SR. Each module registers its methods with
:func:`benchmarks.registry.register_method`."""
