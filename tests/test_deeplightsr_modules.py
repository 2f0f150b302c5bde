"""DeepLightSR building blocks: warp convention, alignment and calibration recovery, the network's
shapes and the loss formula against a hand computation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer
from deeplightsr.alignment import RadiometricCalibration, SpatialAlignment, flow_warp
from deeplightsr.loss import DeepLightLoss, area_downsample
from deeplightsr.model import DeepLightSRConfig, DeepLightSRNet
from deeplightsr.refinement import conserve_block_mass

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_calibration_recovers_a_land_dependent_gain_and_bias():
    """LR observed by another sensor whose calibration depends on the land under each pixel:
    target = 1.25·lr − 0.3 where the auxiliary says "class 1", lr unchanged elsewhere. The local
    calibration starts as the identity and learns this map; a per-image affine map could not."""
    torch.manual_seed(0)
    calib = RadiometricCalibration(aux_channels=1, hidden=8)
    optimizer = torch.optim.Adam(calib.parameters(), lr=1e-2)

    def scene(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lr = torch.randn(n, 1, 12, 12)
        land = (torch.rand(n, 1, 3, 3) > 0.5).float()
        land = land.repeat_interleave(4, 2).repeat_interleave(4, 3)
        return lr, 2 * land - 1, torch.where(land > 0, 1.25 * lr - 0.3, lr)

    lr, aux, _ = scene(1)
    calibrated, gain, bias = calib(lr, aux)
    assert torch.equal(calibrated, lr) and gain.shape == bias.shape == (1, 1, 12, 12)
    for _ in range(250):
        lr, aux, target = scene(8)
        loss = (calib(lr, aux)[0] - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    lr, aux, target = scene(4)
    with torch.no_grad():
        calibrated, gain, bias = calib(lr, aux)
    inner = (..., slice(1, -1), slice(1, -1))  # zero padding at the image border
    assert (calibrated - target)[inner].abs().mean() < 0.1 * (lr - target)[inner].abs().mean()
    # the fitted map: gain·lr + bias ≈ 0.25·lr − 0.3 on class 1 and ≈ 0 elsewhere
    on_class = (aux > 0)[inner]
    assert (gain * lr + bias)[inner][on_class].mean().item() == pytest.approx(
        (0.25 * lr - 0.3)[inner][on_class].mean().item(), abs=0.05)
    assert (gain * lr + bias)[inner][~on_class].abs().mean().item() < 0.05


def _randomise_zero_layers(net: torch.nn.Module) -> None:
    """Give the zero-initialised flow/calibration outputs small random weights (so they act)."""
    with torch.no_grad():
        for param in net.parameters():
            if not param.any():
                param.normal_(0.0, 0.05)


@pytest.mark.parametrize(("keep_light", "radius"), [(False, 2), (True, 0), (True, 2)])
def test_network_is_local_crop_prediction_equals_whole_prediction(keep_light: bool, radius: int):
    """Translation equivariance with a finite receptive field: predicting a crop gives the same
    values as predicting a larger input, at every pixel farther from the crop's border than the
    receptive field (14 LR px for this config, measured from the input gradient; light keeping
    adds its Gaussian's 3 LR px and its response's neighbourhood). A per-image statistic
    anywhere in the network (the former global calibration, a global pooling) breaks this."""
    torch.manual_seed(0)
    config = DeepLightSRConfig(main_channels=8, stage_channels=(8, 8, 4),
                               aux_channels=(8, 4, 4, 4), fusion_blocks=1, align_hidden=8,
                               keep_light=keep_light, light_radius=radius)
    net = DeepLightSRNet(config).eval()
    _randomise_zero_layers(net)
    lr, aux = torch.randn(1, 1, 36, 40), torch.randn(1, 8, 288, 320)
    if keep_light:
        net.light.observe(lr, torch.randn(1, 1, 288, 320))
    r0, c0, size = 3, 6, 32  # crop LR [3:35, 6:38]
    margin = (18 + radius) if keep_light else 15
    with torch.no_grad():
        details = net.forward_details(lr, aux)
        crop = net(lr[..., r0:r0 + size, c0:c0 + size],
                   aux[..., 8 * r0:8 * (r0 + size), 8 * c0:8 * (c0 + size)])[-1]
    assert details.flow.abs().max() > 0.01 and details.gain.abs().max() > 0.01  # both active
    inner = slice(8 * margin, 8 * (size - margin))
    whole = details.outputs[-1][..., 8 * r0:8 * (r0 + size), 8 * c0:8 * (c0 + size)]
    torch.testing.assert_close(crop[..., inner, inner], whole[..., inner, inner],
                               atol=1e-5, rtol=1e-5)
    # and the crop's border does differ (zero padding), so the check is not vacuous
    assert (crop[..., :8, :] - whole[..., :8, :]).abs().max() > 1e-3


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
    assert details.flow.shape == (2, 2, 5, 3) and details.gain.shape == (2, 1, 5, 3)
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


def test_radiance_l1_mix_matches_hand_computation():
    """L1_j = (1 − w)·mean|z_SR − z_HR| + w·mean|r(z_SR) − r(z_HR)| / scale, r = denormalize."""
    rng = np.random.default_rng(5)
    norm = Normalizer(ntl_mean=0.2, ntl_std=0.5)
    hr = rng.normal(1.0, 2.0, (1, 1, 8, 8))
    outs = [rng.normal(1.0, 2.0, (1, 1, s, s)) for s in (4, 8)]
    betas, weight, scale = (0.4, 0.6), 0.3, 7.0

    def radiance(z: np.ndarray) -> np.ndarray:
        return np.maximum(np.expm1(z * 0.5 + 0.2), 0.0)

    expected = 0.0
    for beta, out in zip(betas, outs, strict=True):
        if out.shape[-1] == 4:  # radiance block means, back to z
            blocks = radiance(hr[0, 0]).reshape(4, 2, 4, 2).mean(axis=(1, 3))
            target = (np.log1p(blocks) - 0.2) / 0.5
        else:
            target = hr[0, 0]
        expected += beta * (
            (1 - weight) * np.abs(out[0, 0] - target).mean()
            + weight * np.abs(radiance(out[0, 0]) - radiance(target)).mean() / scale
        )

    loss = DeepLightLoss(1.0, betas, norm, radiance_weight=weight, radiance_scale=scale)
    got = loss([torch.from_numpy(o) for o in outs], torch.from_numpy(hr))
    assert got.item() == pytest.approx(expected, rel=1e-9)
    pure = DeepLightLoss(1.0, (1.0,), norm, radiance_weight=1.0, radiance_scale=scale)
    assert pure([torch.from_numpy(outs[1])], torch.from_numpy(hr)).item() == pytest.approx(
        np.abs(radiance(outs[1]) - radiance(hr)).mean() / scale, rel=1e-9)


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
    with pytest.raises(ConfigError, match=r"radiance_weight must be in \[0, 1\], got -0.1"):
        DeepLightLoss(0.9, (1.0,), Normalizer(), radiance_weight=-0.1)
    with pytest.raises(ConfigError, match="radiance_scale must be > 0, got 0"):
        DeepLightLoss(0.9, (1.0,), Normalizer(), radiance_weight=0.5, radiance_scale=0)
    with pytest.raises(ConfigError, match="needs the normalizer"):
        DeepLightLoss(0.9, (1.0,), radiance_weight=0.5)
    loss = DeepLightLoss(0.9, (0.5, 0.5))
    hr = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="1 outputs but 2 loss betas"):
        loss([hr], hr, hr)
    with pytest.raises(ConfigError, match="needs the 'isp' target"):
        loss([torch.zeros(1, 1, 4, 4), hr], hr)
    with pytest.raises(ConfigError, match="not an integer fraction of the HR target"):
        loss([torch.zeros(1, 1, 3, 3), hr], hr, hr)


def test_conserve_block_mass_keeps_each_block_mean_and_follows_the_logits():
    block = torch.tensor([[[[2.0, 0.0], [5.0, 1.5]]]])
    logits = torch.zeros(1, 1, 8, 8)
    logits[..., 0, 0] = 3.0  # pixel (0, 0) of block (0, 0) gets most of that block's light
    out = conserve_block_mass(block, logits)
    torch.testing.assert_close(F.avg_pool2d(out, 4), block)
    assert out[0, 0, 0, 0] > 10 * out[0, 0, 1, 1] > 0
    assert torch.equal(out[..., :4, 4:], torch.zeros(1, 1, 4, 4))  # a dark block stays dark
    torch.testing.assert_close(conserve_block_mass(block, torch.zeros(1, 1, 4, 4)),
                               F.interpolate(block, scale_factor=2, mode="nearest"))
    with pytest.raises(ValueError, match="not an integer multiple"):
        conserve_block_mass(block, torch.zeros(1, 1, 6, 8))


def test_conserving_network_outputs_average_to_the_calibrated_lr_radiance():
    """With ``conserve=True`` every output, averaged over the pixels under one LR pixel, equals the
    calibrated LR radiance of that pixel (the calibration sets the light, the heads place it)."""
    torch.manual_seed(0)
    ntl = Normalizer(ntl_mean=1.3, ntl_std=0.9)
    config = DeepLightSRConfig(main_channels=8, stage_channels=(8, 8, 4), aux_channels=(8, 4, 4, 4),
                               fusion_blocks=1, align_hidden=8, conserve=True,
                               ntl_mean=ntl.ntl_mean, ntl_std=ntl.ntl_std)
    net = DeepLightSRNet(config).eval()
    _randomise_zero_layers(net)
    lr, aux = torch.randn(2, 1, 6, 5), torch.randn(2, 8, 48, 40)
    with torch.no_grad():
        details = net.forward_details(lr, aux)
    target = ntl.denormalize("hr_ntl", details.calibrated_lr)
    assert not torch.equal(details.calibrated_lr, lr)  # the calibration is active
    for scale, output in zip(config.output_scales, details.outputs, strict=True):
        torch.testing.assert_close(F.avg_pool2d(ntl.denormalize("hr_ntl", output), scale), target,
                                   rtol=1e-4, atol=1e-4)
    free = DeepLightSRNet(dataclasses.replace(config, conserve=False))
    free.load_state_dict(net.state_dict())
    with torch.no_grad():
        unconstrained = free(lr, aux)[-1]
    assert (F.avg_pool2d(ntl.denormalize("hr_ntl", unconstrained), 8) - target).abs().max() > 1e-2
