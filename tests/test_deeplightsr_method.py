"""The ``deeplightsr`` method and its ablations in the harness: registry, training, prediction,
checkpoints and the structural differences of each ablation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from benchmarks.method import MethodContext
from benchmarks.protocol import TrainProtocol
from benchmarks.registry import get_method
from deeplightmd.errors import ConfigError
from deeplightsr.ablations import (
    DeepLightSRConserve,
    DeepLightSRNoAlign,
    DeepLightSRNoDEM,
    DeepLightSRNoDMO,
    DeepLightSRNoISP,
    DeepLightSRNoKeep,
    DeepLightSRSingleScale,
)
from deeplightsr.method import DeepLightSR

ALL_NAMES = ("deeplightsr", "deeplightsr-noalign", "deeplightsr-noisp", "deeplightsr-single",
             "deeplightsr-nodmo", "deeplightsr-nodem", "deeplightsr-conserve", "deeplightsr-nokeep")


pytestmark = pytest.mark.usefixtures("one_thread")


class TinyScenes(Dataset):
    """In-memory sample dicts as ``DeepLightDataset`` yields them (normalised, ×8).

    HR NTL is a few bright blobs; LR is its area average in radiance (the default ``Normalizer``
    maps ``z`` to ``expm1(z)``); DMO bands and DEM are correlated with the lights, ISP marks lit
    pixels.
    """

    def __init__(self, n: int = 4, lr_size: int = 4, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        size = 8 * lr_size
        coords = torch.arange(size, dtype=torch.float32)
        ys, xs = torch.meshgrid(coords, coords, indexing="ij")
        self.samples = []
        for _ in range(n):
            hr = torch.zeros(size, size)  # z = log1p(radiance): 0 is unlit
            for _ in range(3):
                cx, cy = (torch.rand(2, generator=gen) * size).tolist()
                hr += 2.5 * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 18.0)
            hr = hr[None]
            noise = torch.randn(7, size, size, generator=gen)
            self.samples.append({
                "lr_ntl": torch.log1p(F.avg_pool2d(torch.expm1(hr[None]).clamp_min(0), 8)[0]),
                "hr_ntl": hr,
                "dmo": 0.8 * hr.expand(7, -1, -1) + 0.2 * noise,
                "dem": -hr + 0.1 * torch.randn(1, size, size, generator=gen),
                "isp": (hr > 1).float(),
            })

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.samples[index]


def _batch(dataset: Dataset, n: int = 2) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_all_variants_registered():
    classes = (DeepLightSR, DeepLightSRNoAlign, DeepLightSRNoISP, DeepLightSRSingleScale,
               DeepLightSRNoDMO, DeepLightSRNoDEM, DeepLightSRConserve, DeepLightSRNoKeep)
    for name, cls in zip(ALL_NAMES, classes, strict=True):
        assert get_method(name) is cls and cls.name == name and cls.family == "deeplight"
    assert DeepLightSR.required_modalities() == ("lr_ntl", "dmo", "dem", "hr_ntl", "isp")
    assert DeepLightSR.default_hparams("small")["keep_light"] is True
    assert DeepLightSRNoKeep.default_hparams("paper")["keep_light"] is False


def test_training_batches_intercalibrate_the_lr_sensor_and_prediction_does_not():
    """Training forward passes add their (LR, HR) pixels to the light keeper's least-squares
    line; ``predict`` (eval mode) leaves it unchanged, so evaluation cannot move it."""
    method = DeepLightSR()
    batch = _batch(TinyScenes(n=2, lr_size=3))
    method.network.train()
    method.forward(batch)
    gram = method.network.light.gram.clone()
    # every LR pixel of the batch but the block(s) holding its brightest (saturated) HR pixel
    assert 2 * 3 * 3 - 3 <= gram[0, 0].item() < 2 * 3 * 3
    method.predict(batch)
    assert torch.equal(method.network.light.gram, gram)
    # the LR of TinyScenes is the exact area average of its HR: the response is the identity
    x = torch.tensor([0.1, 0.5, 1.5], dtype=torch.float64).view(3, 1, 1, 1).expand(3, 1, 3, 3)
    assert torch.allclose(method.network.light.response(x), x, atol=0.05)


def test_small_budget_size_and_outputs():
    method = DeepLightSR()
    assert 50_000 < method.num_parameters() <= 300_000
    batch = _batch(TinyScenes(n=2, lr_size=3))
    outputs = method.forward(batch)
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 6, 6), (2, 1, 12, 12), (2, 1, 24, 24)]
    assert tuple(method.predict(batch).shape) == (2, 1, 24, 24)
    paper = DeepLightSR(**DeepLightSR.default_hparams("paper"))
    assert paper.num_parameters() > 5 * method.num_parameters()


def test_hparam_errors():
    with pytest.raises(ConfigError, match="unknown budget 'huge'"):
        DeepLightSR.default_hparams("huge")
    with pytest.raises(ConfigError, match=r"betas \[1.0\] must have one weight per output \(3"):
        DeepLightSR(betas=[1.0])
    with pytest.raises(ConfigError, match=r"unknown hyper-parameter\(s\) \['depth'\]"):
        DeepLightSR(depth=3)


def test_loss_decreases_on_tiny_overfit_run():
    method = DeepLightSR()
    protocol = TrainProtocol(steps=60, batch_size=4, learning_rate=2e-3, val_every=60)
    data = TinyScenes(n=4)
    report = method.fit(data, None, protocol, progress=False)
    assert report["final_loss"] < 0.3 * report["first_loss"]
    # the final output is closer to HR than the bilinear upsampling of the LR it started from
    batch = _batch(data, 4)
    bilinear = F.interpolate(batch["lr_ntl"], scale_factor=8, mode="bilinear", align_corners=False)
    error = (method.predict(batch) - batch["hr_ntl"]).abs().mean()
    assert error < 0.5 * (bilinear - batch["hr_ntl"]).abs().mean()


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    batch = _batch(TinyScenes(n=2))
    trained = DeepLightSR()
    trained.fit(TinyScenes(n=2), None, TrainProtocol(steps=2, batch_size=2), progress=False)
    path = tmp_path / "deeplightsr.safetensors"
    save_file(trained.state_dict(), str(path))
    fresh = DeepLightSR(context=MethodContext(seed=1))
    assert not torch.equal(fresh.predict(batch), trained.predict(batch))
    fresh.load_state_dict(load_file(str(path)))
    assert torch.equal(fresh.predict(batch), trained.predict(batch))


def _changes_output(method: DeepLightSR, batch: dict[str, torch.Tensor], name: str) -> bool:
    altered = {**batch, name: batch[name] + torch.randn_like(batch[name])}
    return not torch.allclose(method.predict(batch), method.predict(altered))


def test_full_model_uses_both_auxiliaries():
    method, batch = DeepLightSR(), _batch(TinyScenes(n=2))
    assert _changes_output(method, batch, "dmo") and _changes_output(method, batch, "dem")


@pytest.mark.parametrize(("cls", "ignored", "used"), [(DeepLightSRNoDMO, "dmo", "dem"),
                                                       (DeepLightSRNoDEM, "dem", "dmo")])
def test_modality_ablations_ignore_their_modality(cls, ignored, used):
    method, batch = cls(), _batch(TinyScenes(n=2))
    assert ignored not in cls.inputs and ignored not in cls.required_modalities()
    assert _changes_output(method, batch, used) and not _changes_output(method, batch, ignored)
    without = {k: v for k, v in batch.items() if k != ignored}
    torch.testing.assert_close(method.predict(without), method.predict(batch))
    bands = {"dmo": 7, "dem": 1}[used]
    assert method.network.aux_encoder.stem[0].in_channels == bands


def test_noalign_has_no_alignment_parameters():
    full, ablated = DeepLightSR(), DeepLightSRNoAlign()
    full_names = {n for n, _ in full.network.named_parameters()}
    names = {n for n, _ in ablated.network.named_parameters()}
    assert any(n.startswith(("alignment.", "calibration.")) for n in full_names)
    assert not any(n.startswith(("alignment.", "calibration.")) for n in names)
    assert names < full_names
    details = ablated.network.forward_details(*_net_inputs(ablated, _batch(TinyScenes(n=1), 1)))
    assert details.flow is None and details.gain is None


def _net_inputs(method: DeepLightSR, batch: dict[str, torch.Tensor]):
    return batch["lr_ntl"], method.aux_input(batch)


def test_noisp_ignores_isp():
    method, batch = DeepLightSRNoISP(), _batch(TinyScenes(n=2))
    assert method.hparams["alpha"] == 1.0 and "isp" not in method.required_modalities()
    outputs = method.forward(batch)
    without_isp = {k: v for k, v in batch.items() if k != "isp"}
    assert method.loss(outputs, without_isp).item() == pytest.approx(
        method.criterion.reconstruction(outputs, batch["hr_ntl"]).item())
    full = DeepLightSR()
    assert full.loss(full.forward(batch), batch).item() != pytest.approx(
        0.9 * full.criterion.reconstruction(full.forward(batch), batch["hr_ntl"]).item())


def test_single_scale_has_one_head():
    method, batch = DeepLightSRSingleScale(), _batch(TinyScenes(n=2))
    outputs = method.forward(batch)
    assert len(outputs) == 1 and tuple(outputs[0].shape) == (2, 1, 32, 32)
    heads = [s.head for s in method.network.refinement.stages]
    assert heads[-1] is not None and heads[0] is None and heads[1] is None
    assert sum(s.head is not None for s in DeepLightSR().network.refinement.stages) == 3


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_variant_fits_and_predicts(name):
    method = get_method(name)()
    data = TinyScenes(n=2, lr_size=2)
    report = method.fit(data, data, TrainProtocol(steps=2, batch_size=2, val_every=2),
                        progress=False)
    assert report["best_val_l1"] is not None and report["best_step"] == 2
    batch = {k: v for k, v in _batch(data).items() if k in method.inputs}
    prediction = method.predict(batch)
    assert tuple(prediction.shape) == (2, 1, 16, 16) and torch.isfinite(prediction).all()
