"""Configuration of the synthetic world: preset dataclasses, overrides and config-file loading.

A world is described by one :class:`WorldConfig` made of small sections (extent, terrain, land
cover, settlements, lights, DMO, LR sensor). Presets (``tiny``, ``demo``, ``large``) are sets of
overrides of the defaults; a YAML/JSON config file overrides preset fields section by section::

    settlements:
      n_settlements: 60
    sensor:
      gain: 0.9

Every value is checked when the dataclass is built; a bad value or an unknown key raises
:class:`~deeplightmd.errors.ConfigError` with a one-line message.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from deeplightmd import yamlio
from deeplightmd.errors import ConfigError, InputFileError, reject_unknown
from deeplightmd.sensor import SensorModel

#: the UTM zone 49/50 boundary the world straddles
ZONE_BOUNDARY_LON = 114.0
#: coarsest working / product pixel (m): the scale worlds simulate at 480 m to stay small
MAX_WORK_PIXEL_M = 1000.0


def _require(section: str, name: str, value: float, lo: float | None = None,
             hi: float | None = None, lo_open: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi`` (``lo < value`` with ``lo_open``)."""
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    high_bad = hi is not None and value > hi
    if low_bad or high_bad:
        lo_txt = "-inf" if lo is None else f"{lo:g}"
        hi_txt = "inf" if hi is None else f"{hi:g}"
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{section}.{name} must be in {bracket}{lo_txt}, {hi_txt}], "
                          f"got {value!r}")


