"""Speed and memory benchmarks (`make bench-speed`); run each module with `python -m`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit_report(report: dict[str, Any], out_json: Path | str | None) -> dict[str, Any]:
    """Print ``report`` as indented JSON and also write it to ``out_json`` when given."""
    text = json.dumps(report, indent=2)
    if out_json:
        Path(out_json).write_text(text)
    print(text)
    return report
