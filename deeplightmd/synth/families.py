"""World families: draw world K of a family from parameter ranges in a packaged YAML.

A family YAML (``deeplightmd/synth/family_specs/<name>.yaml``) holds::

    name: standard
    base: other                   # (optional) start from family ``other``'s preset, fixed, ranges
    preset: tiny                  # base size preset the draws override
    fixed: {extent: {...}}        # overrides applied to every world of the family
    ranges:                       # section.field (or section.field.i for a tuple) -> range
      sensor.gain: [0.75, 1.0]                          # uniform
      settlements.n_settlements: {range: [150, 320], log: true}   # log-uniform (ints rounded)
      sensor.shift.0: {range: [0.0, 0.35], sign: random}         # |value| in range, random sign
    outside: [sensor.gain, ...]   # (optional) keys whose ranges lie outside another family's
    outside_of: standard

World K is deterministic in (family, K): every key is drawn by its own generator seeded with
``[crc32(family), K, crc32(key)]`` (so adding a key never shifts another's draw) and the world's
own seed is drawn the same way with key ``"seed"``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

import numpy as np
import yaml

from deeplightmd.errors import ConfigError, reject_unknown
from deeplightmd.synth.config import PRESETS, WorldConfig, apply_overrides

FAMILY_PACKAGE = "deeplightmd.synth.family_specs"


@dataclass(frozen=True)
class ParamRange:
    """The range of one drawn parameter.

    Attributes:
        lo: lower bound of the (absolute) value.
        hi: upper bound of the (absolute) value.
        log: draw log-uniformly (needs ``lo > 0``).
        signed: draw the magnitude in ``[lo, hi]`` and a random sign.
    """

    lo: float
    hi: float
    log: bool = False
    signed: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        """One value from this range."""
        if self.log:
            value = float(np.exp(rng.uniform(np.log(self.lo), np.log(self.hi))))
        else:
            value = float(rng.uniform(self.lo, self.hi))
        if self.signed and rng.uniform() < 0.5:
            value = -value
        return value

    def disjoint_from(self, other: ParamRange) -> bool:
        """True when no value of this range's magnitude can fall inside ``other``'s."""
        return self.lo > other.hi or self.hi < other.lo


@dataclass(frozen=True)
class Family:
    """A family of worlds: a base preset, fixed overrides and parameter ranges."""

    name: str
    preset: str
    fixed: dict[str, dict[str, Any]]
    ranges: dict[str, ParamRange]
    outside: tuple[str, ...] = ()
    outside_of: str | None = None
    description: str = ""


def family_names() -> list[str]:
    """Names of the packaged families."""
    files = resources.files(FAMILY_PACKAGE).iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".yaml"))


def _parse_range(name: str, key: str, spec: Any) -> ParamRange:
    """A :class:`ParamRange` from ``[lo, hi]`` or ``{range: [lo, hi], log: .., sign: random}``."""
    where = f"family {name!r} range {key!r}"
    opts: dict[str, Any] = {}
    if isinstance(spec, dict):
        reject_unknown(spec, ("range", "log", "sign"), "key(s)", f" in {where}")
        opts = spec
        spec = spec.get("range")
    if (not isinstance(spec, list) or len(spec) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec)):
        raise ConfigError(f"{where} must be [lo, hi] numbers, got {spec!r}")
    lo, hi = float(spec[0]), float(spec[1])
    if not lo <= hi:
        raise ConfigError(f"{where} must have lo <= hi, got [{lo:g}, {hi:g}]")
    log = bool(opts.get("log", False))
    if log and lo <= 0:
        raise ConfigError(f"{where} is log-uniform and needs lo > 0, got {lo:g}")
    sign = opts.get("sign", "positive")
    if sign not in ("positive", "random"):
        raise ConfigError(f"{where} sign must be 'positive' or 'random', got {sign!r}")
    return ParamRange(lo, hi, log, sign == "random")


def load_family(name: str) -> Family:
    """Read and check the packaged family ``name`` (``ConfigError`` when unknown or invalid)."""
    known = family_names()
    if name not in known:
        raise ConfigError(f"unknown family {name!r}; expected one of {known}")
    text = resources.files(FAMILY_PACKAGE).joinpath(f"{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    reject_unknown(data, ("name", "description", "base", "preset", "fixed", "ranges", "outside",
                          "outside_of"), "key(s)", f" in family {name!r}")
    parent = None
    if data.get("base") is not None:
        if data["base"] == name or data["base"] not in known:
            raise ConfigError(f"family {name!r} base must be another family, got {data['base']!r}")
        parent = load_family(data["base"])
    preset = data.get("preset", parent.preset if parent else "tiny")
    if preset not in PRESETS:
        raise ConfigError(f"family {name!r} preset must be one of {sorted(PRESETS)}, "
                          f"got {preset!r}")
    ranges = dict(parent.ranges) if parent else {}
    ranges.update({k: _parse_range(name, k, v) for k, v in (data.get("ranges") or {}).items()})
    fixed = {sec: dict(v) for sec, v in parent.fixed.items()} if parent else {}
    for section, values in (data.get("fixed") or {}).items():
        if not isinstance(values, dict):
            raise ConfigError(f"family {name!r} fixed section {section!r} must be a mapping, "
                              f"got {values!r}")
        fixed.setdefault(section, {}).update(values)
    outside = tuple(data.get("outside") or ())
    reject_unknown(outside, ranges, "outside key(s)", f" in family {name!r}")
    fam = Family(name, preset, fixed, ranges, outside, data.get("outside_of"),
                 str(data.get("description", "")).strip())
    world_config(fam, 0)  # every key must name a real, valid field
    return fam


def _key_rng(name: str, index: int, key: str) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(name.encode()), index, zlib.crc32(key.encode())])


def draw_params(family: Family, index: int) -> dict[str, float]:
    """The drawn value of every ranged key of world ``index`` (before int rounding)."""
    return {key: rng_range.draw(_key_rng(family.name, index, key))
            for key, rng_range in sorted(family.ranges.items())}


def world_seed(family: Family, index: int) -> int:
    """The synthesis seed of world ``index`` of ``family``."""
    return int(_key_rng(family.name, index, "seed").integers(0, 2**31 - 1))


def _set(overrides: dict[str, dict[str, Any]], defaults: WorldConfig, key: str,
         value: float) -> None:
    """Put ``value`` at ``section.field`` (or ``section.field.i``) in ``overrides``."""
    parts = key.split(".")
    if len(parts) not in (2, 3):
        raise ConfigError(f"family range key {key!r} must be section.field or section.field.i")
    section, name = parts[0], parts[1]
    if section not in {f.name for f in fields(defaults)}:
        raise ConfigError(f"family range key {key!r}: unknown section {section!r}")
    sec = getattr(defaults, section)
    if name not in {f.name for f in fields(sec)}:
        raise ConfigError(f"family range key {key!r}: unknown field {name!r}")
    default = getattr(sec, name)
    target = overrides.setdefault(section, {})
    if len(parts) == 3:
        current = list(target.get(name, default))
        current[int(parts[2])] = value
        target[name] = current
    else:
        target[name] = round(value) if isinstance(default, int) else value


def world_overrides(family: Family, index: int) -> dict[str, dict[str, Any]]:
    """The config overrides (fixed + drawn) of world ``index``, on top of ``family.preset``."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ConfigError(f"family index must be a non-negative integer, got {index!r}")
    overrides = {s: dict(v) for s, v in PRESETS[family.preset].items()}
    for section, values in family.fixed.items():
        overrides.setdefault(section, {}).update(values)
    base = apply_overrides(WorldConfig(), overrides)
    for key, value in draw_params(family, int(index)).items():
        _set(overrides, base, key, value)
    return overrides


def world_config(family: Family, index: int) -> WorldConfig:
    """The full :class:`WorldConfig` of world ``index`` of ``family``."""
    return apply_overrides(WorldConfig(), world_overrides(family, index))


def family_record(family: Family, index: int) -> dict[str, Any]:
    """What ``world.json`` records about a family world (name, index, seed, drawn values)."""
    return {"name": family.name, "index": int(index), "seed": world_seed(family, index),
            "drawn": {k: round(v, 6) for k, v in draw_params(family, int(index)).items()}}
