"""Results JSON: assembly, schema validation with the failing field named, bootstrap summaries."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmarks.results import (
    SCHEMA_VERSION,
    assemble_results,
    load_schema,
    read_results,
    summarize,
    validate_results,
    write_json,
)
from deeplightmd.cli import cli
from deeplightmd.errors import SchemaError

FP = "ab" * 32


def make_results(method: str = "m", psnr: list[float] | None = None, fingerprint: str = FP,
                 seed: int = 0, params: int = 10, mpx: float = 1.0) -> dict:
    """A valid results document with the given per-clip PSNR values (no store needed)."""
    psnr = [20.0, 21.0, 22.5, 19.0] if psnr is None else list(psnr)
    n = len(psnr)
    return assemble_results(
        method={"name": method, "version": "0.1.0", "family": "interpolation", "params": params,
                "hparams": {}, "inputs": ["lr_ntl"], "citation": "ref"},
        dataset={"name": "fake", "fingerprint": fingerprint, "n_clips": n, "regions": ["r1"]},
        protocol={"budget": "small", "seed": seed, "steps": 1},
        per_clip={"clip_id": list(range(n)), "psnr": psnr, "ssim": [0.5] * n,
                  "piqe": [float("nan")] * n},
        regional={"r1": {"psnr": 18.0, "lit_iou": float("inf")}},
        runtime={"train_seconds": None, "inference_seconds": 0.5, "megapixels_per_second": mpx,
                 "total_seconds": 1.0},
        device=torch.device("cpu"), seed=seed)


def test_assembled_results_validate_and_summarise():
    doc = make_results()
    assert doc["schema_version"] == SCHEMA_VERSION == load_schema("results")["properties"][
        "schema_version"]["const"]
    est = doc["metrics"]["local"]["psnr"]
    assert est["n"] == 4 and est["mean"] == pytest.approx(20.625)
    assert est["ci_low"] <= est["mean"] <= est["ci_high"]
    # non-finite values become null and are left out of the summary
    assert doc["per_clip"]["piqe"] == [None] * 4
    assert doc["metrics"]["local"]["piqe"] == {"mean": None, "ci_low": None, "ci_high": None,
                                                "n": 0}
    assert doc["metrics"]["regional"]["r1"]["lit_iou"] is None
    assert doc["hardware"]["cpu"] and doc["hardware"]["device"] == "cpu"
    json.dumps(doc, allow_nan=False)


def test_summarize_ignores_missing_values():
    s = summarize([1.0, None, 3.0, float("nan")], seed=1)
    assert s["n"] == 2 and s["mean"] == 2.0 and 1.0 <= s["ci_low"] <= s["ci_high"] <= 3.0


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["dataset"].pop("fingerprint"), "dataset.fingerprint"),
    (lambda d: d["metrics"]["local"]["psnr"].update(mean="high"), "metrics.local.psnr.mean"),
    (lambda d: d["per_clip"]["psnr"].__setitem__(2, "x"), "per_clip.psnr.2"),
    (lambda d: d.update(source="guessed"), "source"),
    (lambda d: d["protocol"].update(budget="huge"), "protocol.budget"),
    (lambda d: d.update(schema_version=99), "schema_version"),
])
def test_broken_results_name_the_field(edit, field):
    doc = copy.deepcopy(make_results())
    edit(doc)
    with pytest.raises(SchemaError, match=rf"at field '{field}'"):
        validate_results(doc)


def test_read_results_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match=r"bad.json is not valid JSON"):
        read_results(bad)
    with pytest.raises(SchemaError, match="file not found"):
        read_results(tmp_path / "missing.json")
    doc = make_results()
    del doc["runtime"]["inference_seconds"]
    write_json(doc, tmp_path / "r.json")
    with pytest.raises(SchemaError, match=r"r\.json fails .* 'runtime\.inference_seconds'"):
        read_results(tmp_path / "r.json")


def test_validate_cli_names_field(tmp_path):
    doc = make_results()
    doc["method"]["params"] = -3
    write_json(doc, tmp_path / "r.json")
    result = CliRunner().invoke(cli, ["leaderboard", "validate", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "field 'method.params'" in result.output and result.output.count("\n") == 1
    write_json(make_results(), tmp_path / "ok.json")
    ok = CliRunner().invoke(cli, ["leaderboard", "validate", str(tmp_path / "ok.json")])
    assert ok.exit_code == 0 and "valid results" in ok.output


def test_mean_matches_numpy():
    rng = np.random.default_rng(3)
    values = rng.normal(25, 2, 50).tolist()
    doc = make_results(psnr=values)
    assert doc["metrics"]["local"]["psnr"]["mean"] == pytest.approx(np.mean(values))


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["per_clip"]["psnr"].__setitem__(0, 1e308), "per_clip.psnr.0"),
    (lambda d: d["metrics"]["local"]["ssim"].update(mean=1.5), "metrics.local.ssim.mean"),
    (lambda d: d["metrics"]["regional"]["r1"].update(psnr=float("nan")),
     "metrics.regional.r1.psnr"),
    (lambda d: d["runtime"].update(total_seconds=float("inf")), "runtime.total_seconds"),
])
def test_results_with_non_finite_or_out_of_range_values_are_refused(change, field):
    doc = make_results()
    validate_results(doc)
    change(doc)
    with pytest.raises(SchemaError, match=f"field '{re.escape(field)}'"):
        validate_results(doc)


def test_every_run_has_its_own_run_id():
    a, b = make_results(), make_results()
    assert a["run_id"] != b["run_id"] and len(a["run_id"]) == 32


def test_results_record_the_machines_numerics():
    from benchmarks.leaderboard import row_from_results
    from benchmarks.results import cpu_isa_flags, onednn_version
    doc = make_results()
    hw = doc["hardware"]
    assert hw["threads"] == torch.get_num_threads() >= 1
    assert hw["interop_threads"] == torch.get_num_interop_threads() >= 1
    assert hw["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert hw["cpu_flags"] == cpu_isa_flags() and hw["onednn"] == onednn_version()
    row = row_from_results(doc)
    assert {k: row["hardware"][k] for k in ("threads", "cpu_capability", "cpu_flags")} == \
        {k: hw[k] for k in ("threads", "cpu_capability", "cpu_flags")}
    # results written before the numerics fields existed stay valid, and so do their rows
    for key in ("threads", "interop_threads", "cpu_capability", "cpu_flags", "onednn"):
        del doc["hardware"][key]
    validate_results(doc)
    assert "threads" not in row_from_results(doc)["hardware"]
    doc["hardware"]["threads"] = 0
    with pytest.raises(SchemaError, match=r"hardware\.threads"):
        validate_results(doc)


def test_isa_flags_and_onednn_version_are_parsed():
    from benchmarks.results import cpu_isa_flags, onednn_version
    cpuinfo = ("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile "
               "f16c ht\nprocessor\t: 1\n")
    assert cpu_isa_flags(cpuinfo) == ["amx_tile", "avx2", "avx512_vnni", "avx512f", "f16c", "fma"]
    assert cpu_isa_flags("processor : 0\n") == []
    assert onednn_version("  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa)\n") == "3.12.0"
    assert onednn_version("  - oneDNN v2.7.3\n") == "2.7.3"
    assert onednn_version("  - no dnn here\n") is None
