"""Shared fixtures: a tiny synthetic world, a tiny store built from it, and the real rasters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores are shared by pytest-xdist workers: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: real public rasters that sit beside the repository (absent on some machines)
REAL_DATA = Path(os.environ.get(
    "DEEPLIGHT_REAL_DATA",
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"))


@pytest.fixture
def one_thread():
    """One torch (and OpenMP) thread for tests of tiny tensors: on a shared 2-core machine OpenMP
    barriers make two threads far slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):  # scikit-learn's OpenMP pool too
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic world at the ``tiny`` preset (seed 0), generated once per session."""
    from deeplightmd.synth import generate_world

    out = tmp_path_factory.mktemp("world") / "tiny"
    generate_world(out, preset="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path) -> str:
    """A store built from ``tiny_world`` with the ``tiny`` manifest preset (read-only for tests)."""
    from deeplightmd.builder import build_store, load_manifest

    manifest = load_manifest("tiny", world_dir=tiny_world)
    out = tmp_path_factory.mktemp("store") / "tiny.zarr"
    build_store(manifest, str(out), workers=1, progress=False)
    return str(out)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real rasters (``../shared/data/real``); tests using it skip when absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real rasters not found at {REAL_DATA} (set DEEPLIGHT_REAL_DATA)")
    return REAL_DATA
