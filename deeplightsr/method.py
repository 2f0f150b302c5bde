"""The ``deeplightsr`` method: :class:`DeepLightSRNet` + :class:`DeepLightLoss` in the harness.

Hyper-parameters are a flat, JSON-ready dict (see :meth:`DeepLightSR.default_hparams`); the
network fields map onto :class:`~deeplightsr.model.DeepLightSRConfig`, the loss fields onto
:class:`~deeplightsr.loss.DeepLightLoss`. Ablations (``deeplightsr.ablations``) are subclasses that
change :attr:`DeepLightSR.ablation` or the auxiliary modalities.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from benchmarks.method import Batch, MethodContext, TorchMethod
from benchmarks.protocol import BUDGETS
from benchmarks.registry import register_method
from deeplightmd.errors import ConfigError
from deeplightsr.loss import DeepLightLoss
from deeplightsr.model import DeepLightSRConfig, DeepLightSRNet

#: bands of each auxiliary modality the network can read
AUX_BANDS: dict[str, int] = {"dmo": 7, "dem": 1}

#: hyper-parameters per budget (all assumed: the paper publishes no sizes, α or β_j)
BUDGET_HPARAMS: dict[str, dict[str, Any]] = {
    # 2-core CPU demo: ~0.2 M parameters, ~0.2-0.3 s per step of 8 crops of 16² LR (unloaded CPU)
    "small": {
        "main_channels": 32, "stage_channels": [24, 16, 8], "aux_channels": [16, 16, 8, 8],
        "fusion_blocks": 4, "align": True, "calibrate": True, "align_groups": 1,
        "align_hidden": 16, "multiscale": True, "conserve": False,
        "keep_light": True, "light_sigma": 0.5, "light_radius": 2,
        "alpha": 0.9, "betas": [0.2, 0.3, 0.5], "isp_threshold": 0.0, "isp_temperature": 1.0,
        "pool_space": "radiance", "radiance_weight": 0.5, "radiance_scale": 1.0,
    },
    # GPU: 16 crops of 32² LR (256² HR) per step
    "paper": {
        "main_channels": 64, "stage_channels": [64, 48, 32], "aux_channels": [64, 48, 32, 16],
        "fusion_blocks": 8, "align": True, "calibrate": True, "align_groups": 4,
        "align_hidden": 64, "multiscale": True, "conserve": False,
        "keep_light": True, "light_sigma": 0.5, "light_radius": 2,
        "alpha": 0.9, "betas": [0.2, 0.3, 0.5], "isp_threshold": 0.0, "isp_temperature": 1.0,
        "pool_space": "radiance", "radiance_weight": 0.5, "radiance_scale": 1.0,
    },
}

_NETWORK_KEYS = ("main_channels", "stage_channels", "aux_channels", "fusion_blocks", "align",
                 "calibrate", "align_groups", "align_hidden", "multiscale", "conserve",
                 "keep_light", "light_sigma", "light_radius")


@register_method("deeplightsr")
class DeepLightSR(TorchMethod):
    """DeepLightSR (Zhang et al., IJCAI 2024): LR NTL + DMO + DEM → ×8 NTL, ISP-supervised."""

    description = ("DeepLightSR: calibration-aware alignment, auxiliary-to-main fusion, "
                   "auxiliary-embedded multiscale refinement (paper's method)")
    family = "deeplight"
    citation = ("Zhang et al., DeepLight: Reconstructing High-Resolution Observations of Nighttime "
                "Light With Multi-Modal Remote Sensing Data, IJCAI 2024, arXiv:2402.15659")
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo", "dem")
    targets: ClassVar[tuple[str, ...]] = ("hr_ntl", "isp")
    #: auxiliary modalities stacked (in this order) into the network's auxiliary input
    aux_modalities: ClassVar[tuple[str, ...]] = ("dmo", "dem")
    #: hyper-parameters an ablation fixes on top of the budget defaults
    ablation: ClassVar[dict[str, Any]] = {}

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        super().__init__(context, **hparams)
        n_outputs = len(self.network_config().output_scales)
        betas = self.hparams["betas"]
        if len(betas) != n_outputs:
            raise ConfigError(f"betas {list(betas)} must have one weight per output "
                              f"({n_outputs} outputs)")
        self.criterion = DeepLightLoss(
            alpha=self.hparams["alpha"], betas=betas, normalizer=self.context.normalizer,
            isp_threshold=self.hparams["isp_threshold"],
            isp_temperature=self.hparams["isp_temperature"], pool_space=self.hparams["pool_space"],
            radiance_weight=self.hparams["radiance_weight"],
            radiance_scale=self.hparams["radiance_scale"])

    @classmethod
    def default_hparams(cls, budget: str) -> dict[str, Any]:
        """Budget defaults (``small``: CPU demo; ``paper``: GPU) with the ablation applied."""
        if budget not in BUDGETS:
            raise ConfigError(f"unknown budget {budget!r}; expected one of {list(BUDGETS)}")
        return {**copy.deepcopy(BUDGET_HPARAMS[budget]), **copy.deepcopy(cls.ablation)}

    @classmethod
    def checkpoint_hparams(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """Complete the hyper-parameters of a checkpoint saved by an earlier version: one that
        records no ``keep_light`` was trained without light keeping, one with no
        ``light_radius`` with the pixel-wise response (radius 0)."""
        if not saved:
            return saved
        defaults = {"keep_light": False} if "keep_light" not in saved else {"light_radius": 0}
        return {**defaults, **saved}

    def network_config(self) -> DeepLightSRConfig:
        """The architecture these hyper-parameters describe."""
        values = {k: self.hparams[k] for k in _NETWORK_KEYS}
        values["stage_channels"] = tuple(values["stage_channels"])
        values["aux_channels"] = tuple(values["aux_channels"])
        normalizer = self.context.normalizer
        return DeepLightSRConfig(
            ratio=self.context.ratio, ntl_mean=normalizer.ntl_mean, ntl_std=normalizer.ntl_std,
            aux_in_channels=sum(AUX_BANDS[m] for m in self.aux_modalities), **values)

    def build_network(self) -> DeepLightSRNet:
        return DeepLightSRNet(self.network_config())

    def aux_input(self, batch: Batch) -> torch.Tensor:
        """The auxiliary modalities of ``batch`` stacked along channels."""
        return torch.cat([batch[name] for name in self.aux_modalities], dim=1)

    def forward(self, batch: Batch) -> list[torch.Tensor]:
        """Multiscale outputs (coarse to fine), the last one ×ratio.

        In training, a batch carrying ``hr_ntl`` first updates the LR→HR intercalibration of a
        light-keeping network (``keep_light``, :mod:`deeplightsr.light`).
        """
        network = getattr(self.network, "module", self.network)  # the DDP wrapper in training
        if network.training and network.light is not None and "hr_ntl" in batch:
            network.light.observe(batch["lr_ntl"], batch["hr_ntl"])
        return self.network(batch["lr_ntl"], self.aux_input(batch))

    def loss(self, outputs: torch.Tensor | list[torch.Tensor], batch: Batch) -> torch.Tensor:
        """:class:`DeepLightLoss` of the multiscale outputs against ``hr_ntl`` (and ``isp``)."""
        outputs = outputs if isinstance(outputs, list) else [outputs]
        return self.criterion(outputs, batch["hr_ntl"], batch.get("isp"))


__all__ = ["AUX_BANDS", "BUDGET_HPARAMS", "DeepLightSR"]
