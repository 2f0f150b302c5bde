"""Keeping the light: the LR sensor intercalibrated onto the HR sensor, and outputs that carry it.

The paper's calibration-aware alignment exists to map the LR sensor onto the HR sensor's
radiometry. Trained end to end with L1 losses in log space, a calibration does not learn that
map (docs/deeplightsr.md, "Keeping the light"): an L1 fit estimates a conditional
*median*, a log-space affine map is a power law in radiance that extrapolates badly, and the
training clips of a world are mostly dark (demo: mean HR 0.65 nW·cm⁻²·sr⁻¹ on train, 14–30 in
the held-out regions), so bright scenes are rare in the crops. Regional sums then come out low.

:class:`LightKeeper` separates *how much* light an LR pixel carries from *where* it goes:

1. **Intercalibration** (*how much*): the HR light of each LR pixel, ``m = max(f(x), 0)``,
   is the least-squares fit of the HR block means on the LR radiance ``x`` of the pixel and of
   its ``(2·radius+1)²`` neighbourhood — linear in the neighbours, a continuous piecewise-linear
   response with hinges at :data:`KNOTS` in the pixel itself, linear above the last — over every
   training pixel seen so far whose HR block is not saturated (running sums kept in buffers,
   like batch normalisation's running statistics; summed over the processes of a distributed
   run). A least-squares fit estimates a conditional *mean*, so sums over many pixels are
   unbiased, and a response linear in radiance extrapolates to bright scenes the way a linear
   sensor does (gain and offset; the demo's LR sensor is ``0.85·s + 0.3``). The neighbours undo
   the LR sensor's spread (point-spread function and halo: a dim pixel next to a bright one
   carries the bright one's light): a linear filter that deconvolves, with the sensor's gain and
   offset folded in. Pixel-wise (``radius = 0``), the fit cannot tell a pixel's own light from
   its neighbours', and a region whose mix of bright and dim pixels differs from training gets
   a biased total (−8.9 % and −6.0 % in the two dim regions of another demo-preset world,
   −2.1 % and −1.5 % with ``radius = 2``; docs/deeplightsr.md). Saturated blocks would bend
   the fit: on the `standard` worlds (7 % of the training blocks saturated) a line over all
   pixels is ``0.59·x + 7.9``, over unsaturated blocks ``1.14·x − 0.03``.
2. **Light-keeping outputs** (*where*): every LR pixel gives its light ``m`` to the output
   pixels near it in proportion to the network's output ``r`` (radiance) weighted by a Gaussian
   ``G`` of ``sigma`` LR pixels: ``kept = (r + ε)·G∗(m / G∗pool(r + ε))`` (``pool`` the mean
   over each LR pixel's block). The output carries exactly the calibrated
   light of the tile, and around every LR pixel about that pixel's light, while the network
   still moves light between neighbouring LR pixels (the LR sensor's PSF spreads it over about
   one LR pixel). ``sigma = 0`` keeps the light of each LR pixel exactly.
3. **Saturation**: outputs are clipped at the brightest HR radiance seen in training (the HR
   sensor's saturation, 120 nW·cm⁻²·sr⁻¹ on the synthetic worlds), and the clipped light is
   given to the unsaturated pixels around (a second rescaling).

Everything is local (a convolution and block means), so tiled inference stays consistent.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from deeplightmd.normalize import Normalizer

#: LR radiances (nW·cm⁻²·sr⁻¹) where the fitted response may bend (×4 apart): a line fitted
#: where bright pixels dominate over-predicts the light of dim LR pixels (0.6–5 nW) by 22–39 % on
#: the demo and standard training splits (detection floor, offset, noise); the hinges bring it
#: to −3…−1 % there and leave the response linear above the last knot
KNOTS = (0.5, 2.0, 8.0)

#: relative distance to the brightest HR radiance seen under which an HR pixel counts as saturated
SATURATED = 1e-3

#: radiance (nW·cm⁻²·sr⁻¹) added to every output pixel before it is scaled to keep the light
FLOOR = 1e-2


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, 1, h, w)``, zero outside (identity at ``sigma=0``).

    Zero padding makes the blur its own transpose on a finite tile, which the exact light
    keeping of :meth:`LightKeeper.keep` needs.
    """
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))


