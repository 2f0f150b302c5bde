"""The build manifest: which files feed which modality, the target grid, splits, regions and QA.

A manifest is YAML (see docs/manifest.md for a full example). It is parsed strictly: an unknown
key at any level is a :class:`ConfigError` naming the known keys, so a typo never passes silently.
Packaged presets live in ``deeplightmd/builder/presets/<name>.yaml``.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from deeplightmd import yamlio
from deeplightmd.builder.grid import parse_crs
from deeplightmd.daytime import resolve_bands
from deeplightmd.errors import ConfigError, reject_unknown
from deeplightmd.modalities import BUILTIN, Modality, manifest_modalities

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
#: the default target CRS: an equal-area Albers projection for China
ALBERS_CHINA = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +datum=WGS84 +units=m +no_defs"
RESAMPLING_NAMES = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                    "min", "max", "med", "sum")
FILL_METHODS = ("zero", "nearest")


@dataclass(frozen=True)
class SourceSpec:
    """Where one modality comes from and how it is resampled onto the target grid.

    Attributes:
        files: raster paths, globs, VRTs or fsspec/GDAL URLs; relative paths are resolved against
            the manifest's base directory. With several files the first valid value wins.
        bands: 1-based band indexes to read (``len(bands)`` must match the modality).
        nodata: source nodata value; ``None`` uses the file's own nodata.
        scale: multiply raw values by this (``"file"``: the file's per-band ``scales``).
        offset: then add this (``"file"``: the file's per-band ``offsets``).
        valid_range: ``[low, high]`` after scale/offset; values outside become invalid.
        resampling: rasterio resampling name used when warping onto the target grid.
        oversample: warp onto a grid this many times finer, then average blocks (an exact area
            mean per target pixel; use with ``average`` for radiance and fractions).
        threshold: for masks (ISP): the resampled fraction ``>= threshold`` becomes 1, else 0.
        fill: how invalid pixels left inside a kept clip are filled (``zero`` or ``nearest``).
        constant: no files; the modality is filled with this value everywhere (a documented
            stand-in for a modality the user does not have, e.g. DMO for real NTL-only data).
        sensor: DMO only: a band preset of :mod:`deeplightmd.daytime` (``landsat7-etm``, ...);
            ``bands`` then lists band *names* (default: all of the preset's).
        band_names: DMO only, without ``sensor``: one name per listed band.
        modality: declares a new layer (not one of the built-ins): a mapping of
            :data:`deeplightmd.modalities.DECLARATION_KEYS`.
    """

    files: tuple[str, ...] = ()
    bands: tuple[int, ...] = (1,)
    nodata: float | None = None
    scale: float | str = 1.0
    offset: float | str = 0.0
    valid_range: tuple[float, float] | None = None
    resampling: str = "bilinear"
    oversample: int = 1
    threshold: float | None = None
    fill: str = "zero"
    constant: float | None = None
    sensor: str | None = None
    band_names: tuple[str, ...] | None = None
    modality: dict[str, Any] | None = None


#: source keys recorded in a store's manifest only when set (older stores keep their fingerprint)
OPTIONAL_SOURCE_KEYS = ("sensor", "band_names", "modality")


@dataclass(frozen=True)
class DeriveSpec:
    """Derive a modality (``lr_ntl``) from another one (``hr_ntl``) with the LR sensor model.

    ``sensor_model`` is a dict of :class:`deeplightmd.sensor.SensorModel` parameters or the
    string ``"world"`` (the model recorded in the base directory's ``world.json``).
    """

    from_: str = "hr_ntl"
    sensor_model: dict[str, Any] | str = field(default_factory=dict)
    noise: bool = True


@dataclass(frozen=True)
class GridSpec:
    """The target grid: CRS, HR pixel size (target CRS units), ratio and LR clip size."""

    crs: str = ALBERS_CHINA
    hr_pixel_size: float = 60.0
    ratio: int = 8
    lr_clip: int = 256
    bounds_lonlat: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class SplitSpec:
    """Clip counts per split and how val/test blocks are laid out.

    ``block`` is the side (in clips) of the square blocks val/test are drawn from (0: automatic);
    ``buffer`` the number of clips kept empty between clips of different splits;
    ``on_shortfall``: ``error`` or ``ratio`` (8:1:1 of what exists, with a warning).
    """

    train: int = 18032
    val: int = 2254
    test: int = 2254
    block: int = 0
    buffer: int = 1
    on_shortfall: str = "error"


@dataclass(frozen=True)
class RegionSpec:
    """Held-out province polygons and the admin-unit layer used for regional mosaics."""

    file: str | None = None
    name_field: str = "name"
    test_regions: tuple[str, ...] = ()
    admin_file: str | None = None
    admin_id_field: str | None = "admin_id"
    admin_name_field: str = "name"
    admin_region_field: str | None = "province"
    chunk: int = 512


@dataclass(frozen=True)
class QASpec:
    """Clip quality thresholds (checked on the LR grid before splitting)."""

    min_valid_fraction: float = 0.99
    min_lit_fraction: float = 0.0
    lit_threshold: float = 0.5


@dataclass(frozen=True)
class WorldSpec:
    """A synthetic world to generate into the base directory when it is absent."""

    preset: str = "tiny"
    seed: int = 0


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated build manifest (``base_dir`` resolves relative source paths)."""

    name: str
    grid: GridSpec
    sources: dict[str, SourceSpec]
    splits: SplitSpec
    regions: RegionSpec = field(default_factory=RegionSpec)
    qa: QASpec = field(default_factory=QASpec)
    derive: dict[str, DeriveSpec] = field(default_factory=dict)
    seed: int = 0
    world: WorldSpec | None = None
    base_dir: Path = field(default=Path("."), compare=False)

    @property
    def hr_clip(self) -> int:
        """HR clip side in pixels (``ratio · lr_clip``)."""
        return self.grid.ratio * self.grid.lr_clip

    def resolve(self, path: str) -> str:
        """A source path resolved against ``base_dir`` (URLs and absolute paths unchanged)."""
        if "://" in path or path.startswith("/vsi") or os.path.isabs(path):
            return path
        return str(self.base_dir / path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready manifest (without ``base_dir``), the inverse of :func:`manifest_from_dict`."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "base_dir"}
        out = json.loads(json.dumps(_plain(d)))
        for spec in out.get("derive", {}).values():
            spec["from"] = spec.pop("from_")
        for spec in out.get("sources", {}).values():
            for key in OPTIONAL_SOURCE_KEYS:
                if spec.get(key) is None:
                    spec.pop(key, None)
        return out

    def modalities(self) -> dict[str, Modality]:
        """The modalities this manifest builds (built-ins and declared layers)."""
        return manifest_modalities(self.sources)


def _plain(obj: Any) -> Any:
    """Dataclasses, tuples and dicts as plain JSON-able values."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _build(cls: type, data: Any, where: str, renames: dict[str, str] | None = None) -> Any:
    """Instantiate dataclass ``cls`` from ``data`` with an error for unknown or mistyped keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"manifest section {where!r} must be a mapping, "
                          f"got {type(data).__name__}")
    renames = renames or {}
    known = {renames.get(f.name, f.name): f.name for f in fields(cls)}
    reject_unknown(data, known, "key(s)", f" in manifest section {where!r}")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[known[key]] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"manifest section {where!r}: {exc}") from exc


TOP_KEYS = ("name", "grid", "sources", "splits", "regions", "qa", "derive", "seed", "world",
            "base_dir")


def manifest_from_dict(data: dict[str, Any], base_dir: Path) -> Manifest:
    """Parse and validate a manifest mapping (as loaded from YAML)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a manifest must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"unknown manifest key(s) {unknown}; expected some of {sorted(TOP_KEYS)}")
    for key in ("name", "grid", "sources", "splits"):
        if key not in data:
            raise ConfigError(f"manifest is missing the required key {key!r}")
    sources_raw = data["sources"]
    if not isinstance(sources_raw, dict):
        raise ConfigError("manifest 'sources' must map modality names to source specs")
    derive = {k: _build(DeriveSpec, v, f"derive.{k}", {"from_": "from"})
              for k, v in (data.get("derive") or {}).items()}
    # a modality set to null (e.g. by an override) is removed
    sources = {k: _build(SourceSpec, v, f"sources.{k}") for k, v in sources_raw.items()
               if v is not None}
    manifest = Manifest(
        name=str(data["name"]),
        grid=_build(GridSpec, data["grid"], "grid"),
        sources=sources,
        splits=_build(SplitSpec, data["splits"], "splits"),
        regions=_build(RegionSpec, data.get("regions") or {}, "regions"),
        qa=_build(QASpec, data.get("qa") or {}, "qa"),
        derive=derive,
        seed=int(data.get("seed", 0)),
        world=_build(WorldSpec, data["world"], "world") if data.get("world") else None,
        base_dir=(base_dir / data["base_dir"]) if data.get("base_dir") else base_dir,
    )
    validate_manifest(manifest)
    return manifest


def validate_manifest(m: Manifest) -> None:
    """Check values and cross-references of a parsed manifest (raises :class:`ConfigError`)."""
    modalities = manifest_modalities(m.sources)
    for key in m.derive:
        if key not in BUILTIN:
            raise ConfigError(f"unknown modality {key!r} in derive; expected some of "
                              f"{sorted(BUILTIN)}")
    missing = sorted(set(BUILTIN) - set(m.sources) - set(m.derive))
    if missing:
        raise ConfigError(f"no source or derive rule for modality/modalities {missing} "
                          "(use `constant: VALUE` for a modality you do not have)")
    both = sorted(set(m.sources) & set(m.derive))
    if both:
        raise ConfigError(f"modality/modalities {both} have both a source and a derive rule")
    for name, spec in m.derive.items():
        if name != "lr_ntl" or spec.from_ != "hr_ntl":
            raise ConfigError(f"derive supports only lr_ntl from hr_ntl, "
                              f"got {name} from {spec.from_}")
        if spec.from_ not in m.sources or m.sources[spec.from_].constant is not None:
            raise ConfigError("derive.lr_ntl needs a file source for hr_ntl")
        if not isinstance(spec.sensor_model, (dict, str)) or (
                isinstance(spec.sensor_model, str) and spec.sensor_model != "world"):
            raise ConfigError("derive.lr_ntl.sensor_model must be a mapping of SensorModel "
                              f"parameters or 'world', got {spec.sensor_model!r}")
    for name, s in m.sources.items():
        n_bands = modalities[name].bands
        if s.constant is None and not s.files:
            raise ConfigError(f"sources.{name} needs 'files' (or 'constant')")
        if s.constant is not None and s.files:
            raise ConfigError(f"sources.{name} has both 'files' and 'constant'")
        if name != "dmo" and (s.sensor is not None or s.band_names is not None):
            raise ConfigError(f"sources.{name}: sensor and band_names apply to dmo only")
        bands = source_bands(name, s)
        if len(bands) != n_bands:
            raise ConfigError(f"sources.{name}.bands must list {n_bands} band(s), "
                              f"got {list(s.bands)}")
        if any(not isinstance(b, int) or b < 1 for b in bands):
            raise ConfigError(f"sources.{name}.bands must be 1-based integers, got {list(s.bands)}")
        if s.resampling not in RESAMPLING_NAMES:
            raise ConfigError(f"sources.{name}.resampling must be one of {RESAMPLING_NAMES}, "
                              f"got {s.resampling!r}")
        if not isinstance(s.oversample, int) or s.oversample < 1:
            raise ConfigError(f"sources.{name}.oversample must be an integer >= 1, "
                              f"got {s.oversample!r}")
        if s.fill not in FILL_METHODS:
            raise ConfigError(f"sources.{name}.fill must be one of {FILL_METHODS}, got {s.fill!r}")
        for key in ("scale", "offset"):
            v = getattr(s, key)
            if isinstance(v, str) and v != "file":
                raise ConfigError(f"sources.{name}.{key} must be a number or 'file', got {v!r}")
        if s.valid_range is not None and (
                len(s.valid_range) != 2 or not all(_is_number(v) for v in s.valid_range)
                or s.valid_range[0] > s.valid_range[1]):
            raise ConfigError(f"sources.{name}.valid_range must be [low, high], "
                              f"got {s.valid_range}")
    g = m.grid
    if not isinstance(g.crs, str):
        raise ConfigError(f"grid.crs must be a string (PROJ, EPSG:n or WKT), got {g.crs!r}")
    parse_crs(g.crs)
    if g.hr_pixel_size <= 0 or g.ratio < 1 or g.lr_clip < 1:
        raise ConfigError(f"grid needs hr_pixel_size > 0, ratio >= 1, lr_clip >= 1, got "
                          f"{g.hr_pixel_size}, {g.ratio}, {g.lr_clip}")
    if g.bounds_lonlat is not None and len(g.bounds_lonlat) != 4:
        raise ConfigError(f"grid.bounds_lonlat must be [west, south, east, north], "
                          f"got {g.bounds_lonlat}")
    sp = m.splits
    if min(sp.train, sp.val, sp.test) < 0 or sp.buffer < 0 or sp.block < 0:
        raise ConfigError(f"split counts, block and buffer must be >= 0, got {sp}")
    if sp.on_shortfall not in ("error", "ratio"):
        raise ConfigError(f"splits.on_shortfall must be 'error' or 'ratio', "
                          f"got {sp.on_shortfall!r}")
    if m.regions.test_regions and not m.regions.file:
        raise ConfigError("regions.test_regions needs regions.file (the polygons)")
    for name in m.regions.test_regions:
        if not isinstance(name, str) or not name.strip() or name in (".", "..") or \
                any(c in name for c in "/\\") or name != name.strip():
            raise ConfigError(f"regions.test_regions: {name!r} cannot name a store group "
                              "(regions/<name>); expected a non-empty name without '/', '\\', "
                              "surrounding spaces, and not '.' or '..'")
    if m.regions.chunk % g.ratio:
        raise ConfigError(f"regions.chunk ({m.regions.chunk}) must be a multiple of the "
                          f"ratio {g.ratio}")
    if not 0.0 <= m.qa.min_valid_fraction <= 1.0 or not 0.0 <= m.qa.min_lit_fraction <= 1.0:
        raise ConfigError(f"qa fractions must lie in [0, 1], got {m.qa}")


def source_bands(name: str, spec: SourceSpec) -> tuple[int, ...]:
    """1-based file bands read for a source (DMO band names resolved through its sensor)."""
    if name == "dmo":
        return resolve_bands(lambda k: getattr(spec, k))[0]
    return tuple(spec.bands)


def source_scaling(name: str, spec: SourceSpec) -> tuple[float | str, float | str]:
    """Scale and offset of a source (a DMO sensor preset's unless set explicitly)."""
    if name == "dmo":
        _, _, scale, offset = resolve_bands(lambda k: getattr(spec, k))
        return scale, offset
    return spec.scale, spec.offset


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; nested dicts merge, ``a__b=v`` sets ``base[a][b]``."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if "__" in key:
            head, rest = key.split("__", 1)
            out[head] = _deep_merge(out.get(head) or {}, {rest: value})
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def list_presets() -> list[str]:
    """Names of the packaged manifest presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def world_cache_dir(world: WorldSpec) -> Path:
    """Where a synthetic world is generated on the fly (``$DEEPLIGHT_CACHE`` or ~/.cache)."""
    root = Path(os.environ.get("DEEPLIGHT_CACHE", Path.home() / ".cache" / "deeplight"))
    return root / "worlds" / f"{world.preset}-seed{world.seed}"


def load_manifest(preset_or_path: str | Path, world_dir: Path | None = None,
                  **overrides: Any) -> Manifest:
    """Load a packaged preset by name, or a manifest YAML file, and validate it.

    Args:
        preset_or_path: a preset name (``tiny``, ``demo``, ``paper``, ...) or a YAML path.
        world_dir: directory the source paths are relative to (for the synthetic presets: the
            world made by ``deeplightmd synth``; when omitted it is generated into a cache dir
            on first use).
        **overrides: manifest keys to replace; nested with dicts or ``section__key=value``.

    Raises:
        ConfigError: unknown preset, missing file, YAML error or invalid manifest.
    """
    text_path = Path(preset_or_path)
    if str(preset_or_path) in list_presets():
        path = PRESETS_DIR / f"{preset_or_path}.yaml"
    elif text_path.suffix in (".yaml", ".yml") or text_path.exists():
        path = text_path
        if not path.is_file():
            raise ConfigError(f"manifest file {str(path)!r} does not exist")
    else:
        raise ConfigError(f"unknown preset {str(preset_or_path)!r}; expected one of "
                          f"{list_presets()} or a manifest .yaml path")
    try:
        data = yamlio.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"manifest {str(path)!r} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from exc
    data = _deep_merge(data or {}, overrides)
    base = path.resolve().parent
    if world_dir is not None:
        data.pop("base_dir", None)
        base = Path(world_dir).resolve()
    elif data.get("world") and path.parent == PRESETS_DIR:
        base = world_cache_dir(_build(WorldSpec, data["world"], "world")).resolve()
    return manifest_from_dict(data, base)


def ensure_world(m: Manifest) -> None:
    """Generate the manifest's synthetic world into ``base_dir`` when it is not there yet."""
    if m.world is None or (m.base_dir / "world.json").is_file():
        return
    from deeplightmd.synth import generate_world

    generate_world(m.base_dir, preset=m.world.preset, seed=m.world.seed, overwrite=True)
