"""Sharded clips (clips larger than ``INNER_CHUNK``): same content, checked inner chunk by inner
chunk, and crops read through the dataset unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import zarr

from deeplightmd.access import DeepLightDataset
from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.inspect import check_chunk_checksums, store_info, validate_store
from deeplightmd.builder.store import INNER_CHUNK, inner_lr_side
from deeplightmd.store_format import MODALITIES, read_store_attrs


@pytest.fixture(scope="module")
def sharded_store(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny store with inner chunks of 32 HR px: each 64² clip is a shard of 2 × 2."""
    out = tmp_path_factory.mktemp("sharded") / "tiny-sharded.zarr"
    build_store(load_manifest("tiny", world_dir=tiny_world), str(out), progress=False,
                inner_chunk=32)
    return str(out)


def test_inner_side_divides_the_clip_and_fits_the_limit():
    assert inner_lr_side(256, INNER_CHUNK, 8) == 32  # the paper layout: 8 × 8 inner chunks
    assert inner_lr_side(8, 32, 8) == 4
    assert inner_lr_side(48, 256, 8) == 24  # largest divisor of 48 with 8 × d <= 256
    assert inner_lr_side(16, 256, 8) == 16  # the clip fits: no sharding
    assert inner_lr_side(256, 0, 8) == 256  # 0: never shard


def test_sharded_store_holds_the_same_data(tiny_store: str, sharded_store: str):
    assert read_store_attrs(sharded_store)["fingerprint"] == read_store_attrs(tiny_store)[
        "fingerprint"]
    dmo = zarr.open_array(sharded_store, path="train/dmo")
    assert dmo.shards == (1, 7, 64, 64) and dmo.chunks == (1, 7, 32, 32)
    lr = zarr.open_array(sharded_store, path="val/lr_ntl")
    assert lr.shards == (1, 8, 8) and lr.chunks == (1, 4, 4)
    assert zarr.open_array(tiny_store, path="train/dmo").shards is None  # default: 64 <= 256
    assert validate_store(sharded_store) == []
    assert store_info(sharded_store)["layout"] == "one shard per clip of 32² HR inner chunks"
    assert store_info(tiny_store)["layout"] == "one chunk per clip"
    plain, sharded = (DeepLightDataset(s, "train", crop=4, seed=3) for s in (tiny_store,
                                                                            sharded_store))
    for i in (0, 7):
        a, b = plain[i], sharded[i]
        assert all(torch.equal(a[name], b[name]) for name in MODALITIES)


def test_checksums_name_the_clip_of_a_modified_inner_chunk_or_index(sharded_store: str,
                                                                     tmp_path: Path):
    copy = tmp_path / "copy.zarr"
    shutil.copytree(sharded_store, copy)
    assert check_chunk_checksums(str(copy)) == []
    shard = copy / "val" / "hr_ntl" / "c" / "1" / "0" / "0"
    original = shard.read_bytes()
    blob = bytearray(original)
    blob[10] ^= 0xFF  # inside the first stored inner chunk
    shard.write_bytes(bytes(blob))
    problems = check_chunk_checksums(str(copy))
    assert len(problems) == 1 and problems[0].startswith("val/hr_ntl clip 1 (inner chunk ")
    assert "CRC32C checksum mismatch" in problems[0]
    blob = bytearray(original)
    blob[-10] ^= 0xFF  # inside the shard index
    shard.write_bytes(bytes(blob))
    problems = check_chunk_checksums(str(copy))
    assert len(problems) == 1 and problems[0].startswith("val/hr_ntl clip 1 (shard index)")