@dataclass(frozen=True)
class ExtentConfig:
    """Where the world is and on which grids it is rendered.

    Attributes:
        center_lon: centre longitude (degrees); must keep the world across 114°E.
        center_lat: centre latitude (degrees).
        width_lr: east-west size in LR pixels of 15″ (1/240°).
        height_lr: north-south size in LR pixels.
        work_pixel: pixel of the metric working grid on which the truth is simulated (m); up to
            1 km, so that worlds made only to exercise the build at scale (``rehearsal``,
            ``paper-counts``) stay small in memory.
        hr_pixel: pixel of the HR NTL product (m); must be a multiple of ``work_pixel``.
        product_pixel: pixel of the DMO and ISP products (m): 30 (Landsat, GAIA) by default.
        dem_arcsec: DEM pixel in arc-seconds (1, 3, 5 or 15; must divide 15).
        clip_km: build clip size (km); test regions stay at least one clip from the edge.
        test_region_km: approximate diameter of each of the three test regions (km).
        scene_overlap_km: overlap of the two DMO scenes across 114°E (km).
    """

    center_lon: float = 114.0
    center_lat: float = 31.0
    width_lr: int = 108
    height_lr: int = 84
    work_pixel: float = 30.0
    hr_pixel: float = 60.0
    product_pixel: float = 30.0
    dem_arcsec: int = 3
    clip_km: float = 3.84
    test_region_km: float = 6.0
    scene_overlap_km: float = 2.0

    def __post_init__(self) -> None:
        s = "extent"
        _require(s, "center_lat", self.center_lat, -60.0, 60.0)
        _require(s, "width_lr", self.width_lr, 16)
        _require(s, "height_lr", self.height_lr, 16)
        _require(s, "work_pixel", self.work_pixel, 5.0, MAX_WORK_PIXEL_M)
        _require(s, "hr_pixel", self.hr_pixel, self.work_pixel)
        _require(s, "product_pixel", self.product_pixel, 5.0, MAX_WORK_PIXEL_M)
        _require(s, "clip_km", self.clip_km, 0.0, lo_open=True)
        _require(s, "test_region_km", self.test_region_km, 0.0, lo_open=True)
        _require(s, "scene_overlap_km", self.scene_overlap_km, 0.0, 20.0)
        ratio = self.hr_pixel / self.work_pixel
        if abs(ratio - round(ratio)) > 1e-9:
            raise ConfigError(f"extent.hr_pixel must be a multiple of extent.work_pixel "
                              f"({self.work_pixel:g}), got {self.hr_pixel:g}")
        if self.dem_arcsec not in (1, 3, 5, 15):
            raise ConfigError(f"extent.dem_arcsec must be 1, 3, 5 or 15, "
                              f"got {self.dem_arcsec!r}")
        half_deg = self.width_lr / 480.0
        if not self.center_lon - half_deg < ZONE_BOUNDARY_LON < self.center_lon + half_deg:
            raise ConfigError(f"extent.center_lon must keep the world across {ZONE_BOUNDARY_LON}°E "
                              f"(the UTM 49/50 boundary), got {self.center_lon!r}")

    @property
    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` snapped to the 1/240° LR grid."""
        west = round((self.center_lon - self.width_lr / 480.0) * 240.0) / 240.0
        north = round((self.center_lat + self.height_lr / 480.0) * 240.0) / 240.0
        return (west, north - self.height_lr / 240.0, west + self.width_lr / 240.0, north)


@dataclass(frozen=True)
class TerrainConfig:
    """Fractal relief, rivers, valleys and lakes.

    Attributes:
        base_elevation_m: elevation of the lowest plains (m).
        relief_m: elevation range from plains to the highest peaks (m).
        fractal_beta: power-spectrum exponent of the fractal surface (P(k) ∝ k^-beta).
        coarse_factor: the relief and rivers are made on a grid this many working pixels coarse.
        fine_noise_m: std of the small-scale roughness added on the working grid (m).
        n_rivers: number of rivers routed from high ground to the lowest edge point.
        river_width_m: width of the main river (m); tributaries are narrower.
        valley_width_m: half-width of the valley carved around each river (m).
        valley_depth_m: depth of that valley (m).
        n_lakes: number of lakes placed in low, flat land.
        lake_radius_m: mean lake radius (m).
    """

    base_elevation_m: float = 20.0
    relief_m: float = 1100.0
    fractal_beta: float = 3.2
    coarse_factor: int = 4
    fine_noise_m: float = 2.0
    n_rivers: int = 3
    river_width_m: float = 120.0
    valley_width_m: float = 1500.0
    valley_depth_m: float = 60.0
    n_lakes: int = 2
    lake_radius_m: float = 900.0

    def __post_init__(self) -> None:
        s = "terrain"
        _require(s, "relief_m", self.relief_m, 0.0, 8000.0)
        _require(s, "base_elevation_m", self.base_elevation_m, -400.0, 5000.0)
        _require(s, "fractal_beta", self.fractal_beta, 1.0, 5.0)
        _require(s, "coarse_factor", self.coarse_factor, 1, 16)
        _require(s, "fine_noise_m", self.fine_noise_m, 0.0)
        _require(s, "n_rivers", self.n_rivers, 0, 20)
        _require(s, "river_width_m", self.river_width_m, 0.0)
        _require(s, "valley_width_m", self.valley_width_m, 0.0, lo_open=True)
        _require(s, "valley_depth_m", self.valley_depth_m, 0.0)
        _require(s, "n_lakes", self.n_lakes, 0, 50)
        _require(s, "lake_radius_m", self.lake_radius_m, 0.0, lo_open=True)


@dataclass(frozen=True)
class LandCoverConfig:
    """Land cover driven by terrain: thresholds on slope and elevation, perturbed by noise.

    Attributes:
        forest_slope_deg: slopes steeper than this are forest.
        forest_elevation_m: land above this elevation is forest.
        bare_elevation_m: land above this elevation is bare rock.
        bare_patch_fraction: fraction of low land that is bare soil (quarries, sand bars, fallow).
        threshold_noise: relative noise on the thresholds (makes borders irregular).
    """

    forest_slope_deg: float = 9.0
    forest_elevation_m: float = 350.0
    bare_elevation_m: float = 950.0
    bare_patch_fraction: float = 0.04
    threshold_noise: float = 0.25

    def __post_init__(self) -> None:
        s = "landcover"
        _require(s, "forest_slope_deg", self.forest_slope_deg, 0.0, 90.0)
        _require(s, "bare_patch_fraction", self.bare_patch_fraction, 0.0, 0.5)
        _require(s, "threshold_noise", self.threshold_noise, 0.0, 1.0)


@dataclass(frozen=True)
class SettlementConfig:
    """Settlements with Zipf sizes on low, flat land, and the roads that link them.

    Attributes:
        n_settlements: number of settlements.
        max_population: population of the largest one; the k-th has ``max_population / k**zipf_q``.
        zipf_q: exponent of the rank-size (Zipf) law.
        people_per_km2: built-up density of population; sets each settlement's built-up area.
        elevation_scale_m: suitability falls as ``exp(-elevation / elevation_scale_m)``.
        slope_scale_deg: suitability falls as ``exp(-slope / slope_scale_deg)``.
        isp_threshold: built-up density above which a pixel is impervious (ISP).
        econ_sigma: sigma of the log-normal economic level of each settlement.
        extra_road_prob: probability of a road to the second-nearest neighbour (beyond the MST).
        major_road_population: roads between two settlements at least this big are major (lit).
        dark_isp_fraction: share of the ISP area turned into dark industry / new-build patches.
    """

    n_settlements: int = 40
    max_population: float = 250_000.0
    zipf_q: float = 1.0
    people_per_km2: float = 6000.0
    elevation_scale_m: float = 150.0
    slope_scale_deg: float = 4.0
    isp_threshold: float = 0.35
    econ_sigma: float = 0.5
    extra_road_prob: float = 0.35
    major_road_population: float = 15_000.0
    dark_isp_fraction: float = 0.10

    def __post_init__(self) -> None:
        s = "settlements"
        _require(s, "n_settlements", self.n_settlements, 3, 5000)
        _require(s, "max_population", self.max_population, 1000.0)
        _require(s, "zipf_q", self.zipf_q, 0.3, 3.0)
        _require(s, "people_per_km2", self.people_per_km2, 100.0)
        _require(s, "elevation_scale_m", self.elevation_scale_m, 0.0, lo_open=True)
        _require(s, "slope_scale_deg", self.slope_scale_deg, 0.0, lo_open=True)
        _require(s, "isp_threshold", self.isp_threshold, 0.0, 1.0, lo_open=True)
        _require(s, "econ_sigma", self.econ_sigma, 0.0, 3.0)
        _require(s, "extra_road_prob", self.extra_road_prob, 0.0, 1.0)
        _require(s, "major_road_population", self.major_road_population, 0.0)
        _require(s, "dark_isp_fraction", self.dark_isp_fraction, 0.0, 0.6)


@dataclass(frozen=True)
class LightsConfig:
    """HR radiance truth (nW·cm⁻²·sr⁻¹ on the working grid), HR sensor and time mismatch.

    Attributes:
        base_radiance: radiance of fully built-up land of a settlement of ``reference_population``
            at economic level 1.
        reference_population: population at which the size factor is 1.
        size_exponent: radiance grows as ``(population / reference_population) ** size_exponent``.
        density_gamma: radiance grows as ``built_density ** density_gamma``.
        fringe_start: lights fade in from ``fringe_start · isp_threshold`` built-up density
            (scattered lit houses outside the ISP) to full at the ISP threshold.
        lit_road_radiance: radiance of major (lit) roads.
        dark_factor: dark ISP patches keep this share of their settlement radiance.
        port_probability: chance that a settlement next to water has a lit port.
        port_radiance: radiance of port areas on water.
        boats_per_km2: lit boats per km² of water (single working pixels).
        boat_radiance: median radiance of a boat pixel.
        n_gas_flares: gas flares on bare or remote land.
        flare_radiance: radiance of a flare pixel.
        greenhouse_fraction: share of cropland under lit greenhouses.
        greenhouse_radiance: radiance of lit greenhouses.
        hr_noise_abs: HR sensor noise std (absolute).
        hr_noise_rel: HR sensor noise std (relative to radiance).
        hr_saturation: HR radiance at which the HR sensor saturates.
        mismatch_block_m: size of the blocks whose lights switch between acquisitions (m).
        switch_off_fraction: share of lit blocks that are off at the LR acquisition.
        switch_on_fraction: share of dark new-build patches that are lit at the LR acquisition.
        lit_threshold: radiance above which a pixel counts as lit (statistics).
        dark_threshold: radiance below which an ISP pixel counts as dark (statistics).
    """

    base_radiance: float = 50.0
    reference_population: float = 50_000.0
    size_exponent: float = 0.45
    density_gamma: float = 2.0
    fringe_start: float = 0.6
    lit_road_radiance: float = 9.0
    dark_factor: float = 0.03
    port_probability: float = 0.7
    port_radiance: float = 30.0
    boats_per_km2: float = 1.5
    boat_radiance: float = 60.0
    n_gas_flares: int = 2
    flare_radiance: float = 900.0
    greenhouse_fraction: float = 0.004
    greenhouse_radiance: float = 18.0
    hr_noise_abs: float = 0.25
    hr_noise_rel: float = 0.04
    hr_saturation: float = 120.0
    mismatch_block_m: float = 600.0
    switch_off_fraction: float = 0.04
    switch_on_fraction: float = 0.3
    lit_threshold: float = 2.0
    dark_threshold: float = 1.0

    def __post_init__(self) -> None:
        s = "lights"
        for name in ("base_radiance", "reference_population", "hr_saturation", "mismatch_block_m"):
            _require(s, name, getattr(self, name), 0.0, lo_open=True)
        for name in ("size_exponent", "density_gamma", "lit_road_radiance", "port_radiance",
                     "boats_per_km2", "boat_radiance", "flare_radiance", "greenhouse_radiance",
                     "hr_noise_abs", "hr_noise_rel", "lit_threshold", "dark_threshold"):
            _require(s, name, getattr(self, name), 0.0)
        for name in ("dark_factor", "port_probability", "switch_off_fraction", "fringe_start",
                     "switch_on_fraction"):
            _require(s, name, getattr(self, name), 0.0, 1.0)
        _require(s, "greenhouse_fraction", self.greenhouse_fraction, 0.0, 0.5)
        _require(s, "n_gas_flares", self.n_gas_flares, 0, 1000)


@dataclass(frozen=True)
class UrbanLightConfig:
    """Opt-in structure of the HR light field (all off by default; see ``urbanlight.py``).

    Attributes:
        street_spacing_m: spacing of the street grid inside built-up land (m); 0 = no grid.
        street_contrast: street pixels get ``1 + street_contrast``, block interiors
            ``1 - street_contrast / 2`` of the settlement radiance.
        minor_road_radiance: radiance of the minor (inter-village) roads; 0 = dark.
        core_boost: commercial / transport cores (built-up density ≥ ``core_density`` of
            settlements of at least ``core_population``) are ``1 + core_boost`` times brighter.
        core_density: built-up density above which a pixel belongs to a core.
        core_population: smallest settlement with a bright core.
        park_fraction: share of the built-up land turned into dark parks (× 0.05).
        radiance_sigma: σ of a mean-1 log-normal per-pixel factor on settlement light
            (heavy-tailed radiance: single bright facades, stadiums, billboards).
        villages_per_km2: lit hamlets per km² of open land (cropland, grass, bare) outside ISP.
        village_radiance: median radiance of a hamlet (log-normal, σ = 0.6).
        glow_fraction: share of all light scattered into a Gaussian glow (adjacency effect).
        glow_sigma_m: σ of that glow (m).
        airfield_population: every settlement of at least this population gets an airfield
            (0 = none): a rectangle of ``airfield_length_m`` × ``airfield_width_m`` at the edge
            of its built-up land whose interior (runways, taxiways, grass) is dark (× 0.02) and
            whose apron strip along one long side is ``1 + core_boost`` times brighter.
        airfield_length_m, airfield_width_m: size of an airfield (m).
    """

    street_spacing_m: float = 0.0
    street_contrast: float = 0.8
    minor_road_radiance: float = 0.0
    core_boost: float = 0.0
    core_density: float = 0.85
    core_population: float = 50_000.0
    park_fraction: float = 0.0
    radiance_sigma: float = 0.0
    villages_per_km2: float = 0.0
    village_radiance: float = 6.0
    glow_fraction: float = 0.0
    glow_sigma_m: float = 400.0
    airfield_population: float = 0.0
    airfield_length_m: float = 3000.0
    airfield_width_m: float = 800.0

    def __post_init__(self) -> None:
        s = "urban"
        for name in ("street_spacing_m", "minor_road_radiance", "core_boost", "core_population",
                     "radiance_sigma", "villages_per_km2", "village_radiance",
                     "airfield_population"):
            _require(s, name, getattr(self, name), 0.0)
        _require(s, "street_contrast", self.street_contrast, 0.0, 1.9)
        _require(s, "core_density", self.core_density, 0.0, 1.0)
        _require(s, "park_fraction", self.park_fraction, 0.0, 0.6)
        _require(s, "glow_fraction", self.glow_fraction, 0.0, 0.9)
        _require(s, "glow_sigma_m", self.glow_sigma_m, 0.0, lo_open=True)
        _require(s, "airfield_length_m", self.airfield_length_m, 0.0, lo_open=True)
        _require(s, "airfield_width_m", self.airfield_width_m, 0.0, lo_open=True)
        if 0.0 < self.street_spacing_m < 60.0:
            raise ConfigError(f"urban.street_spacing_m must be 0 or >= 60, "
                              f"got {self.street_spacing_m!r}")

    @property
    def enabled(self) -> bool:
        """True when any layer is switched on."""
        return any((self.street_spacing_m, self.minor_road_radiance, self.core_boost,
                    self.park_fraction, self.radiance_sigma, self.villages_per_km2,
                    self.glow_fraction, self.airfield_population))


@dataclass(frozen=True)
class DmoConfig:
    """Landsat-8-OLI-like surface reflectance.

    Attributes:
        sun_azimuth_deg: sun azimuth for the hillshade (degrees clockwise from north).
        sun_elevation_deg: sun elevation (degrees).
        diffuse_fraction: share of illumination that is diffuse (not shaded by relief).
        texture: relative std of within-class reflectance texture.
        noise: std of additive reflectance noise.
        scene_gain_east: radiometric gain of the east (UTM 50) scene relative to the west one.
    """

    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 50.0
    diffuse_fraction: float = 0.3
    texture: float = 0.08
    noise: float = 0.004
    scene_gain_east: float = 1.03

    def __post_init__(self) -> None:
        s = "dmo"
        _require(s, "sun_azimuth_deg", self.sun_azimuth_deg, 0.0, 360.0)
        _require(s, "sun_elevation_deg", self.sun_elevation_deg, 1.0, 90.0)
        _require(s, "diffuse_fraction", self.diffuse_fraction, 0.0, 1.0)
        _require(s, "texture", self.texture, 0.0, 1.0)
        _require(s, "noise", self.noise, 0.0, 0.5)
        _require(s, "scene_gain_east", self.scene_gain_east, 0.5, 2.0)


@dataclass(frozen=True)
class WorldConfig:
    """All parameters of one synthetic world (see ``docs/synthetic-world.md``)."""

    extent: ExtentConfig = field(default_factory=ExtentConfig)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    landcover: LandCoverConfig = field(default_factory=LandCoverConfig)
    settlements: SettlementConfig = field(default_factory=SettlementConfig)
    lights: LightsConfig = field(default_factory=LightsConfig)
    dmo: DmoConfig = field(default_factory=DmoConfig)
    sensor: SensorModel = field(default_factory=SensorModel)
    urban: UrbanLightConfig = field(default_factory=UrbanLightConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (the ``params`` of ``world.json``); the opt-in ``urban``
        section only when it is switched on (so worlds without it keep their old metadata)."""
        skip = ("sensor", "urban")
        d = {f.name: asdict(getattr(self, f.name)) for f in fields(self) if f.name not in skip}
        if self.extent.product_pixel == ExtentConfig.product_pixel:
            del d["extent"]["product_pixel"]  # worlds of 30 m products keep their old metadata
        d["sensor"] = self.sensor.to_dict()
        if self.urban.enabled:
            d["urban"] = asdict(self.urban)
        return d


#: preset name -> overrides of the defaults (the defaults are the ``tiny`` world)
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {},
    "demo": {
        "extent": {"width_lr": 312, "height_lr": 252, "dem_arcsec": 1, "clip_km": 7.68,
                   "test_region_km": 15.0},
        "terrain": {"n_rivers": 5, "n_lakes": 5, "valley_width_m": 2500.0,
                    "river_width_m": 180.0, "lake_radius_m": 1500.0, "coarse_factor": 8},
        "settlements": {"n_settlements": 260, "max_population": 1_500_000.0},
        "lights": {"n_gas_flares": 8},
    },
    "large": {
        "extent": {"width_lr": 576, "height_lr": 480, "dem_arcsec": 1, "clip_km": 7.68,
                   "test_region_km": 25.0},
        "terrain": {"n_rivers": 8, "n_lakes": 10, "valley_width_m": 3000.0,
                    "river_width_m": 240.0, "lake_radius_m": 2000.0, "coarse_factor": 8},
        "settlements": {"n_settlements": 900, "max_population": 4_000_000.0},
        "lights": {"n_gas_flares": 20},
    },
    # Worlds made to exercise the build at the paper's scale (docs/scale.md), not for realism:
    # every raster is coarser than the 60 m target grid (the build warps them onto it anyway),
    # so synthesis stays small in memory while the build writes full-size clips.
    # `rehearsal`: ~17.5° x 14.2° (about 1,550 x 1,575 km), room for >= 64 clips of the paper's
    # 2048 x 60 m = 122.9 km layout plus three held-out regions; truth, HR NTL, DMO and ISP at
    # 480 m, DEM at 15".
    "rehearsal": {
        "extent": {"width_lr": 4200, "height_lr": 3400, "work_pixel": 480.0,
                   "hr_pixel": 480.0, "product_pixel": 480.0, "dem_arcsec": 15,
                   "clip_km": 122.88, "test_region_km": 40.0, "scene_overlap_km": 4.0},
        "terrain": {"n_rivers": 12, "n_lakes": 20, "valley_width_m": 8000.0,
                    "river_width_m": 1000.0, "lake_radius_m": 8000.0, "coarse_factor": 2},
        "settlements": {"n_settlements": 600, "max_population": 8_000_000.0},
        "lights": {"n_gas_flares": 40, "mismatch_block_m": 1920.0},
    },
    # `paper-counts`: ~2.1° x 1.75° (about 200 x 195 km) at 120 m, room for the paper's
    # 18,032 / 2,254 / 2,254 clips of 2 LR px (16 x 60 m = 0.96 km) plus three held-out regions.
    "paper-counts": {
        "extent": {"width_lr": 504, "height_lr": 420, "work_pixel": 120.0,
                   "hr_pixel": 120.0, "product_pixel": 120.0, "dem_arcsec": 5,
                   "clip_km": 0.96, "test_region_km": 15.0},
        "terrain": {"n_rivers": 6, "n_lakes": 8, "valley_width_m": 3000.0,
                    "river_width_m": 240.0, "lake_radius_m": 2000.0, "coarse_factor": 4},
        "settlements": {"n_settlements": 400, "max_population": 3_000_000.0},
        "lights": {"n_gas_flares": 12, "mismatch_block_m": 960.0},
    },
}


def _coerce(section: str, name: str, default: Any, value: Any) -> Any:
    """Convert ``value`` to the type of ``default`` or raise a one-line :class:`ConfigError`."""
    if isinstance(default, bool) or isinstance(value, bool):
        raise ConfigError(f"{section}.{name} must be a number, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ConfigError(f"{section}.{name} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{section}.{name} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ConfigError(f"{section}.{name} must be a list of {len(default)} numbers, "
                              f"got {value!r}")
        return tuple(_coerce(section, name, d, v) for d, v in zip(default, value, strict=True))
    return value


def _override_section(section: str, current: Any, values: Any) -> Any:
    """A copy of dataclass ``current`` with ``values`` (a mapping) applied and validated."""
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a mapping, got {values!r}")
    reject_unknown(values, (f.name for f in fields(current)), "key(s)",
                   f" in config section {section!r}")
    changes = {k: _coerce(section, k, getattr(current, k), v) for k, v in values.items()}
    return replace(current, **changes)


def apply_overrides(config: WorldConfig, overrides: dict[str, Any]) -> WorldConfig:
    """Return ``config`` with nested ``overrides`` ({section: {field: value}}) applied."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"a world config must be a mapping of sections, got {overrides!r}")
    sections = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - sections)
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; "
                          f"expected some of {sorted(sections)}")
    changes = {}
    for name, values in overrides.items():
        current = getattr(config, name)
        assert is_dataclass(current)
        changes[name] = _override_section(name, current, values)
    return replace(config, **changes)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict (``InputFileError`` if unreadable)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputFileError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yamlio.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {first}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, "
                          f"got {type(data).__name__}")
    return data


def resolve_config(preset: str = "tiny",
                   config: WorldConfig | dict[str, Any] | str | Path | None = None) -> WorldConfig:
    """The :class:`WorldConfig` of ``preset`` with ``config`` (dict, file path or object) on top."""
    if isinstance(config, WorldConfig):
        return config
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    cfg = apply_overrides(WorldConfig(), PRESETS[preset])
    if config is None:
        return cfg
    overrides = config if isinstance(config, dict) else load_config_file(config)
    return apply_overrides(cfg, overrides)
