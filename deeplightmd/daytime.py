"""Daytime imagery by sensor: band presets mapping a stacked file's bands to named reflectance.

A manifest's DMO source names a preset (``sensor: landsat7-etm``) and, optionally, the bands it
wants by name (``bands: [blue, green, red, nir, swir1, swir2]``); the preset gives the file band
of each name and the scale/offset that turn stored integers into surface reflectance:

=================  ==========================================  ======================
preset             file bands, in order                        reflectance
=================  ==========================================  ======================
landsat5-tm        blue green red nir swir1 swir2 (SR_B1-5,7)  DN · 2.75e-5 − 0.2
landsat7-etm       blue green red nir swir1 swir2 (SR_B1-5,7)  DN · 2.75e-5 − 0.2
landsat8-oli       coastal blue green red nir swir1 swir2      DN · 2.75e-5 − 0.2
landsat9-oli       (as landsat8-oli)                           DN · 2.75e-5 − 0.2
sentinel2-l2a      coastal blue green red rededge1-3 nir       (DN − 1000) / 10000
                   nir08 wv swir1 swir2 (B01-B12, no B10)      (baseline ≥ 04.00)
sentinel2-l2a-pre04  (as sentinel2-l2a)                        DN / 10000 (< 04.00)
=================  ==========================================  ======================

Landsat values are Collection-2 Level-2 surface reflectance (USGS scale 0.0000275, offset
−0.2); Sentinel-2 L2A products of processing baseline 04.00 and later carry
``BOA_ADD_OFFSET = −1000``. An explicit ``scale``/``offset`` in the manifest wins over the preset.
Without a preset, a DMO of other than seven bands names its bands with ``band_names``.

Methods ask for DMO bands by name (``Method.bands``); a band the store lacks is returned as the
band's training mean (0 in normalised space), see :func:`conform_bands`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deeplightmd.errors import ConfigError

#: a "reflectance" band whose values reach this looks like raw digital numbers
DN_LIKE = 2.0
_C2L2 = (2.75e-5, -0.2)
_TM = ("blue", "green", "red", "nir", "swir1", "swir2")
_OLI = ("coastal", *_TM)
_S2 = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
       "water_vapour", "swir1", "swir2")


@dataclass(frozen=True)
class BandPreset:
    """A sensor's stacked file: band names in file order and the DN → reflectance affine."""

    name: str
    description: str
    bands: tuple[str, ...]
    scale: float
    offset: float

    def index(self, band: str) -> int:
        """1-based file band of ``band``."""
        if band not in self.bands:
            raise ConfigError(f"sensor {self.name!r} has no band {band!r}; its bands are "
                              f"{list(self.bands)}")
        return self.bands.index(band) + 1


SENSORS: dict[str, BandPreset] = {p.name: p for p in (
    BandPreset("landsat5-tm", "Landsat 5 TM Collection-2 L2 SR, bands 1-5 and 7", _TM, *_C2L2),
    BandPreset("landsat7-etm", "Landsat 7 ETM+ Collection-2 L2 SR, bands 1-5 and 7", _TM, *_C2L2),
    BandPreset("landsat8-oli", "Landsat 8 OLI Collection-2 L2 SR, bands 1-7", _OLI, *_C2L2),
    BandPreset("landsat9-oli", "Landsat 9 OLI-2 Collection-2 L2 SR, bands 1-7", _OLI, *_C2L2),
    BandPreset("sentinel2-l2a", "Sentinel-2 L2A BOA, B01-B12 without B10, baseline >= 04.00",
               _S2, 1e-4, -0.1),
    BandPreset("sentinel2-l2a-pre04", "Sentinel-2 L2A BOA, baseline < 04.00 (no offset)",
               _S2, 1e-4, 0.0),
)}


def get_sensor(name: str) -> BandPreset:
    """The preset ``name``, or an error listing the known ones."""
    if name not in SENSORS:
        raise ConfigError(f"unknown sensor {name!r}; expected one of {sorted(SENSORS)}")
    return SENSORS[name]