def response_features(x: torch.Tensor, radius: int = 0) -> torch.Tensor:
    """Regressors of the response of LR radiance ``x (B, 1, h, w)``, along a new last axis.

    ``[1, x, (x − k)₊ for k in KNOTS, x at the other pixels of the (2·radius+1)² neighbourhood]``
    (row-major, edge-replicated at the tile border), shape ``(B, 1, h, w, 5 + (2r+1)² − 1)``.
    ``radius = 0`` is the pixel-wise hinged response.
    """
    parts = [torch.ones_like(x), x] + [torch.clamp(x - k, min=0) for k in KNOTS]
    if radius > 0:
        size = 2 * radius + 1
        padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        shifts = [padded[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]
                  for dy in range(size) for dx in range(size)]
        parts += shifts[:size * size // 2] + shifts[size * size // 2 + 1:]
    return torch.stack(parts, dim=-1)


class LightKeeper(nn.Module):
    """Running LR→HR intercalibration and light-keeping of outputs (see the module docstring).

    Args:
        normalizer: the NTL normalisation (converts network values to radiance and back).
        ratio: HR/LR pixel ratio.
        sigma: width (LR pixels) of the neighbourhood over which outputs keep the light.
        ridge: weight of the prior (the identity ``y = x``) before any training pixel was seen.
        passes: rescalings of the output (each after clipping at the saturation).
        radius: LR pixels around each pixel whose radiance enters its response (0: the pixel
            alone).
    """

    def __init__(self, normalizer: Normalizer, ratio: int, sigma: float = 1.0,
                 ridge: float = 1.0, passes: int = 2, radius: int = 0) -> None:
        super().__init__()
        self.ntl = normalizer
        self.ratio = ratio
        self.sigma = float(sigma)
        self.ridge = float(ridge)
        self.passes = int(passes)
        self.radius = int(radius)
        k = 2 + len(KNOTS) + (2 * self.radius + 1) ** 2 - 1
        # Σ φφᵀ and Σ φ·y over training LR pixels (φ = response_features(LR radiance),
        # y = HR block mean); gram[0, 0] is the number of pixels
        self.register_buffer("gram", torch.zeros(k, k, dtype=torch.float64))
        self.register_buffer("moment", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("hr_max", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def observe(self, lr: torch.Tensor, hr: torch.Tensor) -> None:
        """Add a training batch (normalised ``lr (B,1,h,w)``, ``hr (B,1,rh,rw)``) to the fit.

        LR pixels whose HR block holds a saturated pixel (within :data:`SATURATED` of the
        brightest HR radiance seen so far) are left out: the fit is the sensors' unsaturated
        response, and the saturation is applied to the outputs instead (:meth:`keep`).
        """
        x = self.ntl.denormalize("lr_ntl", lr).double()
        hr_radiance = self.ntl.denormalize("hr_ntl", hr).double()
        peak = hr_radiance.max()
        distributed = tdist.is_available() and tdist.is_initialized()
        if distributed:
            tdist.all_reduce(peak, op=tdist.ReduceOp.MAX)
        peak = torch.maximum(peak, self.hr_max.to(peak.device))
        y = F.avg_pool2d(hr_radiance, self.ratio)
        used = F.max_pool2d(hr_radiance, self.ratio) < (1 - SATURATED) * peak
        phi = response_features(x, self.radius)[used]
        new = torch.cat([(phi.T @ phi).reshape(-1), phi.T @ y[used]])
        if distributed:
            tdist.all_reduce(new, op=tdist.ReduceOp.SUM)
        k = self.moment.numel()
        self.gram += new[:k * k].reshape(k, k).to(self.gram.device)
        self.moment += new[k * k:].to(self.moment.device)
        self.hr_max.copy_(peak.to(self.hr_max.device))

    def coefficients(self) -> torch.Tensor:
        """Ridge-regularised least-squares coefficients of :func:`response_features` (float64);
        the ridge pulls towards the identity ``y = x``."""
        k = self.moment.numel()
        prior = torch.zeros(k, dtype=torch.float64, device=self.gram.device)
        prior[1] = 1.0
        eye = torch.eye(k, dtype=torch.float64, device=self.gram.device)
        return torch.linalg.solve(self.gram + self.ridge * eye,
                                  self.moment + self.ridge * prior)

    def response(self, x: torch.Tensor) -> torch.Tensor:
        """The fitted HR block mean (radiance, not clipped) of LR radiance ``x``: ``(B, 1, h, w)``,
        or any shape for the pixel-wise response (``radius = 0``)."""
        if self.radius > 0 and x.ndim != 4:
            raise ValueError(f"a neighbourhood response needs LR radiance (B, 1, h, w); "
                             f"got shape {tuple(x.shape)}")
        c = self.coefficients().to(x.device)
        return (response_features(x.double(), self.radius) @ c).to(x.dtype)

    def mass(self, lr: torch.Tensor) -> torch.Tensor:
        """Calibrated HR light (mean radiance of each LR pixel's block) of normalised ``lr``."""
        return torch.clamp(self.response(self.ntl.denormalize("lr_ntl", lr)), min=0)

    def keep(self, output: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
        """A normalised output whose light is ``mass``, given out around every LR pixel.

        Each LR pixel ``i`` hands its light ``m_i`` to the output pixels near it in proportion
        to ``q · G(·, i)``, ``q`` the output radiance plus :data:`FLOOR`:
        ``kept = q · G∗(m / G∗pool(q))`` (block-constant factor). With the same Gaussian ``G``
        (zero padding) in both convolutions the output's light equals ``Σ m`` exactly on any
        tile, whatever the network placed; where it placed (almost) nothing under a lit LR
        pixel, the floor spreads that pixel's light evenly. Pixels above the saturation are
        clipped and the light rescaled again (``passes`` times), giving the clipped light to the
        unsaturated pixels around.
        """
        scale = output.shape[-1] // mass.shape[-1]
        kept = self.ntl.denormalize("hr_ntl", output) + FLOOR
        peak = float(self.hr_max)
        for _ in range(self.passes if peak > 0 else 1):
            pooled = F.avg_pool2d(kept, scale) if scale > 1 else kept
            factor = gaussian_blur(mass / gaussian_blur(pooled, self.sigma).clamp(min=1e-12),
                                   self.sigma)
            if scale > 1:
                factor = F.interpolate(factor, scale_factor=scale, mode="nearest")
            kept = kept * factor
            if peak > 0:
                kept = torch.clamp(kept, max=peak)
        return self.ntl.normalize("hr_ntl", kept)


__all__ = ["FLOOR", "KNOTS", "SATURATED", "LightKeeper", "gaussian_blur", "response_features"]
