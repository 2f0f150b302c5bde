"""The method registry finds decorated classes and outside entry points."""

import subprocess
import sys
import textwrap

import pytest
import torch

from benchmarks.method import Method
from benchmarks.registry import Registry
from deeplightmd.errors import ConfigError


def _toy_registry() -> Registry:
    return Registry("method", builtin_packages=(), group="deeplight.test-none")


def test_register_and_get():
    reg = _toy_registry()

    @reg.register("toy")
    class Toy(Method):
        description = "a toy"

        def predict(self, batch):
            return torch.zeros(1)

    assert reg.get("toy") is Toy and Toy.name == "toy" and "toy" in reg
    with pytest.raises(ConfigError, match="unknown method 'nope'; known: toy"):
        reg.get("nope")


def test_duplicate_names_rejected():
    reg = _toy_registry()

    @reg.register("dup")
    class A(Method):
        def predict(self, batch):
            return torch.zeros(1)

    class B(Method):
        def predict(self, batch):
            return torch.zeros(1)

    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("dup")(B)


def test_unknown_hparam_rejected():
    class C(Method):
        @classmethod
        def default_hparams(cls, budget):
            return {"width": 4}

        def predict(self, batch):
            return torch.zeros(1)

    assert C(width=8).hparams == {"width": 8}
    with pytest.raises(ConfigError, match=r"unknown hyper-parameter\(s\) \['depth'\]"):
        C(depth=3)


def test_outside_package_entry_point(tmp_path):
    """A method in a separately installed package is found through `deeplight.methods`."""
    pkg = tmp_path / "outside_pkg"
    (pkg / "deeplight_outside").mkdir(parents=True)
    (pkg / "deeplight_outside" / "__init__.py").write_text(textwrap.dedent("""
        import torch
        from benchmarks.method import Method

        class Outside(Method):
            description = "a method from another package"
            family = "interpolation"

            def predict(self, batch):
                return torch.zeros(1)
    """))
    (pkg / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup
        setup(name="deeplight-outside", version="0.0.1", packages=["deeplight_outside"],
              entry_points={"deeplight.methods": ["outside = deeplight_outside:Outside"]})
    """))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(target), str(pkg)], check=True)
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(target)!r})
        from benchmarks.registry import Registry
        reg = Registry("method", builtin_packages=())
        cls = reg.get("outside")
        print(cls.__module__, cls.name)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["deeplight_outside", "outside"]
