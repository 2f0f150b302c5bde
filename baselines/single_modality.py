"""Single-modality SR baselines: SRCNN, EDSR, RCAN and SwinIR (lightweight), LR NTL only.

Faithful, compact re-implementations of the published architectures (after BasicSR), adapted to
nighttime lights:

- **1 channel in, 1 channel out**, in the normalised (log1p z-score) space of
  :class:`deeplightmd.normalize.Normalizer`; no RGB mean shift (the data are already centred).
- **×8** (``context.ratio``): EDSR/RCAN upsample with three pixel-shuffle ×2 stages, SwinIR-light
  with one pixel-shuffle ×8 ("pixelshuffledirect"), SRCNN pre-upsamples with bicubic.
- **Residual over bicubic** (``residual=True`` by default, both budgets): every network's output
  is added to the Keys-bicubic upsampling of its input. SRCNN is bicubic-pre-upsampled in the
  paper and learning the residual there is VDSR's (Kim et al. 2016) stabiliser; EDSR, RCAN and
  SwinIR have a long feature-space skip but start from a zero image without it, which under the
  300-step CPU budget leaves them far below bicubic. ``residual=False`` gives the papers' output.
- ``small`` budget: sized for a 2-core CPU (≤ ~0.3 M parameters); ``paper``: the papers' full
  configurations (EDSR = the 32×256 model, RCAN = 10 groups × 20 blocks, SwinIR = the "light"
  model of the paper's lightweight track, SRCNN = 9-1-5 with 64/32 filters).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from baselines._common import (
    BicubicResidual,
    ResBlock,
    Upsampler,
    conv3x3,
    hparams_for_budget,
    upsample,
)
from benchmarks.method import TorchMethod
from benchmarks.registry import register_method
from deeplightmd.errors import ConfigError


class SRNetworkMethod(TorchMethod):
    """A :class:`TorchMethod` whose network is wrapped by :class:`BicubicResidual`.

    Subclasses set :attr:`HPARAMS` (``{"small": {...}, "paper": {...}}``, each with ``residual``)
    and implement :meth:`build_body` from ``self.hparams`` (the residual flag excluded).
    """

    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def default_hparams(cls, budget: str) -> dict[str, Any]:
        return hparams_for_budget(cls.name or cls.__name__, cls.HPARAMS, budget)

    def body_hparams(self) -> dict[str, Any]:
        """``self.hparams`` without ``residual``."""
        return {k: v for k, v in self.hparams.items() if k != "residual"}

    def build_network(self) -> nn.Module:
        return BicubicResidual(
            self.build_body(), self.context.ratio, bool(self.hparams["residual"])
        )

    def build_body(self) -> nn.Module:
        """The network proper, mapping the batch inputs to HR ``(B, 1, H, W)``."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------
# SRCNN