def resolve_bands(get: Callable[[str], Any]) -> tuple[tuple[int, ...], tuple[str, ...],
                                                       Any, Any]:
    """File bands, band names, scale and offset of a DMO source.

    ``get(key)`` returns a source key (``bands``, ``sensor``, ``band_names``, ``scale``,
    ``offset``) or ``None``.
    """
    from deeplightmd.modalities import DMO_BANDS

    bands = tuple(get("bands") or (1,))
    scale, offset = get("scale"), get("offset")
    scale = 1.0 if scale is None else scale
    offset = 0.0 if offset is None else offset
    sensor = get("sensor")
    if sensor is not None:
        preset = get_sensor(sensor)
        if all(isinstance(b, str) for b in bands):
            names = bands
        elif bands == (1,):
            names = preset.bands
        else:
            raise ConfigError(f"sources.dmo.bands: with sensor {sensor!r} list band names "
                              f"(some of {list(preset.bands)}), got {list(bands)}")
        if scale == 1.0 and offset == 0.0:
            scale, offset = preset.scale, preset.offset
        return tuple(preset.index(n) for n in names), tuple(names), scale, offset
    if any(isinstance(b, str) for b in bands):
        raise ConfigError(f"sources.dmo.bands lists names {list(bands)} but no sensor preset "
                          f"maps them to file bands; add sensor: (one of {sorted(SENSORS)}) or "
                          "give band numbers with band_names")
    names = tuple(get("band_names") or ())
    if not names:
        if len(bands) != len(DMO_BANDS):
            raise ConfigError(f"sources.dmo.bands lists {len(bands)} band(s); name them with "
                              f"band_names: [...] or choose a sensor preset (one of "
                              f"{sorted(SENSORS)})")
        names = DMO_BANDS
    if len(names) != len(bands):
        raise ConfigError(f"sources.dmo.band_names lists {len(names)} name(s) for "
                          f"{len(bands)} band(s)")
    return bands, names, scale, offset


def source_band_names(get: Callable[[str], Any]) -> tuple[str, ...]:
    """Band names of a DMO source (see :func:`resolve_bands`)."""
    return resolve_bands(get)[1]


def dn_warning(band_names: tuple[str, ...], means: list[float], units: str = "1") -> str | None:
    """One line when a reflectance band's train mean looks like digital numbers, else None."""
    if units != "1":
        return None
    bad = [(n, m) for n, m in zip(band_names, means, strict=True) if abs(m) >= DN_LIKE]
    if not bad:
        return None
    shown = ", ".join(f"{n} mean {m:.4g}" for n, m in bad[:3])
    return (f"DMO band(s) look like raw DN, not reflectance ({shown}); set sensor: (one of "
            f"{sorted(SENSORS)}) or scale/offset in the manifest")


def conform_bands(x: Any, have: tuple[str, ...], want: tuple[str, ...], fill: float = 0.0
                  ) -> Any:
    """Bands ``want`` of ``x`` (channel axis -3) whose bands are ``have``; a band missing from
    ``have`` is ``fill`` (0: the training mean in normalised space)."""
    import torch

    if tuple(have) == tuple(want):
        return x
    parts = []
    for name in want:
        if name in have:
            i = have.index(name)
            parts.append(x[..., i:i + 1, :, :])
        elif isinstance(x, torch.Tensor):
            parts.append(torch.full_like(x[..., :1, :, :], fill))
        else:
            parts.append(np.full_like(x[..., :1, :, :], fill))
    return torch.cat(parts, dim=-3) if isinstance(x, torch.Tensor) else np.concatenate(parts,
                                                                                      axis=-3)


__all__ = ["SENSORS", "BandPreset", "conform_bands", "dn_warning", "get_sensor",
           "resolve_bands", "source_band_names"]
