"""DeepLightSR's light keeping: the running LR→HR intercalibration and light-keeping outputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deeplightmd.normalize import Normalizer
from deeplightsr.light import FLOOR, KNOTS, LightKeeper, gaussian_blur, response_features

NTL = Normalizer(ntl_mean=0.2, ntl_std=0.5)


def _batch(a: float, b: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised (lr, hr) whose HR block means are exactly ``a·lr + b`` in radiance."""
    g = torch.Generator().manual_seed(seed)
    lr = torch.rand(3, 1, 4, 5, generator=g) * 50 + 1
    block = a * lr + b
    weights = torch.rand(3, 1, 32, 40, generator=g) + 0.1
    weights = weights / F.interpolate(F.avg_pool2d(weights, 8), scale_factor=8, mode="nearest")
    hr = weights * F.interpolate(block, scale_factor=8, mode="nearest")
    return NTL.normalize("lr_ntl", lr), NTL.normalize("hr_ntl", hr)


def test_the_intercalibration_is_the_least_squares_line_of_every_pixel_seen() -> None:
    keeper = LightKeeper(NTL, ratio=8, ridge=1e-6)
    for seed in range(3):
        keeper.observe(*_batch(1.3, -0.4, seed))
    x = torch.tensor([1.0, 3.0, 10.0, 40.0], dtype=torch.float64)  # inside the data
    assert torch.allclose(keeper.response(x), 1.3 * x - 0.4, atol=1e-3)
    # the block holding the brightest pixel seen so far counts as saturated and is left out
    assert 3 * 3 * 4 * 5 - 3 <= keeper.gram[0, 0].item() < 3 * 3 * 4 * 5


def test_the_response_bends_at_the_knots_where_the_data_does() -> None:
    """A sensor that sees nothing below 2 nW and is linear above: the fit follows both parts,
    where one line would over-predict the dim pixels."""
    g = torch.Generator().manual_seed(5)
    lr = torch.rand(4, 1, 8, 8, generator=g) * 30
    block = torch.where(lr < 2.0, torch.zeros_like(lr), 1.2 * (lr - 2.0))
    hr = F.interpolate(block, scale_factor=8, mode="nearest")
    keeper = LightKeeper(NTL, ratio=8, ridge=1e-6)
    keeper.observe(NTL.normalize("lr_ntl", lr), NTL.normalize("hr_ntl", hr))
    x = torch.tensor([0.3, 1.0, 1.9, 5.0, 20.0, 60.0], dtype=torch.float64)
    want = torch.where(x < 2.0, torch.zeros_like(x), 1.2 * (x - 2.0))
    assert torch.allclose(keeper.response(x), want, atol=0.05)


def test_before_any_training_pixel_the_calibration_is_the_identity() -> None:
    keeper = LightKeeper(NTL, ratio=8)
    x = torch.tensor([0.0, 0.7, 3.0, 50.0], dtype=torch.float64)
    assert torch.allclose(keeper.response(x), x)
    lr = NTL.normalize("lr_ntl", torch.tensor([[[[0.0, 3.0], [10.0, 40.0]]]]))
    assert torch.allclose(keeper.mass(lr), torch.tensor([[[[0.0, 3.0], [10.0, 40.0]]]]),
                          atol=1e-4)


def test_mass_is_never_negative() -> None:
    keeper = LightKeeper(NTL, ratio=8, ridge=1e-6)
    keeper.observe(*_batch(1.0, -5.0))
    lr = NTL.normalize("lr_ntl", torch.full((1, 1, 2, 2), 1.0))
    assert (keeper.mass(lr) == 0).all()


def test_sigma_zero_keeps_the_light_of_every_lr_pixel_exactly() -> None:
    keeper = LightKeeper(NTL, ratio=8, sigma=0.0)
    g = torch.Generator().manual_seed(1)
    mass = torch.rand(2, 1, 4, 4, generator=g) * 30
    output = NTL.normalize("hr_ntl", torch.rand(2, 1, 32, 32, generator=g) * 10)
    kept = NTL.denormalize("hr_ntl", keeper.keep(output, mass))
    blocks = F.avg_pool2d(kept, 8)
    # exact up to FLOOR's share of the ratio
    assert torch.allclose(blocks, mass, rtol=1e-3, atol=1e-3)
    # a ×2 output is kept against the same LR-pixel light
    half = keeper.keep(NTL.normalize("hr_ntl", torch.rand(2, 1, 8, 8, generator=g)), mass)
    assert torch.allclose(F.avg_pool2d(NTL.denormalize("hr_ntl", half), 2), mass, rtol=1e-2,
                          atol=2 * FLOOR)


def test_a_smooth_neighbourhood_gives_out_exactly_the_light_of_the_tile() -> None:
    """Whatever the network concentrates (here all the light of a tile in one LR pixel, while
    the calibrated light is spread), the output carries exactly the calibrated total."""
    keeper = LightKeeper(NTL, ratio=8, sigma=1.0)
    g = torch.Generator().manual_seed(2)
    mass = torch.rand(1, 1, 12, 10, generator=g) * 5
    shape = torch.zeros(1, 1, 96, 80)
    shape[..., 40:48, 40:48] = 50.0
    kept = NTL.denormalize("hr_ntl", keeper.keep(NTL.normalize("hr_ntl", shape), mass))
    assert kept.mean().item() == pytest.approx(mass.mean().item(), rel=1e-4)
    # the light stays near where it is: far from the bright block only the floor's share is left
    assert kept[..., 40:48, 40:48].mean() > 5 * kept.mean()


