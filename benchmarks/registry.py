"""Method registry: a new method is one file plus one decorator (or one entry point).

Built-in methods live in the ``baselines`` and ``deeplightsr`` packages; every module there is
imported on first look-up, so a new ``baselines/foo.py`` with ``@register_method("foo")`` is found
without editing the harness. Outside packages declare an entry point in the ``deeplight.methods``
group, pointing at a module (imported, so its decorators run) or at a :class:`Method` subclass
(registered under the entry point's name)::

    [options.entry_points]
    deeplight.methods =
        mymethod = mypkg.mymethod:MyMethod

A user's own file is loaded with ``--plugin PATH`` (``bench``, ``methods``, ``predict``):
:func:`load_plugin` imports it, so its ``@register_method`` decorators run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from deeplightmd.errors import ConfigError

if TYPE_CHECKING:
    from benchmarks.method import Method

ENTRY_POINT_GROUP = "deeplight.methods"
BUILTIN_PACKAGES = ("baselines", "deeplightsr")


class Registry:
    """Name → :class:`Method` subclass, filled by decorators and entry points."""

    def __init__(self, kind: str, builtin_packages: tuple[str, ...] = BUILTIN_PACKAGES,
                 group: str = ENTRY_POINT_GROUP) -> None:
        self.kind = kind
        self.builtin_packages = builtin_packages
        self.group = group
        self._classes: dict[str, type[Method]] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[type[Method]], type[Method]]:
        """Class decorator registering a method under ``name`` (which must be new)."""

        def decorator(cls: type[Method]) -> type[Method]:
            existing = self._classes.get(name)
            if existing is not None and existing is not cls \
                    and existing.__qualname__ != cls.__qualname__:
                raise ConfigError(f"{self.kind} {name!r} is registered twice: by "
                                  f"{existing.__module__}.{existing.__qualname__} and "
                                  f"{cls.__module__}.{cls.__qualname__}")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorator

    def discover(self) -> None:
        """Import the built-in method modules and the entry points (once)."""
        if self._discovered:
            return
        self._discovered = True
        for package in self.builtin_packages:
            for module_name in _walk_modules(package):
                importlib.import_module(module_name)
        for ep in entry_points(group=self.group):
            loaded = ep.load()
            if inspect.isclass(loaded) and ep.name not in self._classes:
                self.register(ep.name)(loaded)

    def get(self, name: str) -> type[Method]:
        """The class registered as ``name``; unknown names raise an error listing the known ones."""
        self.discover()
        if name not in self._classes:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._classes[name]

    def names(self) -> list[str]:
        """Sorted registered names."""
        self.discover()
        return sorted(self._classes)

    def items(self) -> list[tuple[str, type[Method]]]:
        """Sorted ``(name, class)`` pairs."""
        return [(n, self._classes[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._classes


def _walk_modules(package: str) -> Iterator[str]:
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError:
        return
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield info.name


#: the project's method registry
METHODS = Registry("method")


def load_plugin(path: str | Path) -> None:
    """Import the Python file ``path`` so the methods it registers can be looked up.

    Raises:
        ConfigError: the file does not exist, is not ``.py``, or fails to import (the first
            line of the exception is named).
    """
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"--plugin {str(path)!r}: expected an existing .py file")
    module_name = f"deeplight_plugin_{path.stem}_{abs(hash(str(path.resolve()))):x}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"--plugin {str(path)!r} failed to import: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Register a :class:`~benchmarks.method.Method` subclass under ``name``."""
    return METHODS.register(name)


def get_method(name: str) -> type[Method]:
    """Look a method class up by name (built-ins and entry points are discovered first)."""
    return METHODS.get(name)
