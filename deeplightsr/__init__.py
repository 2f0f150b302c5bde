"""DeepLightSR: the calibration-aware multi-modal NTL super-resolution method of Zhang et al.
(IJCAI 2024), registered in the benchmark harness as ``deeplightsr``."""
