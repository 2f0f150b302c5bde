"""The command-line entry point."""

import subprocess
import sys

from click.testing import CliRunner

from deeplightmd.cli import cli


def test_help_lists_and_explains():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "nighttime-light" in result.output


def test_console_script_version():
    out = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("deeplightmd, version ")
