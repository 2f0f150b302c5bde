"""The PyTorch dataset over a split of a DeepLightMD store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deeplightmd.access._store import (
    LazyGroup,
    StoreLike,
    band_request,
    check_modalities,
    check_split,
    conform,
    load_attrs,
    normalizer_of,
    sensor_model_of,
    store_url,
)
from deeplightmd.errors import ConfigError
from deeplightmd.integrity import decode_errors, verify_store
from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import store_modalities

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Sample = dict[str, Any]


def check_crop(crop: int | tuple[int, int] | None, clip: int) -> tuple[int, int] | None:
    """``crop`` (LR pixels, one side or ``(h, w)``) as a pair, checked against the clip side."""
    if crop is None:
        return None
    pair = (crop, crop) if isinstance(crop, (int, np.integer)) else tuple(crop)
    if len(pair) != 2 or not all(isinstance(c, (int, np.integer)) for c in pair):
        raise ConfigError(f"crop must be an int or a pair of ints (LR pixels), got {crop!r}")
    if min(pair) <= 0:
        raise ConfigError(f"crop must be positive (LR pixels), got {crop!r}")
    if max(pair) > clip:
        raise ConfigError(f"crop {crop!r} is larger than the store's LR clip of {clip} pixels")
    return int(pair[0]), int(pair[1])


def to_tensor(name: str, x: np.ndarray, normalizer: Normalizer | None) -> torch.Tensor:
    """A stored array as a float32 ``(C, H, W)`` tensor, normalised when ``normalizer`` is given."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if normalizer is not None:
        x = normalizer.normalize(name, x)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