def test_a_uniform_deficit_is_a_uniform_factor_inside_the_tile() -> None:
    keeper = LightKeeper(NTL, ratio=8, sigma=1.0)
    mass = torch.full((1, 1, 12, 12), 5.0)
    shape = torch.rand(1, 1, 96, 96, generator=torch.Generator().manual_seed(2)) * 3
    kept = NTL.denormalize("hr_ntl", keeper.keep(NTL.normalize("hr_ntl", shape), mass))
    ratio = (kept / (shape + FLOOR))[..., 32:64, 32:64]
    assert (ratio.max() / ratio.min()).item() < 1.2


def test_outputs_saturate_at_the_brightest_hr_radiance_seen_in_training() -> None:
    keeper = LightKeeper(NTL, ratio=8, sigma=0.0)
    lr, hr = _batch(1.0, 0.0)
    keeper.observe(lr, hr)
    peak = NTL.denormalize("hr_ntl", hr).max().item()
    mass = torch.full((1, 1, 2, 2), 10 * peak)
    kept = NTL.denormalize("hr_ntl", keeper.keep(torch.zeros(1, 1, 16, 16), mass))
    assert kept.max().item() == pytest.approx(peak, rel=1e-4)


def test_gaussian_blur_keeps_a_constant_inside_sums_to_one_and_is_the_identity_at_zero() -> None:
    x = torch.full((1, 1, 15, 17), 2.5)
    assert torch.allclose(gaussian_blur(x, 1.5)[..., 5:10, 5:12], x[..., 5:10, 5:12])
    spike = torch.zeros(1, 1, 15, 15)
    spike[..., 7, 7] = 1.0
    assert gaussian_blur(spike, 1.5).sum().item() == pytest.approx(1.0, abs=1e-6)
    y = torch.rand(1, 1, 6, 6)
    assert torch.equal(gaussian_blur(y, 0.0), y)


def test_the_calibration_lives_in_the_state_dict() -> None:
    keeper = LightKeeper(NTL, ratio=8)
    keeper.observe(*_batch(1.3, -0.4))
    other = LightKeeper(NTL, ratio=8)
    other.load_state_dict(keeper.state_dict())
    assert torch.equal(other.coefficients(), keeper.coefficients())
    assert float(other.hr_max) == float(keeper.hr_max) > 0


def _observe_half(rank: int, init: str, out: str) -> None:
    import torch.distributed as tdist

    tdist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        lr, hr = _batch(1.3, -0.4)
        keeper = LightKeeper(NTL, ratio=8)
        keeper.observe(lr[rank::2], hr[rank::2])
        if rank == 0:
            torch.save({"gram": keeper.gram, "moment": keeper.moment, "hr_max": keeper.hr_max},
                       out)
    finally:
        tdist.destroy_process_group()


