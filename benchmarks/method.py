"""The :class:`Method` interface every benchmarked method implements.

Data contract (the harness guarantees it, methods rely on it):

- A *batch* is a dict of float32 tensors from :class:`deeplightmd.access.DeepLightDataset` with
  ``normalize=True``: ``lr_ntl (B,1,h,w)``, ``hr_ntl (B,1,H,W)``, ``dmo (B,7,H,W)``,
  ``dem (B,1,H,W)``, ``isp (B,1,H,W)`` with ``H = ratio·h`` (only the modalities the method asks
  for, plus ``hr_ntl``/``isp`` when training). Values are in the space of
  :class:`deeplightmd.normalize.Normalizer`; ``self.context.normalizer`` converts to radiance.
- :meth:`Method.predict` returns ``(B, 1, H, W)`` HR NTL **in normalised space**; the harness
  converts it to radiance for the metrics.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from benchmarks.protocol import TrainProtocol
from deeplightmd.errors import ConfigError
from deeplightmd.modalities import DMO_BANDS
from deeplightmd.normalize import Normalizer

Batch = dict[str, torch.Tensor]
FAMILIES = ("interpolation", "calibration", "single-modality", "multi-modality", "deeplight")


@dataclass
class MethodContext:
    """What a method knows about the data it runs on."""

    ratio: int = 8
    normalizer: Normalizer = field(default_factory=Normalizer)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0


class Method(abc.ABC):
    """A nighttime-light super-resolution method under the benchmark protocol."""

    name: ClassVar[str] = ""                       # set by @register_method
    description: ClassVar[str] = ""                # one line for `deeplightmd methods`
    family: ClassVar[str] = ""                     # one of FAMILIES
    citation: ClassVar[str] = ""                   # the method's paper
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl",)   # modalities read by predict
    targets: ClassVar[tuple[str, ...]] = ("hr_ntl",)  # modalities needed to train
    #: DMO bands the method reads, by name and in this order. A store whose DMO lacks one (a
    #: 6-band Landsat 7 has no ``coastal``) gives that band as zeros in normalised space (the
    #: band's training mean, i.e. no information); extra store bands are not passed.
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"dmo": DMO_BANDS}
    trainable: ClassVar[bool] = False

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        self.context = context or MethodContext()
        defaults = self.default_hparams("small")
        unknown = sorted(set(hparams) - set(defaults))
        if unknown:
            raise ConfigError(f"unknown hyper-parameter(s) {unknown} for method {self.name!r}; "
                              f"expected some of {sorted(defaults)}")
        self.hparams: dict[str, Any] = {**defaults, **hparams}

    @classmethod
    def default_hparams(cls, budget: str) -> dict[str, Any]:
        """Default hyper-parameters of the method for a budget (``small`` or ``paper``)."""
        return {}

    @classmethod
    def checkpoint_hparams(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters of a checkpoint, completed for one saved by an earlier version.

        A hyper-parameter added later is absent from older checkpoints; a method whose new
        default differs from what those versions did returns the old value here, so the
        checkpoint is rebuilt as it was trained (default: unchanged).
        """
        return saved

    @classmethod
    def protocol_overrides(cls, budget: str) -> dict[str, Any]:
        """Fields of :class:`TrainProtocol` this method changes for a budget.

        For example the learning rate.
        """
        return {}

    @classmethod
    def required_modalities(cls) -> tuple[str, ...]:
        """Every modality the method needs from the store (inputs and training targets)."""
        return tuple(dict.fromkeys((*cls.inputs, *(cls.targets if cls.trainable else ()))))

    def fit(self, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset | None,
            protocol: TrainProtocol, progress: bool = True) -> dict[str, Any]:
        """Train on ``train`` (random crops), select the checkpoint on ``val``; return a report."""
        return {}

    @abc.abstractmethod
    def predict(self, batch: Batch) -> torch.Tensor:
        """HR NTL ``(B, 1, ratio·h, ratio·w)`` in normalised space for the batch's LR input."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint (safetensors); empty for non-learned methods."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict` output; a no-op by default (non-learned methods)."""
        return None

    def num_parameters(self) -> int:
        """Number of learned scalars."""
        return sum(int(t.numel()) for t in self.state_dict().values() if t.is_floating_point())


class TorchMethod(Method):
    """A method backed by one ``nn.Module`` trained with the shared loop.

    Subclasses implement :meth:`build_network` and, when the network takes more than the LR NTL,
    :meth:`forward`; a method with another objective overrides :meth:`loss`.
    """

    trainable: ClassVar[bool] = True

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        super().__init__(context, **hparams)
        torch.manual_seed(self.context.seed)
        self.network: nn.Module = self.build_network().to(self.context.device)

    @abc.abstractmethod
    def build_network(self) -> nn.Module:
        """The network, built from ``self.hparams`` and ``self.context.ratio``."""

    def forward(self, batch: Batch) -> torch.Tensor | list[torch.Tensor]:
        """Network output(s) for a batch; a list means multi-scale outputs, the last is final."""
        return self.network(*(batch[name] for name in self.inputs))

    def loss(self, outputs: torch.Tensor | list[torch.Tensor], batch: Batch) -> torch.Tensor:
        """Training objective; default: L1 between the final output and the HR NTL."""
        final = outputs[-1] if isinstance(outputs, list) else outputs
        return nn.functional.l1_loss(final, batch["hr_ntl"])

    def fit(self, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset | None,
            protocol: TrainProtocol, progress: bool = True) -> dict[str, Any]:
        from benchmarks.training import train_method
        return train_method(self, train, val, protocol, progress=progress)

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        self.network.eval()
        outputs = self.forward(batch)
        return outputs[-1] if isinstance(outputs, list) else outputs

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.network.load_state_dict(state)
        self.network.to(self.context.device)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters() if p.requires_grad)
