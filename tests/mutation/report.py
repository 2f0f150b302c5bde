"""Per-module mutation score of the last ``mutmut run`` (``make mutation``).

Reads mutmut's result files (``mutants/<module path>.meta``) for every module in
``[tool.mutmut] only_mutate`` of pyproject.toml, leaves out the equivalent mutants listed with a
reason in ``tests/mutation/equivalent.txt`` and prints ``killed / total`` per module (timeouts
count as killed). Mutants not run yet are counted apart. Exit status 1 when a module scores below
``--min`` percent or has mutants not run (path prefixes given to ``--no-gate`` are reported,
not gated), 2 when a module has no results at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
#: mutmut exit codes (mutmut.stats.status_by_exit_code): 1/3 killed, 0 survived, 36/24/-24/152/255
#: timeout (counted as killed: the mutant hangs the tests), 33/5 no tests, None not checked
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
SURVIVED = {0}


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """``{mutant name: reason}`` from lines ``NAME  reason``; ``#`` starts a comment line."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"Error: {path}:{n}: expected 'MUTANT_NAME  reason', found {line!r}")
        out[name] = reason.strip()
    return out


def module_of(path: str) -> str:
    """``deeplightmd/builder/splits.py`` -> ``deeplightmd.builder.splits``."""
    return path.removesuffix(".py").replace("/", ".")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min", type=float, default=85.0, help="required percent killed")
    ap.add_argument("--no-gate", nargs="*", default=[],
                    help="path prefixes reported but not gated")
    args = ap.parse_args()
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    equivalent = load_equivalent()
    seen: set[str] = set()
    status = 0
    print(f"{'module':36} {'killed':>6} {'total':>6} {'score':>7} {'not run':>7}  survivors")
    for path in cfg["only_mutate"]:
        meta = ROOT / "mutants" / (path + ".meta")
        if not meta.is_file():
            print(f"{module_of(path):36} no results (run `make mutation` first)")
            status = max(status, 2)
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        seen |= set(codes) & set(equivalent)
        run = {k: v for k, v in codes.items() if k not in equivalent and v is not None}
        killed = sum(v in KILLED or v in TIMEOUT for v in run.values())
        survivors = sorted(k.rsplit(".", 1)[-1] for k, v in run.items()
                           if not (v in KILLED or v in TIMEOUT))
        not_run = sum(v is None for k, v in codes.items() if k not in equivalent)
        score = 100.0 * killed / len(run) if run else float("nan")
        gated = not any(path.startswith(p) for p in args.no_gate)
        low = gated and not score >= args.min
        shown = " ".join(survivors[:12]) + (f" ... (+{len(survivors) - 12})"
                                             if len(survivors) > 12 else "")
        print(f"{module_of(path):36} {killed:6d} {len(run):6d} {score:6.1f}% {not_run:7d}  "
              f"{shown or '-'}{'  [below ' + str(args.min) + ' %]' if low else ''}")
        if low or not_run:
            status = max(status, 1)
    stale = sorted(set(equivalent) - seen)
    if stale:
        print(f"equivalent.txt names {len(stale)} mutant(s) without results (renamed or not run): "
              + " ".join(stale))
    print(f"{len(seen)} equivalent mutant(s) excluded (tests/mutation/equivalent.txt)")
    return status


if __name__ == "__main__":
    sys.exit(main())
