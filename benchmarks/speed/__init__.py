"""Speed and memory benchmarks (`make bench-speed`); run each module with `python -m`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deeplightmd.atomic import write_text


def emit_report(report: dict[str, Any], out_json: Path | str | None) -> dict[str, Any]:
    """Print ``report`` as indented JSON and also write it to ``out_json`` when given."""
    text = json.dumps(report, indent=2)
    if out_json:
        write_text(out_json, text + "\n")
    print(text)
    return report
