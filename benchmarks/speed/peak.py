"""Peak resident memory of a program, measured from inside it.

Linux carries ``ru_maxrss`` across ``fork`` + ``exec``: a child's ``getrusage``/``wait4`` value
starts at its parent's peak, so a small child of a big benchmark driver reports the driver's
size. ``VmHWM`` in ``/proc/self/status`` belongs to the program image and starts afresh at
``exec``; :func:`peak_rss_mb` reads it (``ru_maxrss`` where there is no ``/proc``).

Run a module under measurement (its exit status is kept; the peak is written as JSON)::

    python -m benchmarks.speed.peak OUT.json deeplightmd.cli predict --method bicubic ...
"""

from __future__ import annotations

import json
import re
import resource
import runpy
import sys
from pathlib import Path

from deeplightmd.atomic import write_text


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (VmHWM; ``ru_maxrss`` as a fallback)."""
    try:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    scale = 2 ** 20 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main() -> None:
    """``peak OUT.json MODULE [ARGS...]``: run ``MODULE`` as ``__main__``, then write the peak."""
    if len(sys.argv) < 3:
        raise SystemExit("usage: python -m benchmarks.speed.peak OUT.json MODULE [ARGS...]")
    out, module, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    sys.argv = [module, *args]
    code: int | str | None = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    write_text(out, json.dumps({"peak_rss_mb": peak_rss_mb()}))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
