"""The modality registry: what each stored layer is, in one place.

Every modality declares its role, bands (names and units), dtype, plausible value range,
resampling (down onto the store grid, up onto an SR grid), normalisation, fill policy and plot
style. Build, statistics, normalisation, fingerprint checks, region mosaics, readers, previews,
plots and ``predict`` loop over these declarations instead of naming layers.

The five built-in modalities are :data:`BUILTIN`. A manifest adds an auxiliary layer with no
code change by giving its source a ``modality:`` block (see docs/manifest.md)::

    sources:
      population:
        files: [population.tif]
        resampling: average
        modality: {units: people per pixel, normalization: log1p, value_range: [0, 1e6]}

The DMO's bands come from the manifest too (``sensor:`` presets in
:mod:`deeplightmd.daytime`, or ``band_names``), so a store's modalities are a function of its
manifest: :func:`manifest_modalities` (build) and :func:`store_modalities` (readers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from deeplightmd.errors import ConfigError, reject_unknown

ROLES = ("main", "auxiliary", "target", "supervision")
#: ``log1p``: ``(log1p(max(x, 0)) - mean) / std``; ``zscore``: per band; ``none``: unchanged
NORMALIZATIONS = ("log1p", "zscore", "none")
PLOT_STYLES = ("ntl", "rgb", "terrain", "mask", "viridis")
FILL_POLICIES = ("zero", "nearest")
#: Landsat-8 OLI bands 1-7 (surface reflectance): the DMO bands of the packaged presets
DMO_BANDS = ("coastal", "blue", "green", "red", "nir", "swir1", "swir2")


@dataclass(frozen=True)
class Modality:
    """One stored layer.

    Attributes:
        name: variable name in the store.
        role: ``main`` (the LR input), ``auxiliary`` (extra inputs), ``target`` (HR truth) or
            ``supervision`` (used by losses only, e.g. ISP).
        grid: ``lr`` or ``hr`` (the store grid it lives on).
        band_names: one name per band.
        band_units: one unit per band (``1`` for reflectance, fractions and masks).
        dtype: store dtype.
        long_name: CF ``long_name``.
        value_range: physically plausible ``[low, high]`` (checked by ``validate``).
        resampling_down: resampling onto the store grid (the packaged presets' choice).
        resampling_up: resampling onto a finer SR grid (``predict``).
        threshold: masks: area fraction ``>= threshold`` becomes 1.
        normalization: one of :data:`NORMALIZATIONS`.
        stats_key: name of the train statistics used (``ntl`` for both radiances).
        collects_stats: this modality's train values define ``stats_key``'s statistics.
        fill: how invalid pixels inside a kept clip are filled.
        plot: one of :data:`PLOT_STYLES`.
    """

    name: str
    role: str
    grid: str = "hr"
    band_names: tuple[str, ...] = ("value",)
    band_units: tuple[str, ...] = ("1",)
    dtype: str = "float32"
    long_name: str = ""
    value_range: tuple[float, float] = (-1e30, 1e30)
    resampling_down: str = "bilinear"
    resampling_up: str = "bilinear"
    threshold: float | None = None
    normalization: str = "zscore"
    stats_key: str = ""
    collects_stats: bool = True
    fill: str = "zero"
    plot: str = "viridis"

    def __post_init__(self) -> None:
        checks = (("role", ROLES), ("normalization", NORMALIZATIONS), ("plot", PLOT_STYLES),
                  ("fill", FILL_POLICIES), ("grid", ("lr", "hr")))
        for key, allowed in checks:
            if getattr(self, key) not in allowed:
                raise ConfigError(f"modality {self.name!r}: {key} must be one of {allowed}, "
                                  f"got {getattr(self, key)!r}")
        if not self.band_names or len(self.band_units) != len(self.band_names):
            raise ConfigError(f"modality {self.name!r}: give one unit per band "
                              f"({len(self.band_names)} band(s), {len(self.band_units)} unit(s))")
        if len(set(self.band_names)) != len(self.band_names):
            raise ConfigError(f"modality {self.name!r}: band names repeat: "
                              f"{list(self.band_names)}")
        if not self.stats_key:
            object.__setattr__(self, "stats_key", self.name)

    @property
    def bands(self) -> int:
        """Number of bands."""
        return len(self.band_names)

    @property
    def units(self) -> str:
        """Units of the layer (the first band's; bands of one modality share units)."""
        return self.band_units[0]

    @property
    def band_dim(self) -> str:
        """Name of the band dimension (``band`` for the DMO, ``<name>_band`` for others)."""
        return "band" if self.name == "dmo" else f"{self.name}_band"

    def clip_dims(self) -> tuple[str, ...]:
        """Zarr ``dimension_names`` in a split group."""
        y, x = ("lr_y", "lr_x") if self.grid == "lr" else ("y", "x")
        return ("clip", self.band_dim, y, x) if self.bands > 1 else ("clip", y, x)

    def region_dims(self) -> tuple[str, ...]:
        """Dimension names in a region mosaic (``regions/<name>/lr`` or ``/hr``)."""
        return (self.band_dim, "y", "x") if self.bands > 1 else ("y", "x")

    def array_attrs(self) -> dict[str, Any]:
        """Attributes written on the stored array."""
        out: dict[str, Any] = {"units": self.units, "long_name": self.long_name}
        if self.bands > 1:
            out["band_names"] = list(self.band_names)
            out["band_units"] = list(self.band_units)
        return out

    def describe_bands(self) -> str:
        """``name [units], ...`` for ``info``."""
        return ", ".join(f"{b} [{u}]" for b, u in zip(self.band_names, self.band_units,
                                                      strict=True))


_RADIANCE = "nW cm-2 sr-1"
BUILTIN: dict[str, Modality] = {m.name: m for m in (
    Modality("lr_ntl", "main", "lr", ("radiance",), (_RADIANCE,), "float32",
             "low-resolution nighttime light radiance", (0.0, 1e6), "average", "bilinear",
             normalization="log1p", stats_key="ntl", collects_stats=False, plot="ntl"),
    Modality("hr_ntl", "target", "hr", ("radiance",), (_RADIANCE,), "float32",
             "high-resolution nighttime light radiance", (0.0, 1e6), "average", "bilinear",
             normalization="log1p", stats_key="ntl", plot="ntl"),
    Modality("dmo", "auxiliary", "hr", DMO_BANDS, ("1",) * len(DMO_BANDS), "float32",
             "daytime multispectral surface reflectance", (-1.0, 2.0), "bilinear", "bilinear",
             fill="nearest", plot="rgb"),
    Modality("dem", "auxiliary", "hr", ("elevation",), ("m",), "float32",
             "elevation above sea level", (-1000.0, 9000.0), "bilinear", "bilinear",
             fill="nearest", plot="terrain"),
    Modality("isp", "supervision", "hr", ("impervious",), ("1",), "uint8",
             "impervious surface mask (0/1)", (0, 1), "average", "average", threshold=0.5,
             normalization="none", collects_stats=False, plot="mask"),
)}
BUILTIN_NAMES = tuple(BUILTIN)

#: names a declared layer may take (they become store variables and results-JSON values)
NAME_PATTERN = r"[a-z][a-z0-9_]*"
#: keys of a manifest ``modality:`` block (a declaration of an extra layer)
DECLARATION_KEYS = ("role", "grid", "band_names", "units", "dtype", "long_name", "value_range",
                    "normalization", "plot")


def declared_modality(name: str, block: dict[str, Any], n_bands: int) -> Modality:
    """The :class:`Modality` of an extra layer declared in a manifest source's ``modality:``."""
    if name in BUILTIN:
        raise ConfigError(f"sources.{name}.modality: {name!r} is a built-in modality; "
                          "declare only new layers")
    if not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"sources.{name}: a declared layer's name must match {NAME_PATTERN} "
                          "(lower-case letters, digits, underscores)")
    if not isinstance(block, dict):
        raise ConfigError(f"sources.{name}.modality must be a mapping of "
                          f"{list(DECLARATION_KEYS)}")
    reject_unknown(block, DECLARATION_KEYS, "key(s)", f" in sources.{name}.modality")
    names = tuple(block.get("band_names") or ((name,) if n_bands == 1 else
                                              tuple(f"b{i + 1}" for i in range(n_bands))))
    if len(names) != n_bands:
        raise ConfigError(f"sources.{name}.modality.band_names lists {len(names)} name(s) for "
                          f"{n_bands} band(s)")
    lo, hi = block.get("value_range") or (-1e30, 1e30)
    role = block.get("role", "auxiliary")
    if role in ("main", "target"):
        raise ConfigError(f"sources.{name}.modality.role: an extra layer is 'auxiliary' or "
                          f"'supervision', got {role!r}")
    return Modality(name=name, role=role, grid=block.get("grid", "hr"), band_names=names,
                    band_units=(str(block.get("units", "1")),) * n_bands,
                    dtype=str(block.get("dtype", "float32")),
                    long_name=str(block.get("long_name", name)), value_range=(lo, hi),
                    normalization=block.get("normalization", "zscore"),
                    plot=block.get("plot", "viridis"))


def with_band_names(m: Modality, names: tuple[str, ...]) -> Modality:
    """``m`` with other bands of the same units (e.g. a 6-band Landsat 7 DMO)."""
    return replace(m, band_names=tuple(names), band_units=(m.units,) * len(names))


def manifest_modalities(sources: dict[str, Any]) -> dict[str, Modality]:
    """The modalities of a manifest: the built-ins (DMO bands as the source names them), then
    every declared extra layer, in manifest order.

    ``sources`` maps names to :class:`~deeplightmd.builder.manifest.SourceSpec` objects or to
    their JSON form (a store's ``manifest.sources``).
    """
    from deeplightmd.daytime import source_band_names

    out = dict(BUILTIN)
    for name, spec in sources.items():
        get = spec.get if isinstance(spec, dict) else lambda k, s=spec: getattr(s, k, None)
        if name in BUILTIN and get("modality") is None:
            if name == "dmo":
                out["dmo"] = with_band_names(BUILTIN["dmo"], source_band_names(get))
        else:
            if get("modality") is None:
                raise ConfigError(f"unknown modality {name!r}; expected some of "
                                  f"{sorted(BUILTIN)}, or declare a new layer with a "
                                  f"'modality:' block")
            bands = get("bands") or (1,)
            out[name] = declared_modality(name, get("modality"), len(bands))
    return out


def store_modalities(attrs: dict[str, Any]) -> dict[str, Modality]:
    """The modalities of a store, from its root attrs (its manifest)."""
    return manifest_modalities(attrs.get("manifest", {}).get("sources", {}))


def modality_fields() -> tuple[str, ...]:
    """Field names of :class:`Modality` (for docs and tests)."""
    return tuple(f.name for f in fields(Modality))


__all__ = ["BUILTIN", "BUILTIN_NAMES", "DMO_BANDS", "Modality", "declared_modality",
           "manifest_modalities", "store_modalities", "with_band_names"]
