"""DeepLightSR: the calibration-aware multi-modal NTL super-resolution method of Zhang et al.
(IJCAI 2024), registered in the benchmark harness as ``deeplightsr``.

Modules: :mod:`deeplightsr.alignment` (calibration-aware alignment), :mod:`deeplightsr.fusion`
(auxiliary-to-main fusion), :mod:`deeplightsr.refinement` (auxiliary-embedded multiscale
refinement), :mod:`deeplightsr.model` (``DeepLightSRNet``), :mod:`deeplightsr.loss`
(``DeepLightLoss``), :mod:`deeplightsr.method` (the registered method) and
:mod:`deeplightsr.ablations` (``deeplightsr-noalign|noisp|single|nodmo|nodem``). See
docs/deeplightsr.md for what comes from the paper and what is assumed."""
