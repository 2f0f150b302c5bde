"""DeepLightSR building blocks: warp convention, alignment and calibration recovery, the network's
shapes and the loss formula against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer
from deeplightsr.alignment import RadiometricCalibration, SpatialAlignment, flow_warp
from deeplightsr.loss import DeepLightLoss, area_downsample
from deeplightsr.model import DeepLightSRConfig, DeepLightSRNet


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is much faster than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _smooth_pairs(n: int, size: int, shift: tuple[float, float], gen: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` smooth images f (sums of Gaussian blobs) and the same f moved by ``shift`` pixels,
    both evaluated analytically at pixel centres (no resampling involved)."""
    coords = torch.arange(size, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    ntl, aux = torch.zeros(n, 1, size, size), torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(6):
            cx, cy = (torch.rand(2, generator=gen) * size).tolist()
            sigma = 2.0 + 2.0 * float(torch.rand(1, generator=gen))
            amp = float(torch.randn(1, generator=gen))
            ntl[i, 0] += amp * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
            aux[i, 0] += amp * torch.exp(-((xs - shift[0] - cx) ** 2 + (ys - shift[1] - cy) ** 2)
                                         / (2 * sigma ** 2))
    return ntl, aux


def test_flow_warp_integer_flow_is_a_roll():
    x = torch.arange(2 * 3 * 9 * 11, dtype=torch.float32).reshape(2, 3, 9, 11)
    flow = torch.zeros(2, 2, 9, 11)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # sample x at (col + 2, row - 1)
    out = flow_warp(x, flow)
    expected = torch.roll(x, shifts=(1, -2), dims=(2, 3))
    torch.testing.assert_close(out[..., 1:, :-2], expected[..., 1:, :-2])
    torch.testing.assert_close(flow_warp(x, torch.zeros(2, 2, 9, 11)), x)


def test_flow_warp_rejects_mismatched_flow():
    with pytest.raises(ConfigError, match=r"flow must be \(B, 2, H, W\) matching x"):
        flow_warp(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))