class DeepLightDataset(Dataset):
    """Clips of one split of a DeepLightMD store as dicts of aligned tensors.

    Dataset features:

    * LR NTL ``(1, h, w)`` and the HR-grid layers ``hr_ntl (1, H, W)``, ``dmo (7, H, W)``,
      ``dem (1, H, W)``, ``isp (1, H, W)`` with ``H = ratio · h`` on the same footprint;
    * optional random aligned crops (LR ``c`` ↔ HR ``ratio · c``) and paired augmentations;
    * normalisation with the store's train statistics (:class:`~deeplightmd.normalize.Normalizer`,
      exposed as :attr:`normalizer`, exact inverse ``normalizer.denormalize``);
    * metadata ``clip_id`` (int), ``bounds`` (float64 ``(4,)``: left, bottom, right, top of the
      crop in the store's CRS) and ``crs`` (WKT).

    Randomness (crop offset, and the torch generator seen by ``transforms``) is derived from
    ``(seed, epoch, index)``, so a sample does not depend on the DataLoader's number of workers;
    call :meth:`set_epoch` to draw new crops each epoch. The zarr store is opened lazily in each
    process, so the dataset is safe with ``num_workers > 0``.

    Args:
        store: path or fsspec URL of the store.
        split: ``train``, ``val`` or ``test``.
        modalities: the modalities to return (default: every modality of the store).
        crop: LR crop side (int) or ``(h, w)``; ``None`` returns whole clips.
        transforms: callable on the sample dict, e.g.
            :class:`~deeplightmd.access.RandomFlipRotate`.
        normalize: return normalised values (else physical units, ``isp`` as 0/1 floats).
        seed: seed of the crops and transforms.
        verify: integrity check of the store before use (:func:`deeplightmd.integrity.
            verify_store`): ``fast`` (default; chunk objects against the manifest), ``full``
            (also every chunk's CRC32C) or ``none``.
        bands: bands wanted per multi-band modality, by name (e.g. ``{"dmo": ("red", "nir")}``;
            a method's ``bands``): returned in that order, a band the store lacks as zeros in
            normalised space (the band's training mean), or 0 when ``normalize=False``;
            :attr:`normalizer` is adjusted to match. ``None``: the store's bands.

    Raises:
        StoreError: the store is missing, of another format version, or fails ``verify``;
            a chunk that cannot be decoded while reading a sample.
        ConfigError: unknown split or modality, crop not positive or larger than a clip.
    """

    def __init__(self, store: StoreLike, split: str,
                 modalities: Iterable[str] | None = None,
                 crop: int | tuple[int, int] | None = None,
                 transforms: Callable[[Sample], Sample] | None = None,
                 normalize: bool = True, seed: int = 0, verify: str = "fast",
                 bands: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.url = store_url(store)
        self.attrs = load_attrs(self.url)
        verify_store(self.url, self.attrs, verify)
        self.split = check_split(split, self.attrs)
        #: what every modality of the store is (bands, units, ...): :mod:`deeplightmd.modalities`
        self.specs = store_modalities(self.attrs)
        self.modalities = check_modalities(self.specs if modalities is None else modalities,
                                           tuple(self.specs))
        grid = self.attrs["grid"]
        self.ratio = int(grid["ratio"])
        self.lr_clip = int(grid["lr_clip"])
        self.crop = check_crop(crop, self.lr_clip)
        self.crs: str = grid["crs_wkt"]
        self.transforms = transforms
        self.normalize = normalize
        self.bands = band_request(self.specs, bands)
        self.normalizer = normalizer_of(self.attrs, self.specs, self.bands)
        self.sensor_model = sensor_model_of(self.attrs)
        self.seed = int(seed)
        self.epoch = 0
        self._group = LazyGroup(self.url, split)
        done = np.asarray(self._group["done"][:])
        self._clips = np.flatnonzero(done == 1)
        self._clip_ids = np.asarray(self._group["clip_id"][:])[self._clips]
        self._bounds = np.asarray(self._group["bounds"][:], dtype=np.float64)[self._clips]

    def __len__(self) -> int:
        return len(self._clips)

    def set_epoch(self, epoch: int) -> None:
        """Use the crops/augmentations of ``epoch`` (set it before iterating a DataLoader)."""
        self.epoch = int(epoch)

    def sample_rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of sample ``index`` in ``epoch`` (default: the current epoch)."""
        return np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        """Sample ``key`` (an index, or ``(index, epoch)`` to pick the epoch explicitly)."""
        index, epoch = (key if isinstance(key, tuple) else (key, self.epoch))
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} clips")
        index = int(index) % n
        rng = self.sample_rng(index, epoch)
        h = w = self.lr_clip
        r0 = c0 = 0
        if self.crop is not None:
            h, w = self.crop
            r0 = int(rng.integers(0, self.lr_clip - h + 1))
            c0 = int(rng.integers(0, self.lr_clip - w + 1))
        sample: Sample = self._read(index, r0, c0, h, w)
        sample["clip_id"] = int(self._clip_ids[index])
        sample["bounds"] = torch.from_numpy(self._crop_bounds(index, r0, c0, h, w))
        sample["crs"] = self.crs
        if self.transforms is not None:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(int(rng.integers(2**63 - 1)))
                sample = self.transforms(sample)
        return sample

    def _read(self, index: int, r0: int, c0: int, h: int, w: int) -> Sample:
        """The requested modalities of a crop, as float32 ``(C, h, w)`` tensors."""
        clip = int(self._clips[index])
        requests = []
        for name in self.modalities:
            s = 1 if self.specs[name].grid == "lr" else self.ratio
            window = (slice(r0 * s, (r0 + h) * s), slice(c0 * s, (c0 + w) * s))
            requests.append((name, (clip, Ellipsis, *window)))
        with decode_errors(self.url, f"{self.split} clip {clip}"):
            arrays = self._group.read_many(requests)
        return {name: to_tensor(name, conform(self.specs, self.bands, name, x),
                                self.normalizer if self.normalize else None)
                for name, x in zip(self.modalities, arrays, strict=True)}

    def _crop_bounds(self, index: int, r0: int, c0: int, h: int, w: int) -> np.ndarray:
        left, bottom, right, top = self._bounds[index]
        px_x, px_y = (right - left) / self.lr_clip, (top - bottom) / self.lr_clip
        new_left, new_top = left + c0 * px_x, top - r0 * px_y
        return np.array([new_left, new_top - h * px_y, new_left + w * px_x, new_top])

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Plot a sample (radiance on a log scale, DMO as RGB); returns the figure."""
        from deeplightmd.access.plot import plot_sample

        return plot_sample(sample, normalizer=self.normalizer if self.normalize else None,
                           show_titles=show_titles, suptitle=suptitle, modalities=self.specs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.url!r}, split={self.split!r}, n={len(self)}, "
                f"modalities={self.modalities}, crop={self.crop}, ratio={self.ratio})")


__all__ = ["DeepLightDataset", "check_crop", "to_tensor"]