class SRCNNNet(nn.Module):
    """SRCNN: bicubic pre-upsampling, then patch extraction → non-linear mapping → reconstruction.

    Zero 'same' padding replaces the paper's valid convolutions so output and target align.
    """

    def __init__(
        self,
        ratio: int,
        feats: tuple[int, int] = (64, 32),
        kernels: tuple[int, int, int] = (9, 1, 5),
    ) -> None:
        super().__init__()
        self.ratio = ratio
        k1, k2, k3 = kernels
        self.body = nn.Sequential(
            nn.Conv2d(1, feats[0], k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(feats[0], feats[1], k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(feats[1], 1, k3, padding=k3 // 2),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.body(upsample(lr, self.ratio, "bicubic"))


@register_method("srcnn")
class SRCNN(SRNetworkMethod):
    """SRCNN (Dong et al. 2014): three convolutions on the bicubic-upsampled LR NTL."""

    family = "single-modality"
    description = "SRCNN 9-1-5 on bicubic-upsampled LR NTL (residual over bicubic)"
    citation = (
        "Dong, C., Loy, C. C., He, K., Tang, X. (2014). Learning a deep convolutional "
        "network for image super-resolution. ECCV."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"feats": (64, 32), "kernels": (9, 1, 5), "residual": True},
        "paper": {"feats": (64, 32), "kernels": (9, 1, 5), "residual": True},
    }

    def build_body(self) -> nn.Module:
        p = self.body_hparams()
        return SRCNNNet(self.context.ratio, tuple(p["feats"]), tuple(p["kernels"]))


# ------------------------------------------------------------------------------------------------
# EDSR


class EDSRNet(nn.Module):
    """EDSR: head conv → residual blocks (no BN) → conv, long skip → sub-pixel upsampler → conv."""

    def __init__(
        self,
        ratio: int,
        in_channels: int = 1,
        n_feats: int = 64,
        n_resblocks: int = 16,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.head = conv3x3(in_channels, n_feats)
        self.body = nn.Sequential(
            *(ResBlock(n_feats, res_scale) for _ in range(n_resblocks)), conv3x3(n_feats, n_feats)
        )
        self.tail = nn.Sequential(Upsampler(ratio, n_feats), conv3x3(n_feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(x + self.body(x))


@register_method("edsr")
class EDSR(SRNetworkMethod):
    """EDSR (Lim et al. 2017): residual blocks without batch norm, pixel-shuffle ×2×2×2."""

    family = "single-modality"
    description = "EDSR residual network with pixel-shuffle x2x2x2 upsampling"
    citation = (
        "Lim, B., Son, S., Kim, H., Nah, S., Lee, K. M. (2017). Enhanced deep residual "
        "networks for single image super-resolution. CVPRW."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"n_feats": 32, "n_resblocks": 4, "res_scale": 1.0, "residual": True},
        "paper": {"n_feats": 256, "n_resblocks": 32, "res_scale": 0.1, "residual": True},
    }

    def build_body(self) -> nn.Module:
        return EDSRNet(self.context.ratio, 1, **self.body_hparams())


# ------------------------------------------------------------------------------------------------
# RCAN


class ChannelAttention(nn.Module):
    """Squeeze-excitation channel attention: global mean → 1×1 down → ReLU → 1×1 up → sigmoid."""

    def __init__(self, n_feats: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, n_feats // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(n_feats, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, n_feats, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class RCAB(nn.Module):
    """Residual channel attention block: conv-ReLU-conv-CA plus identity."""

    def __init__(self, n_feats: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats),
            nn.ReLU(inplace=True),
            conv3x3(n_feats, n_feats),
            ChannelAttention(n_feats, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``n_resblocks`` RCABs and a conv, with a short skip connection."""

    def __init__(self, n_feats: int, reduction: int, n_resblocks: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(RCAB(n_feats, reduction) for _ in range(n_resblocks)), conv3x3(n_feats, n_feats)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCANNet(nn.Module):
    """RCAN: residual-in-residual (groups of RCABs, long skip) → sub-pixel upsampler → conv."""

    def __init__(
        self,
        ratio: int,
        n_feats: int = 64,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.head = conv3x3(1, n_feats)
        self.body = nn.Sequential(
            *(ResidualGroup(n_feats, reduction, n_resblocks) for _ in range(n_resgroups)),
            conv3x3(n_feats, n_feats),
        )
        self.tail = nn.Sequential(Upsampler(ratio, n_feats), conv3x3(n_feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(x + self.body(x))


@register_method("rcan")
class RCAN(SRNetworkMethod):
    """RCAN (Zhang et al. 2018): residual groups of channel-attention blocks."""

    family = "single-modality"
    description = "RCAN residual-in-residual network with channel attention"
    citation = (
        "Zhang, Y., Li, K., Li, K., Wang, L., Zhong, B., Fu, Y. (2018). Image "
        "super-resolution using very deep residual channel attention networks. ECCV."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "n_feats": 32,
            "n_resgroups": 2,
            "n_resblocks": 3,
            "reduction": 8,
            "residual": True,
        },
        "paper": {
            "n_feats": 64,
            "n_resgroups": 10,
            "n_resblocks": 20,
            "reduction": 16,
            "residual": True,
        },
    }

    def build_body(self) -> nn.Module:
        return RCANNet(self.context.ratio, **self.body_hparams())


# ------------------------------------------------------------------------------------------------
# SwinIR (lightweight)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """``(B, H, W, C) → (B·nW, ws², C)`` non-overlapping windows."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B·nW, ws², C) → (B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """Swin attention mask ``(nW, ws², ws²)``: ``-100`` between tokens of different regions."""
    img = torch.zeros(1, h, w, 1, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    win = window_partition(img, ws).squeeze(-1)
    mask = win[:, None, :] - win[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention in a window with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        ).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window_size - 1
        self.register_buffer(
            "rel_index", rel[..., 0] * (2 * window_size - 1) + rel[..., 1], persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = (
            self.qkv(x)
            .reshape(bw, n, 3, self.num_heads, c // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.bias_table[self.rel_index.view(-1)].view(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(bw, self.num_heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)


class SwinLayer(nn.Module):
    """Swin transformer layer: (shifted) window attention and an MLP, each pre-norm + residual."""

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        ws, s = self.window_size, self.shift
        y = self.norm1(x)
        mask = None
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
            mask = shifted_window_mask(h, w, ws, s, x.device)
        y = window_reverse(self.attn(window_partition(y, ws), mask), ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class RSTB(nn.Module):
    """Residual Swin transformer block: ``depth`` Swin layers (alternately shifted) and a conv."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SwinLayer(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio)
            for i in range(depth)
        )
        self.conv = conv3x3(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        y = x.permute(0, 2, 3, 1)
        for layer in self.layers:
            y = layer(y)
        return x + self.conv(y.permute(0, 3, 1, 2))


class SwinIRNet(nn.Module):
    """SwinIR (lightweight variant): conv → RSTBs → LayerNorm → conv (+skip) → pixel-shuffle ×r.

    Inputs are padded (replicate) to a multiple of the window size and the output cropped back.
    """

    def __init__(
        self,
        ratio: int,
        embed_dim: int = 60,
        depths: tuple[int, ...] = (6, 6, 6, 6),
        num_heads: tuple[int, ...] = (6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ConfigError(
                f"SwinIR depths and num_heads must have the same length, got "
                f"{len(depths)} and {len(num_heads)}"
            )
        if embed_dim % max(num_heads) != 0:
            raise ConfigError(
                f"SwinIR embed_dim {embed_dim} is not divisible by num_heads {num_heads}"
            )
        self.ratio, self.window_size = ratio, window_size
        self.conv_first = conv3x3(1, embed_dim)
        self.blocks = nn.ModuleList(
            RSTB(embed_dim, d, nh, window_size, mlp_ratio)
            for d, nh in zip(depths, num_heads, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = conv3x3(embed_dim, embed_dim)
        self.upsample = nn.Sequential(conv3x3(embed_dim, ratio * ratio), nn.PixelShuffle(ratio))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        ws = self.window_size
        x = nn.functional.pad(lr, (0, (-w) % ws, 0, (-h) % ws), mode="replicate")
        x = self.conv_first(x)
        y = x
        for block in self.blocks:
            y = block(y)
        y = self.norm(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        out = self.upsample(x + self.conv_after_body(y))
        return out[..., : h * self.ratio, : w * self.ratio]


@register_method("swinir")
class SwinIR(SRNetworkMethod):
    """SwinIR-light (Liang et al. 2021): residual Swin transformer blocks, shifted windows."""

    family = "single-modality"
    description = "SwinIR-light transformer (shifted-window attention), pixel-shuffle x8"
    citation = (
        "Liang, J., Cao, J., Sun, G., Zhang, K., Van Gool, L., Timofte, R. (2021). "
        "SwinIR: Image restoration using Swin transformer. ICCVW."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "embed_dim": 32,
            "depths": (2, 2),
            "num_heads": (4, 4),
            "window_size": 8,
            "mlp_ratio": 2.0,
            "residual": True,
        },
        "paper": {
            "embed_dim": 60,
            "depths": (6, 6, 6, 6),
            "num_heads": (6, 6, 6, 6),
            "window_size": 8,
            "mlp_ratio": 2.0,
            "residual": True,
        },
    }

    def build_body(self) -> nn.Module:
        p = self.body_hparams()
        return SwinIRNet(
            self.context.ratio,
            p["embed_dim"],
            tuple(p["depths"]),
            tuple(p["num_heads"]),
            p["window_size"],
            p["mlp_ratio"],
        )
