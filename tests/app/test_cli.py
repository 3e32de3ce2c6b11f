"""The CLI shell: help works and user errors never print a traceback."""

from __future__ import annotations

import subprocess
import sys

from app.cli.main import build_parser, main


def test_help_lists_every_registered_group(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: deadstock" in out
    parser = build_parser()
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name in getattr(action, "choices", {}) or {}:
            assert name in out


def test_console_script_help_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "deadstock" in proc.stdout
    assert "Traceback" not in proc.stderr
