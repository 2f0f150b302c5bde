"""PIQE: agreement with the reference implementation (pypiqe) and the expected orderings."""

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.metrics import piqe, piqe_details


def fractal(n: int, seed: int, beta: float = 2.0) -> np.ndarray:
    """A natural-image-like 1/f^beta field, linearly mapped to radiance 10..90."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    k = np.hypot(*np.meshgrid(f, f))
    k[0, 0] = 1.0
    spectrum = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / k ** (beta / 2)
    x = np.real(np.fft.ifft2(spectrum))
    return 10.0 + 80.0 * (x - x.min()) / (x.max() - x.min())


def blocky(x: np.ndarray, b: int = 8) -> np.ndarray:
    """Block-averaged copy (JPEG-like blocking)."""
    n, m = x.shape
    return np.kron(x.reshape(n // b, b, m // b, b).mean(axis=(1, 3)), np.ones((b, b)))


def ntl_like(n: int, seed: int) -> np.ndarray:
    """Gaussian 'cities' on a dim, textured background (heavy-tailed like real NTL)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    img = ndimage.gaussian_filter(rng.lognormal(0, 1, (n, n)), 1)
    for _ in range(12):
        cy, cx = rng.uniform(0, n, 2)
        s = rng.uniform(2, 15)
        img += rng.lognormal(3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return img


def reference_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    out = {}
    for seed in (0, 1):
        x = fractal(128, seed, beta=2.0 + 0.5 * seed)
        out[f"fractal{seed}"] = x
        out[f"noisy{seed}"] = np.clip(x + rng.normal(0, 8, x.shape), 0, None)
        out[f"blocky{seed}"] = blocky(x)
        out[f"blurred{seed}"] = ndimage.gaussian_filter(x, 1.0)
        out[f"ntl{seed}"] = ntl_like(128, seed)
        out[f"ntl_noisy{seed}"] = np.clip(out[f"ntl{seed}"] + rng.normal(0, 2, x.shape), 0, None)
    out["odd_size"] = fractal(128, 3)[:120, :100]  # padded symmetrically to 128 x 112
    out["constant"] = np.full((64, 64), 5.0)
    return out


def test_piqe_matches_pypiqe_scores_and_masks():
    pypiqe = pytest.importorskip("pypiqe")
    scores = []
    for name, img in reference_images().items():
        ref_score, ref_artifacts, ref_noise, ref_activity = pypiqe.piqe(img.astype(np.float64))
        ours = piqe_details(img)
        # Same float64 algorithm; only the Gaussian filter differs (scipy vs OpenCV, ~1e-13).
        assert ours.score == pytest.approx(ref_score, abs=1e-9), name
        np.testing.assert_array_equal(ours.activity, ref_activity, err_msg=name)
        np.testing.assert_array_equal(ours.artifacts, ref_artifacts, err_msg=name)
        np.testing.assert_array_equal(ours.noise, ref_noise, err_msg=name)
        scores.append(ours.score)
    assert len(set(np.round(scores, 6))) > 8  # the images really exercise different paths


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("beta", [2.0, 2.5])
def test_noise_and_blockiness_raise_piqe(seed, beta):
    x = fractal(128, seed, beta)
    noisy = np.clip(x + np.random.default_rng(100 + seed).normal(0, 8, x.shape), 0, None)
    clean = piqe(x)
    assert piqe(noisy) > clean + 3
    assert piqe(blocky(x)) > clean + 20


def test_flat_and_dark_images_score_100_without_active_blocks():
    for img in (np.zeros((64, 64)), np.full((64, 64), 3.0), -np.ones((32, 48))):
        res = piqe_details(img)
        assert res.score == 100.0
        assert res.activity.shape == img.shape and not res.activity.any()


def test_piqe_ignores_scale_and_clips_negatives():
    x = fractal(64, 5)
    assert piqe(3.0 * x) == pytest.approx(piqe(x), abs=1e-9)
    y = x - 30.0  # negative radiance counts as 0
    assert piqe(y) == pytest.approx(piqe(np.clip(y, 0, None)), abs=1e-12)
    assert piqe(x[None]) == piqe(x)
