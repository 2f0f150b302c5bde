"""Golden values for what every benchmark number depends on: which clips are train/val/test, and
the seeded bootstrap interval and Wilcoxon test every reported number goes through.

The split rules (deeplightmd/builder/splits.py) are exact, so these tests pin their output on small
non-square lattices: a change of the buffer width, the automatic block size or a greedy rule
changes which clips are test clips, and with them every benchmark number. Such a change must be
deliberate: update the constants here in the same commit and give the reason in its message.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.metrics import bootstrap_ci, paired_wilcoxon
from deeplightmd.builder.manifest import SplitSpec
from deeplightmd.builder.splits import SplitResult, split_clips
from deeplightmd.errors import ConfigError

SPLITS = ("train", "val", "test")


def lattice(shape: tuple[int, int], seed: int, holes: float) -> list[tuple[int, int]]:
    """Eligible clips of a ``shape`` lattice with a seeded fraction ``holes`` left out."""
    rng = np.random.default_rng(seed)
    return [(r, c) for r in range(shape[0]) for c in range(shape[1]) if rng.random() > holes]


def min_distance(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Smallest Chebyshev distance between a clip of ``a`` and a clip of ``b``."""
    pa, pb = np.array(a), np.array(b)
    return int(np.abs(pa[:, None] - pb[None]).max(axis=2).min())


