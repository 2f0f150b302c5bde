"""Calibration-based baselines: statistical downscaling of LR NTL with daytime covariates.

The classic remote-sensing route (area-to-point regression downscaling, e.g. Kyriakidis 2004;
applied to nighttime lights by Ye et al. 2021 and others):

1. **Covariates** at HR from the normalised DMO and DEM: the 7 DMO bands (z-scores), NDVI, NDBI
   and MNDWI (from reflectance, Landsat-8 OLI band order assumed), the DEM (z-score) and its slope
   (gradient magnitude per HR pixel) — 12 features, :data:`FEATURE_NAMES`.
2. **Regression at the LR scale**: the covariates are block-averaged to the LR grid and a
   regressor maps them to the LR NTL in normalised log1p space, fitted on training clips only
   (no HR NTL is used).
3. **Prediction at HR**: the regressor is applied to the HR covariates (the usual scale-invariance
   assumption of regression downscaling) and the trend is converted to radiance.
4. **Area-to-point correction** in radiance space: ``backprojection_iters`` rounds of adding the
   bilinear-interpolated LR residual (``LR - blockmean(SR)``, clamped at 0), then an exact
   block-wise correction (multiplicative where the block mean is > 0, else the LR value) so that
   ``blockmean_8x8(SR) == LR`` holds to float precision: the output re-aggregates to its LR input.

Note the consistency target is the LR *as observed* (with the sensor's gain, offset and blur);
this family does not undo the sensor model, which is part of why it is a weak baseline.

Two variants:

- ``downscale-gbrt``: scikit-learn ``HistGradientBoostingRegressor`` (least squares). The fitted
  trees are exported to plain tensors (feature index, threshold, children, leaf value per node) and
  predicted by a vectorised torch traversal; checkpoints hold only those tensors (safetensors),
  so loading never unpickles anything and needs no ``skops``.
- ``downscale-ridge``: a GWR-like linear model: a global ridge regression fitted on the training
  clips gives prior coefficients; at prediction each clip gets its own ridge fit on its LR pixels,
  shrunk towards the prior with ``prior_weight`` pseudo-observations (geographical weighting at
  the scale of a clip). Coefficients and feature standardisation are tensors.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np
import torch

from baselines._common import (
    block_expand,
    block_mean,
    hparams_for_budget,
    require,
    slope,
    spectral_indices,
    upsample,
)
from benchmarks.method import Batch, Method, MethodContext
from benchmarks.protocol import TrainProtocol
from benchmarks.registry import register_method
from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer

FEATURE_NAMES = ("b1", "b2", "b3", "b4", "b5", "b6", "b7", "ndvi", "ndbi", "mndwi", "dem", "slope")


def hr_covariates(dmo: torch.Tensor, dem: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
    """The :data:`FEATURE_NAMES` covariates ``(B, 12, H, W)`` from normalised DMO and DEM."""
    reflectance = normalizer.denormalize("dmo", dmo)
    return torch.cat([dmo, spectral_indices(reflectance), dem, slope(dem)], dim=1)


def reaggregate(sr: torch.Tensor, lr: torch.Tensor, ratio: int, iters: int) -> torch.Tensor:
    """Make HR radiance ``sr`` re-aggregate (block mean) exactly to LR radiance ``lr``.

    ``iters`` rounds of iterative back-projection with bilinear residuals (smooth corrections),
    then an exact block-wise fix; the result is non-negative.
    """
    out = torch.clamp(sr, min=0.0)
    for _ in range(iters):
        out = torch.clamp(out + upsample(lr - block_mean(out, ratio), ratio, "bilinear"), min=0.0)
    mean = block_mean(out, ratio)
    positive = mean > 1e-12
    scale = torch.where(
        positive, lr / torch.where(positive, mean, torch.ones_like(mean)), torch.zeros_like(mean)
    )
    return torch.where(
        block_expand(positive, ratio), out * block_expand(scale, ratio), block_expand(lr, ratio)
    )


def collect_lr_samples(
    train: torch.utils.data.Dataset,
    normalizer: Normalizer,
    ratio: int,
    max_clips: int,
    max_samples: int,
    seed: int,
    method: str = "downscaling",
) -> tuple[np.ndarray, np.ndarray]:
    """LR-grid covariates ``(N, 12)`` and LR NTL targets ``(N,)`` from up to ``max_clips`` clips.

    Each clip contributes at most ``ceil(max_samples / clips)`` random LR pixels, so memory stays
    bounded by ``max_samples`` rows whatever the clip size.
    """
    if len(train) == 0:
        raise ConfigError(f"cannot fit {method!r} on an empty training split")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)[:max_clips].tolist()
    per_clip = math.ceil(max_samples / len(order))
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for index in order:
        sample = train[index]
        require(sample, ("lr_ntl", "dmo", "dem"), method)
        feats = hr_covariates(
            sample["dmo"][None].double(), sample["dem"][None].double(), normalizer
        )
        x = block_mean(feats, ratio)[0].flatten(1).T.numpy()
        y = sample["lr_ntl"].double().flatten().numpy()
        if len(y) > per_clip:
            keep = rng.choice(len(y), size=per_clip, replace=False)
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs)[:max_samples], np.concatenate(ys)[:max_samples]


class DownscalingMethod(Method):
    """Regression downscaling + area-to-point correction; subclasses provide the regressor."""

    family: ClassVar[str] = "calibration"
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo", "dem")
    targets: ClassVar[tuple[str, ...]] = ()  # fitted on LR NTL + covariates only
    trainable: ClassVar[bool] = True  # fitted on the training split
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {}
    STATE_KEYS: ClassVar[tuple[str, ...]] = ()  # tensors of a fitted model

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        super().__init__(context, **hparams)
        self.state: dict[str, torch.Tensor] = {}

    @classmethod
    def default_hparams(cls, budget: str) -> dict[str, Any]:
        return hparams_for_budget(cls.name or cls.__name__, cls.HPARAMS, budget)

    def fit(
        self,
        train: torch.utils.data.Dataset,
        val: torch.utils.data.Dataset | None,
        protocol: TrainProtocol,
        progress: bool = True,
    ) -> dict[str, Any]:
        x, y = collect_lr_samples(
            train,
            self.context.normalizer,
            self.context.ratio,
            int(self.hparams["max_clips"]),
            int(self.hparams["max_samples"]),
            protocol.seed,
            self.name,
        )
        self.state = self.fit_regressor(x, y, protocol.seed)
        return {"samples": len(y), "features": list(FEATURE_NAMES)}

    @abc.abstractmethod
    def fit_regressor(self, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
        """Fit LR covariates ``(N, F)`` → LR NTL ``(N,)``; return the model as tensors."""

    @abc.abstractmethod
    def trend(self, feats_hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """Regression trend ``(B, 1, H, W)`` in normalised space from HR covariates (float64)."""

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        require(batch, self.inputs, self.name)
        if not self.state:
            raise ConfigError(
                f"method {self.name!r} is not fitted: run fit() on a training split "
                "or load a checkpoint first"
            )
        norm, ratio = self.context.normalizer, self.context.ratio
        lr = batch["lr_ntl"].double()
        feats = hr_covariates(batch["dmo"].double(), batch["dem"].double(), norm)
        trend = norm.denormalize("hr_ntl", self.trend(feats, lr))
        out = reaggregate(
            trend, norm.denormalize("lr_ntl", lr), ratio, int(self.hparams["backprojection_iters"])
        )
        return norm.normalize("hr_ntl", out).to(batch["lr_ntl"].dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.STATE_KEYS) - set(state))
        if missing:
            raise ConfigError(f"checkpoint for {self.name!r} lacks tensors {missing}")
        self.state = {k: state[k].clone() for k in self.STATE_KEYS}


# ------------------------------------------------------------------------------------------------
# gradient-boosted trees


def export_hgb_trees(model: Any) -> dict[str, torch.Tensor]:
    """Flatten a fitted ``HistGradientBoostingRegressor`` into node tensors (one forest).

    Children indices are global (offset by each tree's first node); ``roots`` holds each tree's
    first node; ``baseline`` the initial prediction. Leaf values already include the shrinkage.
    """
    feature, threshold, left, right, value, leaf, missing_left, roots = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    offset = 0
    for predictors in model._predictors:  # one list per boosting iteration
        for tree in predictors:  # one tree per iteration for regression
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ConfigError("categorical splits cannot be exported")
            roots.append(offset)
            feature.append(nodes["feature_idx"].astype(np.int64))
            threshold.append(nodes["num_threshold"].astype(np.float64))
            left.append(nodes["left"].astype(np.int64) + offset)
            right.append(nodes["right"].astype(np.int64) + offset)
            value.append(nodes["value"].astype(np.float64))
            leaf.append(nodes["is_leaf"].astype(bool))
            missing_left.append(nodes["missing_go_to_left"].astype(bool))
            offset += len(nodes)
    return {
        "feature": torch.from_numpy(np.concatenate(feature)),
        "threshold": torch.from_numpy(np.concatenate(threshold)),
        "left": torch.from_numpy(np.concatenate(left)),
        "right": torch.from_numpy(np.concatenate(right)),
        "value": torch.from_numpy(np.concatenate(value)),
        "is_leaf": torch.from_numpy(np.concatenate(leaf)),
        "missing_left": torch.from_numpy(np.concatenate(missing_left)),
        "roots": torch.tensor(roots, dtype=torch.int64),
        "baseline": torch.tensor(np.asarray(model._baseline_prediction, dtype=np.float64).ravel()),
    }


def predict_trees(trees: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Sum of leaf values over the exported forest for rows ``x (N, F)`` (float64), plus baseline.

    A row goes left when ``x <= threshold`` (or the value is NaN and ``missing_left``), as in
    scikit-learn's predictor. Trees are walked one at a time, descending only the rows not yet
    at a leaf (numpy, CPU).
    """
    t = {k: v.cpu().numpy() for k, v in trees.items()}
    rows_x = x.detach().cpu().double().numpy()
    out = np.full(len(rows_x), t["baseline"][0], dtype=np.float64)
    all_rows = np.arange(len(rows_x))
    for root in t["roots"]:
        leaf_of = np.full(len(rows_x), root)
        rows, node = all_rows, leaf_of
        while True:
            active = ~t["is_leaf"][node]
            if not active.any():
                break
            rows, node = rows[active], node[active]
            vals = rows_x[rows, t["feature"][node]]
            go_left = (vals <= t["threshold"][node]) | (np.isnan(vals) & t["missing_left"][node])
            node = np.where(go_left, t["left"][node], t["right"][node])
            leaf_of[rows] = node
        out += t["value"][leaf_of]
    return torch.from_numpy(out).to(x.device)


@register_method("downscale-gbrt")
class DownscaleGBRT(DownscalingMethod):
    """Gradient-boosted regression-tree downscaling with area-to-point correction."""

    description = "gradient-boosted trees on DMO/DEM covariates + area-to-point LR correction"
    citation = (
        "Kyriakidis, P. C. (2004). A geostatistical framework for area-to-point spatial "
        "interpolation. Geographical Analysis 36(3); Ke, G. et al. (2017). LightGBM. NeurIPS."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "max_iter": 100,
            "max_leaf_nodes": 31,
            "learning_rate": 0.1,
            "max_clips": 256,
            "max_samples": 50_000,
            "backprojection_iters": 5,
        },
        "paper": {
            "max_iter": 100,
            "max_leaf_nodes": 63,
            "learning_rate": 0.1,
            "max_clips": 1024,
            "max_samples": 2_000_000,
            "backprojection_iters": 5,
        },
    }
    STATE_KEYS: ClassVar[tuple[str, ...]] = (
        "feature",
        "threshold",
        "left",
        "right",
        "value",
        "is_leaf",
        "missing_left",
        "roots",
        "baseline",
    )

    def fit_regressor(self, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(
            max_iter=int(self.hparams["max_iter"]),
            max_leaf_nodes=int(self.hparams["max_leaf_nodes"]),
            learning_rate=float(self.hparams["learning_rate"]),
            early_stopping=False,
            random_state=seed,
        )
        model.fit(x, y)
        return export_hgb_trees(model)

    def trend(self, feats_hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        b, f, h, w = feats_hr.shape
        rows = feats_hr.permute(0, 2, 3, 1).reshape(-1, f)
        return predict_trees(self.state, rows).reshape(b, 1, h, w)


# ------------------------------------------------------------------------------------------------
# GWR-like ridge


def ridge_solve(
    x: torch.Tensor, y: torch.Tensor, weight: float, prior: torch.Tensor
) -> torch.Tensor:
    """``argmin_b |y - x b|² + weight·|b - prior|²`` for ``x (..., N, P)``, ``y (..., N)``."""
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    gram = x.transpose(-2, -1) @ x + weight * eye
    rhs = (x.transpose(-2, -1) @ y[..., None])[..., 0] + weight * prior
    return torch.linalg.solve(gram, rhs)


@register_method("downscale-ridge")
class DownscaleRidge(DownscalingMethod):
    """GWR-like downscaling: per-clip ridge shrunk to global coefficients + area-to-point fix."""

    description = "clip-local ridge (GWR-like) on DMO/DEM covariates + area-to-point LR correction"
    citation = (
        "Fotheringham, A. S., Brunsdon, C., Charlton, M. (2002). Geographically weighted "
        "regression. Wiley; Kyriakidis, P. C. (2004). Geographical Analysis 36(3)."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "alpha": 1.0,
            "prior_weight": 64.0,
            "max_clips": 256,
            "max_samples": 200_000,
            "backprojection_iters": 5,
        },
        "paper": {
            "alpha": 1.0,
            "prior_weight": 256.0,
            "max_clips": 1024,
            "max_samples": 2_000_000,
            "backprojection_iters": 5,
        },
    }
    STATE_KEYS: ClassVar[tuple[str, ...]] = ("coef", "feature_mean", "feature_std")

    def _design(self, feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Standardised features plus an intercept column, ``(..., F) → (..., F + 1)``."""
        z = (feats - mean) / std
        return torch.cat([torch.ones_like(z[..., :1]), z], dim=-1)

    def fit_regressor(self, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        mean, std = xt.mean(dim=0), xt.std(dim=0).clamp(min=1e-6)
        prior = torch.zeros(xt.shape[1] + 1, dtype=torch.float64)
        prior[0] = yt.mean()
        coef = ridge_solve(self._design(xt, mean, std), yt, float(self.hparams["alpha"]), prior)
        return {"coef": coef, "feature_mean": mean, "feature_std": std}

    def trend(self, feats_hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        mean, std, prior = self.state["feature_mean"], self.state["feature_std"], self.state["coef"]
        ratio = self.context.ratio
        b = feats_hr.shape[0]
        x_lr = self._design(block_mean(feats_hr, ratio).flatten(2).transpose(1, 2), mean, std)
        coef = ridge_solve(
            x_lr, lr.flatten(1), float(self.hparams["prior_weight"]), prior.expand(b, -1)
        )  # (B, F + 1)
        x_hr = self._design(feats_hr.permute(0, 2, 3, 1), mean, std)  # (B, H, W, F + 1)
        return torch.einsum("bhwf,bf->bhw", x_hr, coef)[:, None]