def test_processes_of_a_distributed_run_share_one_calibration(tmp_path) -> None:
    import torch.multiprocessing as mp

    out = tmp_path / "rank0.pt"
    mp.spawn(_observe_half, args=(f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2)
    single = LightKeeper(NTL, ratio=8)
    single.observe(*_batch(1.3, -0.4))
    shared = torch.load(out)
    assert torch.allclose(shared["gram"], single.gram, rtol=1e-12)
    assert torch.allclose(shared["moment"], single.moment, rtol=1e-12)
    assert float(shared["hr_max"]) == float(single.hr_max)


def test_blocks_holding_a_saturated_pixel_do_not_bend_the_line() -> None:
    """A bright scene whose HR saturates would flatten the line (and raise its intercept);
    blocks that touch the saturation are left out of the fit."""
    lr, hr = _batch(1.3, -0.4)
    radiance = NTL.denormalize("hr_ntl", hr)
    peak = 0.7 * radiance.max().item()
    keeper = LightKeeper(NTL, ratio=8, ridge=1e-6)
    keeper.observe(lr, NTL.normalize("hr_ntl", radiance.clamp(max=peak)))
    x = torch.tensor([2.0, 10.0, 40.0], dtype=torch.float64)
    assert torch.allclose(keeper.response(x), 1.3 * x - 0.4, atol=1e-2)
    blocks = F.max_pool2d(radiance, 8)
    assert keeper.gram[0, 0].item() == (blocks < (1 - 1e-3) * peak).sum().item() < lr.numel()
    assert float(keeper.hr_max) == pytest.approx(peak, rel=1e-5)


def test_a_checkpoint_saved_before_light_keeping_loads_without_it(tmp_path) -> None:
    """A checkpoint whose hyper-parameters predate ``keep_light`` was trained without it; it
    is rebuilt so, and its weights fit (``bench --checkpoint`` and ``predict`` load it)."""
    import json

    from benchmarks.checkpoints import (
        load_checkpoint,
        restore_weights,
        save_checkpoint,
        sidecar_path,
    )
    from deeplightsr.method import DeepLightSR

    old = DeepLightSR(keep_light=False)
    path = save_checkpoint(old, tmp_path / "old.safetensors", store_fingerprint=None)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    for key in ("keep_light", "light_sigma"):
        del meta["hparams"][key]
    side.write_text(json.dumps(meta))
    state, meta = load_checkpoint(path, DeepLightSR)
    assert meta["hparams"]["keep_light"] is False
    method = DeepLightSR(**meta["hparams"])
    restore_weights(method, state, path)
    assert method.network.light is None
    # a checkpoint that records keep_light is left as it is
    new = save_checkpoint(DeepLightSR(), tmp_path / "new.safetensors", store_fingerprint=None)
    assert load_checkpoint(new, DeepLightSR)[1]["hparams"]["keep_light"] is True


def test_a_checkpoint_saved_before_the_neighbourhood_response_loads_pixel_wise(tmp_path) -> None:
    """A light-keeping checkpoint that records no ``light_radius`` was fitted pixel-wise (its
    gram is 5×5); it is rebuilt with ``light_radius = 0`` and its calibration is kept."""
    import json

    from benchmarks.checkpoints import (
        load_checkpoint,
        restore_weights,
        save_checkpoint,
        sidecar_path,
    )
    from deeplightsr.method import DeepLightSR

    old = DeepLightSR(light_radius=0)
    old.network.light.observe(*_batch(1.3, -0.4))
    path = save_checkpoint(old, tmp_path / "old.safetensors", store_fingerprint=None)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    del meta["hparams"]["light_radius"]
    side.write_text(json.dumps(meta))
    state, meta = load_checkpoint(path, DeepLightSR)
    assert meta["hparams"]["light_radius"] == 0 and meta["hparams"]["keep_light"] is True
    method = DeepLightSR(**meta["hparams"])
    restore_weights(method, state, path)
    assert torch.equal(method.network.light.gram, old.network.light.gram)
    assert DeepLightSR.default_hparams("small")["light_radius"] == 2


def test_radius_zero_regressors_are_the_pixel_wise_ones_in_the_same_order() -> None:
    x = torch.rand(2, 1, 4, 5, dtype=torch.float64) * 20
    phi = response_features(x, 0)
    assert phi.shape == (2, 1, 4, 5, 2 + len(KNOTS))
    assert torch.equal(phi[..., 1], x) and torch.equal(phi[..., 0], torch.ones_like(x))
    wide = response_features(x, 2)
    assert wide.shape == (2, 1, 4, 5, 2 + len(KNOTS) + 24)
    assert torch.equal(wide[..., :2 + len(KNOTS)], phi)
    # the first neighbour is the pixel two up and two left, edge-replicated at the border
    assert torch.equal(wide[:, :, 2:, 2:, 2 + len(KNOTS)], x[:, :, :-2, :-2])
    assert torch.equal(wide[:, :, 0, 0, 2 + len(KNOTS)], x[:, :, 0, 0])


def test_the_neighbourhood_response_undoes_the_lr_sensors_spread() -> None:
    """An LR sensor that spreads each pixel's light over its neighbours (a point-spread
    function): the pixel-wise fit, a conditional mean of the pixel alone, cannot tell a lit
    pixel from its lit neighbours and misses the block means; the neighbourhood fit recovers
    them (RMSE ×7 lower here), and a tile's calibrated light is its true light."""
    g = torch.Generator().manual_seed(3)
    blocks = (torch.rand(6, 1, 24, 24, generator=g) < 0.15).double() * 40.0
    blocks = blocks * torch.rand(6, 1, 24, 24, generator=g, dtype=torch.float64)
    psf = torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]],
                       dtype=torch.float64)
    lr = 0.85 * F.conv2d(F.pad(blocks, (1, 1, 1, 1), mode="replicate"), psf.view(1, 1, 3, 3))
    lr = lr + 0.3
    hr = F.interpolate(blocks, scale_factor=8, mode="nearest")
    norm = Normalizer(ntl_mean=1.0, ntl_std=1.5)
    errors = {}
    for radius in (0, 2):
        keeper = LightKeeper(norm, ratio=8, ridge=1e-6, radius=radius)
        keeper.observe(norm.normalize("lr_ntl", lr[:4].float()),
                       norm.normalize("hr_ntl", hr[:4].float()))
        mass = keeper.mass(norm.normalize("lr_ntl", lr[4:].float())).double()
        inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
        errors[radius] = float((mass[inner] - blocks[4:][inner]).pow(2).mean().sqrt())
        if radius:
            response = keeper.response(lr[4:])
            assert abs(float(response[inner].sum() / blocks[4:][inner].sum()) - 1) < 0.01
            # mass = max(response, 0): next to bright pixels the deconvolution dips below 0
            assert abs(float(mass[inner].sum() / blocks[4:][inner].sum()) - 1) < 0.06
    assert errors[2] < 0.2 * errors[0]