# 9 x 14 lattice, 20 % holes, automatic block (val = test = 6 -> ceil(sqrt(3)) = 2), buffer 1
GOLDEN_A = SplitResult(
    train=[(0, 3), (0, 4), (0, 8), (0, 11), (0, 12), (0, 13), (1, 4), (1, 6), (1, 7), (1, 9),
           (1, 11), (1, 12), (2, 4), (2, 5), (2, 6), (2, 10), (2, 13), (3, 8), (4, 4), (4, 6),
           (4, 7), (4, 8), (4, 10), (4, 11), (5, 6), (5, 8), (5, 9), (6, 0), (6, 2), (6, 5),
           (6, 10), (7, 3), (7, 8), (7, 10), (8, 1), (8, 5), (8, 6), (8, 7), (8, 9), (8, 10)],
    val=[(3, 0), (3, 1), (4, 0), (4, 1), (7, 12), (8, 12)],
    test=[(0, 0), (0, 1), (1, 0), (1, 1), (4, 13), (5, 13)],
)
# 13 x 6 lattice, 15 % holes, 2 x 2 blocks, buffer 2
GOLDEN_B = SplitResult(
    train=[(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 3), (1, 4), (2, 2), (2, 3), (3, 0),
           (3, 3), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4), (5, 3), (5, 4), (5, 5), (6, 0),
           (6, 3), (6, 4), (6, 5), (7, 4), (7, 5)],
    val=[(10, 0), (11, 0), (11, 1), (12, 0), (12, 1)],
    test=[(11, 4), (11, 5), (12, 4), (12, 5)],
)
CASES = {
    "A": ((9, 14), 1, 0.2, SplitSpec(train=40, val=6, test=6, block=0, buffer=1), GOLDEN_A),
    "B": ((13, 6), 5, 0.15, SplitSpec(train=25, val=5, test=4, block=2, buffer=2), GOLDEN_B),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_split_on_non_square_lattices(case):
    """The exact clip positions of every split (seed 7).

    Fails when the buffer (``dilate``), the automatic block size or a greedy rule (most usable
    clips, then fewest eligible clips lost to the buffer) changes. Update the golden lists only
    for a deliberate change of the split rules, with the reason in the commit message.
    """
    shape, seed, holes, spec, golden = CASES[case]
    eligible = lattice(shape, seed, holes)
    res = split_clips(eligible, shape, spec, seed=7)
    for name in SPLITS:
        assert getattr(res, name) == getattr(golden, name), name
    assert res.counts() == {"train": spec.train, "val": spec.val, "test": spec.test}


@pytest.mark.parametrize("case", sorted(CASES))
def test_splits_are_exactly_buffer_plus_one_apart(case):
    """Clips of different splits keep ``buffer + 1`` clips apart, and the greedy packing uses
    that room: some cross-split pair sits at exactly ``buffer + 1`` (not further)."""
    shape, seed, holes, spec, _ = CASES[case]
    res = split_clips(lattice(shape, seed, holes), shape, spec, seed=7)
    gaps = [min_distance(getattr(res, a), getattr(res, b))
            for a, b in [("train", "val"), ("train", "test"), ("val", "test")]]
    assert min(gaps) == spec.buffer + 1


def test_most_usable_clips_come_first_even_with_a_wide_buffer():
    """The greedy rule is lexicographic: a block with more usable clips wins however many
    eligible clips its buffer loses. With a 31-clip buffer every block of the dense 64 × 64
    region loses > 1000 clips, which once outweighed one usable clip (weights 1e6 vs 1e3) and
    made an isolated clip (and a far one) the test split."""
    eligible = [(0, 0)] + [(r, c) for r in range(33, 97) for c in range(33, 97)]
    res = split_clips(eligible, (97, 97), SplitSpec(5, 1, 2, block=2, buffer=31), seed=3)
    assert res.test == [(33, 96), (34, 96)]  # a corner block of the dense region: fewest lost
    assert res.val == [(0, 0)]
    assert res.train == [(68, 63), (72, 77), (74, 68), (87, 82), (91, 71)]


def test_isolated_clips_are_drawn_one_at_a_time():
    """When no block holds more than one usable clip, blocks of one clip are taken."""
    eligible = [(r, c) for r in range(0, 12, 2) for c in range(0, 15, 2)]
    res = split_clips(eligible, (12, 15), SplitSpec(10, 2, 3, block=2, buffer=1), seed=0)
    assert res.test == [(8, 14), (10, 12), (10, 14)]
    assert res.val == [(8, 12), (10, 10)]
    assert res.train == [(0, 4), (2, 0), (2, 4), (2, 10), (4, 2), (4, 8), (6, 6), (6, 10),
                         (8, 10), (10, 2)]


def test_golden_bootstrap_interval_and_wilcoxon():
    """Every reported interval comes from ``bootstrap_ci`` (seed 0, 2000 resamples, 95 %) and
    every significance call from ``paired_wilcoxon``: pinned on fixed values."""
    ci = bootstrap_ci([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert (ci.mean, ci.ci_low, ci.ci_high, ci.n, ci.confidence) == (5.5, 3.7, 7.3, 10, 0.95)
    ci = bootstrap_ci([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], confidence=0.8, n_resamples=500, seed=4)
    assert (ci.ci_low, ci.ci_high) == pytest.approx((4.4, 6.71), abs=1e-12)
    a = [30.1, 31.2, 29.8, 33.0, 32.5, 31.1, 30.0, 34.2]
    b = [29.0, 31.0, 30.1, 31.9, 31.0, 30.2, 29.9, 32.0]
    res = paired_wilcoxon(a, b)  # exact two-sided p of the signed-rank statistic 3, n = 8
    assert (res.statistic, res.p_value, res.n, res.better) == (3.0, 0.0390625, 8, "a")
    assert res.median_difference == pytest.approx(1.0)
    assert paired_wilcoxon(a, b, higher_is_better=False).better == "b"  # e.g. RMSE
    assert paired_wilcoxon(b, a).better == "b"
    assert paired_wilcoxon(a, b, alpha=0.0390625).better == "none"  # p < alpha, strictly
    mixed = paired_wilcoxon([1.0, 1, 1, -0.5, -0.5, -0.5, -0.5], [0.0] * 7)
    assert (mixed.statistic, mixed.p_value, mixed.better) == (10.0, 0.484375, "none")


BLOCK_4X = [(5, 0), (5, 1), (6, 0), (6, 1), (8, 3), (8, 4), (9, 3), (9, 4)]


@pytest.mark.parametrize(("val", "test", "golden_val", "golden_test"), [
    (1, 1, [(9, 0)], [(9, 11)]),                            # block 1
    (8, 1, BLOCK_4X, [(9, 0)]),                             # block ceil(sqrt(8 / 2)) = 2
    (1, 8, [(8, 0)], BLOCK_4X),                             # the larger of val and test counts
    (3, 3, [(5, 0), (5, 1), (6, 0)], [(8, 0), (9, 0), (9, 1)]),  # ceil(sqrt(1.5)) = 2
])
def test_golden_automatic_block_size(val, test, golden_val, golden_test):
    """``block: 0`` uses ``ceil(sqrt(max(val, test) / 2))`` clips (at least 1) for both splits."""
    eligible = lattice((10, 12), 2, 0.15)
    res = split_clips(eligible, (10, 12), SplitSpec(30, val, test, block=0, buffer=1), seed=7)
    assert (res.val, res.test) == (golden_val, golden_test)


def test_ratio_fallback_on_few_clips_is_exact_and_seeded():
    """8:1:1 of what exists, at least one clip per split: 12 clips give 10:1:1, 3 give 1:1:1;
    the fallback is seeded like the requested split."""
    grid = [(r, c) for r in range(3) for c in range(4)]
    spec = SplitSpec(400, 20, 20, block=1, buffer=0, on_shortfall="ratio")
    with pytest.warns(UserWarning, match=r"^only 12 eligible clips: using 8:1:1 counts "
                      r"\{'test': 1, 'val': 1, 'train': 10\} instead of the requested "
                      r"\{'train': 400, 'val': 20, 'test': 20\}$") as record:
        res = split_clips(grid, (3, 4), spec, seed=1)
    # stacklevel 2: the warning points at the caller (under `make mutation`, mutmut's trampoline)
    assert record[0].filename == __file__ or "mutmut" in record[0].filename
    assert res.counts() == {"train": 10, "val": 1, "test": 1}
    with pytest.warns(UserWarning):
        assert split_clips(grid, (3, 4), spec, seed=1) == res
    with pytest.warns(UserWarning, match="only 3 eligible clips"):
        three = split_clips(grid[:3], (3, 4), spec, seed=1)
    assert three.counts() == {"train": 1, "val": 1, "test": 1}
    rng = np.random.default_rng(0)
    eligible = [(r, c) for r in range(20) for c in range(20) if rng.random() > 0.15]
    ratio = SplitSpec(400, 20, 20, 3, 1, "ratio")
    with pytest.warns(UserWarning):
        first = split_clips(eligible, (20, 20), ratio, seed=1)
    with pytest.warns(UserWarning):
        assert split_clips(eligible, (20, 20), ratio, seed=1) == first


def test_shortfall_error_says_what_to_change():
    with pytest.raises(ConfigError, match=r"^too few clips for the requested split counts "
                       r"\{'train': 9, 'val': 1, 'test': 1\}: the 3 eligible clips give at most "
                       r"\{'test': 1, 'val': 1, 'train': 1\} with a 0-clip buffer; "
                       r"lower splits\.\* or set on_shortfall: ratio$"):
        split_clips([(0, 0), (0, 1), (0, 2)], (1, 3), SplitSpec(9, 1, 1, 1, 0), seed=0)
    with pytest.raises(ConfigError, match=r"^too few clips to split: 2 eligible clips, cannot "
                                          r"place an 8:1:1 split with a 0-clip buffer$"):
        split_clips([(0, 0), (0, 1)], (1, 3), SplitSpec(9, 1, 1, 1, 0, "ratio"), seed=0)


def test_the_paper_counts_split_exactly_on_a_paper_sized_lattice():
    """The DeepLight paper's 18,032 / 2,254 / 2,254 clips (``paper`` preset: block 8, buffer 1,
    no fallback) on a 166 x 158 lattice with 5 % of clips failing QA: exact counts, disjoint
    splits ``buffer + 1`` apart (and packed to exactly that), seeded; a 150 x 150 lattice
    (22,500 clips, fewer than the 22,540 asked) is refused with ``on_shortfall: error``."""
    from scipy import ndimage

    spec = SplitSpec(train=18032, val=2254, test=2254, block=8, buffer=1, on_shortfall="error")
    shape = (166, 158)
    eligible = lattice(shape, 3, 0.05)
    assert len(eligible) > 22540
    res = split_clips(eligible, shape, spec, seed=0)
    assert res.counts() == {"train": 18032, "val": 2254, "test": 2254}
    masks = {}
    for name in SPLITS:
        masks[name] = np.zeros(shape, bool)
        masks[name][tuple(np.array(getattr(res, name)).T)] = True
    assert not (masks["train"] & masks["val"]).any() and not (masks["val"] & masks["test"]).any()
    assert set(res.train + res.val + res.test) <= set(eligible)
    square = np.ones((2 * spec.buffer + 1,) * 2, bool)
    wider = np.ones((2 * spec.buffer + 3,) * 2, bool)
    touching = False
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not (ndimage.binary_dilation(masks[a], square) & masks[b]).any(), (a, b)
        touching |= bool((ndimage.binary_dilation(masks[a], wider) & masks[b]).any())
    assert touching
    assert split_clips(eligible, shape, spec, seed=0) == res
    with pytest.raises(ConfigError, match="too few clips for the requested split counts"):
        small = (150, 150)
        split_clips(lattice(small, 3, 0.0), small, spec, seed=0)
