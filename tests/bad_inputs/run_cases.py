"""Run many ``deeplightmd`` command lines in one process, as the console script would.

Reads a JSON list of argument lists on stdin and writes a JSON list of ``{"rc", "stderr"}`` to
the file named by the first argument (stdout is left to the commands).
Each command goes through the console script's entry point (``deeplightmd.cli:cli`` in click's
standalone mode: ``Error: …`` + exit code for user errors, a traceback + exit code 1 for any
other exception), with file descriptor 2 redirected so C-level (GDAL) output is captured too.
Importing the package once instead of once per case keeps the corpus fast on a small machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback


def run_one(argv: list[str]) -> dict[str, object]:
    """Exit code and everything written to stderr by ``deeplightmd *argv``."""
    from deeplightmd.cli import cli

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            cli.main(args=argv, prog_name="deeplightmd", standalone_mode=True)
            rc = 0
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            rc = 1
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        err = capture.read().decode(errors="replace")
    return {"rc": rc, "stderr": err}


def main() -> None:
    """Run the command lines given on stdin; results into the file ``sys.argv[1]``."""
    cases = json.load(sys.stdin)
    results = [run_one(list(argv)) for argv in cases]
    with open(sys.argv[1], "w", encoding="utf-8") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
