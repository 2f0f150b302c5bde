"""``python -m benchmarks.train [bench options]``: one rank of a multi-process training run.

Meant for launchers that start the processes themselves and set ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``::

    torchrun --nproc-per-node 2 -m benchmarks.train --method edsr --store demo/demo.zarr

It takes the options of ``deeplightmd bench`` (``--help`` lists them) and runs it in this process;
``deeplightmd bench --nproc N`` starts ``N`` of these itself.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``deeplightmd bench`` with ``argv`` (default: the command line)."""
    from deeplightmd.cli import main as cli_main

    cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