def test_alignment_recovers_known_subpixel_shift():
    """Auxiliary = NTL moved by (0.6, -0.4) px; trained on random scenes, the predicted flow on
    unseen scenes has that mean."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    shift = (0.6, -0.4)
    align = SpatialAlignment(main_channels=1, aux_channels=1, hidden=8)
    optimizer = torch.optim.Adam(align.parameters(), lr=1e-2)
    for _ in range(150):
        ntl, aux = _smooth_pairs(4, 24, shift, gen)
        aligned, _ = align(ntl, aux)
        loss = (aligned - ntl)[..., 3:-3, 3:-3].abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ntl, aux = _smooth_pairs(4, 24, shift, gen)
    with torch.no_grad():
        aligned, flow = align(ntl, aux)
    mean_flow = flow[..., 3:-3, 3:-3].mean(dim=(0, 2, 3))
    assert abs(mean_flow[0].item() - shift[0]) < 0.1
    assert abs(mean_flow[1].item() - shift[1]) < 0.1
    before = (aux - ntl)[..., 3:-3, 3:-3].abs().mean()
    after = (aligned - ntl)[..., 3:-3, 3:-3].abs().mean()
    assert after < 0.25 * before


def test_alignment_groups_warp_independently():
    align = SpatialAlignment(main_channels=2, aux_channels=4, groups=2)
    aux = torch.randn(1, 4, 8, 8)
    flow = torch.zeros(1, 4, 8, 8)
    flow[:, 0] = 1.0  # group 0 (channels 0-1) samples one pixel to the right; group 1 unmoved
    out = align.warp(aux, flow)
    torch.testing.assert_close(out[:, 2:], aux[:, 2:])
    torch.testing.assert_close(out[:, :2, :, :-1], aux[:, :2, :, 1:])
    with pytest.raises(ConfigError, match="do not split into 2 alignment groups"):
        align.warp(torch.randn(1, 3, 8, 8), flow)
    with pytest.raises(ConfigError, match="alignment groups must be >= 1"):
        SpatialAlignment(2, 4, groups=0)


def test_alignment_flow_is_rescaled_for_finer_scales():
    align = SpatialAlignment(main_channels=1, aux_channels=1)
    flow = torch.zeros(1, 2, 4, 4)
    flow[:, 0] = 0.5  # half an LR pixel = two pixels at x4
    fine = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16)
    out = align.warp(fine, flow)
    torch.testing.assert_close(out[..., :-2], fine[..., 2:])


def test_calibration_recovers_gain_and_bias():
    """LR observed by another sensor: target = 1.25·lr - 0.3 (normalised space)."""
    torch.manual_seed(0)
    calib = RadiometricCalibration(aux_channels=0, hidden=8)
    optimizer = torch.optim.Adam(calib.parameters(), lr=1e-2)
    ones = torch.ones(1, 1, 2, 2)
    assert torch.equal(calib(ones)[0], ones)  # starts as the identity
    for _ in range(200):
        lr = torch.randn(8, 1, 6, 6) * (0.5 + torch.rand(8, 1, 1, 1)) + torch.randn(8, 1, 1, 1)
        calibrated, _, _ = calib(lr)
        loss = (calibrated - (1.25 * lr - 0.3)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        _, gain, bias = calib(torch.randn(4, 1, 6, 6))
    assert torch.allclose(gain, torch.full_like(gain, 0.25), atol=0.05)
    assert torch.allclose(bias, torch.full_like(bias, -0.3), atol=0.05)


@pytest.mark.parametrize("multiscale", [True, False])
def test_network_output_shapes_at_every_scale(multiscale: bool):
    config = DeepLightSRConfig(main_channels=8, stage_channels=(8, 8, 4), aux_channels=(8, 4, 4, 4),
                               fusion_blocks=1, align_hidden=8, multiscale=multiscale)
    net = DeepLightSRNet(config)
    lr, aux = torch.randn(2, 1, 5, 3), torch.randn(2, 8, 40, 24)
    details = net.forward_details(lr, aux)
    assert [tuple(o.shape) for o in details.outputs] == [(2, 1, 5 * s, 3 * s)
                                                         for s in config.output_scales]
    assert config.output_scales == ((2, 4, 8) if multiscale else (8,))
    assert details.flow.shape == (2, 2, 5, 3) and details.gain.shape == (2,)
    # zero-initialised alignment and calibration: the module starts as the identity
    assert torch.equal(details.flow, torch.zeros_like(details.flow))
    assert torch.equal(details.calibrated_lr, lr)


def test_network_rejects_bad_inputs_and_configs():
    net = DeepLightSRNet(DeepLightSRConfig())
    with pytest.raises(ConfigError, match=r"expected lr \(B, 1, h, w\) and aux \(1, 8, 32, 32\)"):
        net(torch.zeros(1, 1, 4, 4), torch.zeros(1, 8, 16, 16))
    with pytest.raises(ConfigError, match="power-of-two ratio >= 2, got 6"):
        DeepLightSRConfig(ratio=6)
    with pytest.raises(ConfigError, match="ratio 4 needs 2 stage_channels and 3 aux_channels"):
        DeepLightSRConfig(ratio=4)
    with pytest.raises(ConfigError, match="divisible by align_groups=3"):
        DeepLightSRConfig(align_groups=3)


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_loss_matches_hand_computation():
    rng = np.random.default_rng(3)
    norm = Normalizer(ntl_mean=0.5, ntl_std=2.0)
    hr = rng.normal(0.3, 0.8, (1, 1, 8, 8))
    isp = (rng.random((1, 1, 8, 8)) > 0.5).astype(np.float64)
    outs = [rng.normal(0, 1, (1, 1, s, s)) for s in (2, 4, 8)]
    alpha, betas, tau, temp = 0.7, (0.2, 0.3, 0.5), 0.25, 0.5

    # by hand: radiance = max(expm1(2·z + 0.5), 0); block means; back to z = (log1p(r) - 0.5) / 2
    radiance = np.maximum(np.expm1(hr[0, 0] * 2.0 + 0.5), 0.0)
    expected_l1 = 0.0
    for beta, out in zip(betas, outs, strict=True):
        size = out.shape[-1]
        block = 8 // size
        target = np.empty((size, size))
        for i in range(size):
            for j in range(size):
                mean = radiance[i * block:(i + 1) * block, j * block:(j + 1) * block].mean()
                target[i, j] = (math.log1p(mean) - 0.5) / 2.0
        if block == 1:
            target = hr[0, 0]
        expected_l1 += beta * np.abs(out[0, 0] - target).mean()
    prob = 1.0 / (1.0 + np.exp(-(outs[-1] - tau) / temp))
    expected = alpha * expected_l1 + (1 - alpha) * _bce(prob, isp)

    loss = DeepLightLoss(alpha, betas, norm, isp_threshold=tau, isp_temperature=temp)
    got = loss([torch.from_numpy(o) for o in outs], torch.from_numpy(hr), torch.from_numpy(isp))
    assert got.item() == pytest.approx(expected, rel=1e-9)

    # alpha = 1: pure multiscale L1, no ISP needed
    only_l1 = DeepLightLoss(1.0, betas, norm)([torch.from_numpy(o) for o in outs],
                                              torch.from_numpy(hr))
    assert only_l1.item() == pytest.approx(expected_l1, rel=1e-9)


def test_area_downsample_radiance_vs_normalized():
    norm = Normalizer()
    hr = torch.tensor([[[[0.0, math.log1p(3.0)], [0.0, 0.0]]]], dtype=torch.float64)
    assert area_downsample(hr, 2, norm).item() == pytest.approx(math.log1p(0.75))
    assert area_downsample(hr, 2, norm, "normalized").item() == pytest.approx(math.log1p(3) / 4)


def test_loss_rejects_bad_settings():
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\], got 1.5"):
        DeepLightLoss(1.5, (1.0,))
    with pytest.raises(ConfigError, match="betas must be a non-empty list"):
        DeepLightLoss(0.9, ())
    with pytest.raises(ConfigError, match="isp_temperature must be > 0"):
        DeepLightLoss(0.9, (1.0,), isp_temperature=0.0)
    with pytest.raises(ConfigError, match="pool_space must be one of"):
        DeepLightLoss(0.9, (1.0,), pool_space="log")
    loss = DeepLightLoss(0.9, (0.5, 0.5))
    hr = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="1 outputs but 2 loss betas"):
        loss([hr], hr, hr)
    with pytest.raises(ConfigError, match="needs the 'isp' target"):
        loss([torch.zeros(1, 1, 4, 4), hr], hr)
    with pytest.raises(ConfigError, match="not an integer fraction of the HR target"):
        loss([torch.zeros(1, 1, 3, 3), hr], hr, hr)
