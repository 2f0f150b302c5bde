"""A build on a real ``dask.distributed`` cluster (scheduler and two worker processes on
127.0.0.1) gives the same store, byte for byte in content, as the local build."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deeplightmd.store_format import read_store_attrs

distributed = pytest.importorskip("distributed")


def test_build_through_a_tcp_scheduler_matches_the_local_fingerprint(tiny_store, tiny_world,
                                                                     tmp_path):
    out = tmp_path / "distributed.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", scheduler_port=0, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        with distributed.Client(address) as client:
            worker_pids = set(client.run(os.getpid).values())
        proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "build", "--preset",
                               "tiny", "--world", str(tiny_world), "--out", str(out),
                               "--scheduler", address, "--quiet"],
                              capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids  # two separate processes
    attrs = read_store_attrs(str(out))
    assert attrs["build"]["scheduler"] == address
    assert attrs["complete"] is True
    assert attrs["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
