"""The ``deeplightmd`` command line.

Each sub-command lives in the module that owns its responsibility and is imported only when it is
run (so ``deeplightmd --help`` stays fast and a broken optional dependency breaks one command only).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import warnings
from typing import Any

import click

from deeplightmd._version import __version__
from deeplightmd.errors import DataWarning, DeepLightError

#: the toolkit's own sub-commands: name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "synth": "deeplightmd.synth.cli:synth",
    "build": "deeplightmd.builder.cli:build",
    "info": "deeplightmd.builder.cli:info",
    "validate": "deeplightmd.builder.cli:validate",
    "preview": "deeplightmd.builder.cli:preview",
}

#: entry-point group through which other packages add sub-commands (setup.cfg declares the
#: harness's: bench, methods, leaderboard, predict)
ENTRY_POINT_GROUP = "deeplightmd.commands"

#: the harness's sub-commands by module name, used when the installed metadata lacks the entry
#: points (an editable checkout installed before the group existed, or a plain source tree on
#: ``PYTHONPATH``); a name only: nothing is imported unless the command is run, and a command
#: whose module is absent is not listed
FALLBACK_COMMANDS: dict[str, str] = {
    "bench": "benchmarks.cli:bench",
    "methods": "benchmarks.cli:methods",
    "leaderboard": "benchmarks.leaderboard.cli:leaderboard",
    "predict": "benchmarks.predict.cli:predict",
}


def all_commands() -> dict[str, str]:
    """Every sub-command: the toolkit's, then the entry points of :data:`ENTRY_POINT_GROUP`
    (falling back to :data:`FALLBACK_COMMANDS` for names no entry point gives). A plug-in cannot
    replace a toolkit command."""
    found = dict(FALLBACK_COMMANDS)
    try:
        points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # broken metadata must not break the toolkit's commands
        points = ()
    for point in points:
        found[point.name] = point.value
    return {**found, **COMMANDS}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(n for n, target in self.lazy_commands.items() if _importable(target))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and _importable(self.lazy_commands[cmd_name]):
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DeepLightError as exc:
            raise UserError(str(exc)) from exc


class UserError(click.ClickException):
    """A :class:`DeepLightError` shown as ``Error: <message>`` with exit code 2."""

    exit_code = 2


def _importable(target: str) -> bool:
    """True when the module named in ``target`` exists (it is not imported here)."""
    module_name = target.split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup, lazy_commands=all_commands(),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="deeplightmd")
def cli() -> None:
    """DeepLightMD: build, inspect and benchmark multi-modal nighttime-light super-resolution data.

    \b
    Typical session:
      deeplightmd synth world/ --preset tiny          # synthetic multi-sensor rasters
      deeplightmd build --preset tiny --out d.zarr    # reproject, cut clips, split, store in Zarr
      deeplightmd bench --method bicubic --store d.zarr
      deeplightmd leaderboard show
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors print one line on stderr and exit with code 2;
    a :class:`DataWarning` prints one ``Warning: ...`` line."""
    with warnings.catch_warnings():
        default = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            if issubclass(category, DataWarning):
                print(f"Warning: {message}", file=sys.stderr)
            else:
                default(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        cli.main(args=argv, prog_name="deeplightmd")


if __name__ == "__main__":
    main()
