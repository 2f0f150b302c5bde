"""Cross-domain evaluation (``bench --checkpoint C --store OTHER``, issue 19 item 5): the model
sees its inputs normalised with the statistics it was trained with — on the test clips and on the
region tiles — and the results and leaderboard row record the training store beside the
evaluation store without replacing the trained row."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from benchmarks.checkpoints import save_checkpoint
from benchmarks.evaluate import RegionalSettings
from benchmarks.leaderboard.board import add_rows, empty_board, row_from_results
from benchmarks.method import Method, MethodContext
from benchmarks.runner import run_benchmark
from deeplightmd.access._store import normalizer_of
from deeplightmd.errors import ConfigError
from deeplightmd.store_format import read_store_attrs

pytestmark = pytest.mark.usefixtures("one_thread")

ELSEWHERE = "e" * 64


class _Probe(Method):
    """Nearest-neighbour upsampling *in normalised space* plus a learned offset (0): its radiance
    output equals the nearest-upsampled LR exactly when inputs are normalised with the same
    statistics its output is denormalised with. Records every context it is built with."""

    name = "probe-normalisation"
    family = "interpolation"
    description = "test probe"
    inputs = ("lr_ntl",)
    contexts: ClassVar[list[MethodContext]] = []

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        super().__init__(context, **hparams)
        type(self).contexts.append(self.context)
        self.offset = torch.zeros(1)

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        up = torch.nn.functional.interpolate(batch["lr_ntl"], scale_factor=self.context.ratio,
                                             mode="nearest")
        return up + self.offset.to(up.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"offset": self.offset.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.offset = state["offset"].clone()


def _checkpoint(tmp_path, store: str, ratio: int | None = None):
    """A probe checkpoint whose training statistics differ from ``store``'s (as if trained on
    another store, fingerprint ``ELSEWHERE``)."""
    attrs = read_store_attrs(store)
    own = normalizer_of(attrs)
    other = replace(own, ntl_mean=own.ntl_mean + 1.5, ntl_std=own.ntl_std * 2.0)
    context = MethodContext(ratio=ratio or int(attrs["grid"]["ratio"]), normalizer=other)
    path = save_checkpoint(_Probe(context), tmp_path / "probe.safetensors",
                           store_fingerprint=ELSEWHERE, dataset="elsewhere")
    return path, other


def test_a_checkpoint_is_evaluated_with_its_own_statistics_on_clips_and_regions(
        tiny_store, tmp_path):
    path, trained_with = _checkpoint(tmp_path, tiny_store)
    plain = run_benchmark(_Probe, tiny_store, progress=False,
                          regional=RegionalSettings(tile=8, overlap=2))
    _Probe.contexts.clear()
    with pytest.warns(UserWarning, match="trained on store fingerprint e{64}"):
        crossed = run_benchmark(_Probe, tiny_store, checkpoint=path, progress=False,
                                regional=RegionalSettings(tile=8, overlap=2))
    # the model was built with the checkpoint's statistics, not the evaluation store's
    assert [c.normalizer for c in _Probe.contexts] == [trained_with]
    # identity in normalised space gives the same radiance only when both directions use the
    # same statistics: local and regional metrics equal those of the run with the store's own
    local = {k: v["mean"] for k, v in crossed["metrics"]["local"].items()}
    assert local == pytest.approx({k: v["mean"] for k, v in plain["metrics"]["local"].items()},
                                  rel=1e-5, abs=1e-6)
    assert crossed["metrics"]["regional"].keys() == plain["metrics"]["regional"].keys()
    for region, metrics in plain["metrics"]["regional"].items():
        for key in ("psnr", "total_light_rel_error"):
            assert crossed["metrics"]["regional"][region][key] == pytest.approx(
                metrics[key], rel=1e-5, abs=1e-6), (region, key)
    # the results record the training store beside the evaluation store
    fingerprint = read_store_attrs(tiny_store)["fingerprint"]
    assert crossed["dataset"]["fingerprint"] == fingerprint
    assert crossed["checkpoint"]["store_fingerprint"] == ELSEWHERE
    assert crossed["checkpoint"]["dataset"] == "elsewhere"
    assert crossed["checkpoint"]["trained_in_this_run"] is False
    # ... and so does the row, which is added beside the trained row, never over it
    trained_row, crossed_row = row_from_results(plain), row_from_results(crossed)
    assert crossed_row["training_fingerprint"] == ELSEWHERE
    assert crossed_row["dataset"]["fingerprint"] == fingerprint
    board, _ = add_rows(empty_board(), [trained_row])
    board, report = add_rows(board, [crossed_row])
    assert (report.added, report.replaced) == (1, 0)
    assert len(board["rows"]) == 2
    assert {r["training_fingerprint"] for r in board["rows"]} == {fingerprint, ELSEWHERE}


def test_a_store_stat_mismatch_would_change_the_regional_radiance(tiny_store, tmp_path):
    """The probe is sensitive: normalising region tiles with the store's statistics but
    denormalising with the checkpoint's moves the regional total light (what the first test
    rules out)."""
    from benchmarks.evaluate import predict_region
    from deeplightmd.access import RegionDataset

    _, trained_with = _checkpoint(tmp_path, tiny_store)
    name = read_store_attrs(tiny_store)["regions"][0]
    method = _Probe(MethodContext(ratio=int(read_store_attrs(tiny_store)["grid"]["ratio"]),
                                  normalizer=trained_with))
    sums = {}
    for label, normalizer in (("own", trained_with), ("store", None)):
        region = RegionDataset(tiny_store, name, tile=8, overlap=2, modalities=("lr_ntl",),
                               normalizer=normalizer)
        sums[label] = float(np.nansum(predict_region(method, region, region.stitcher(),
                                                     progress=False).sr))
    assert abs(sums["store"] - sums["own"]) > 0.01 * abs(sums["own"]), sums


def test_a_checkpoint_of_another_ratio_is_refused(tiny_store, tmp_path):
    path, _ = _checkpoint(tmp_path, tiny_store, ratio=4)
    with pytest.raises(ConfigError, match=r"trained at ratio 4, the store has ratio 8"):
        run_benchmark(_Probe, tiny_store, checkpoint=path, progress=False,
                      regional=RegionalSettings(regions=()))
