"""Every case of the bad-input corpus (tests/data/bad) through the CLI's ``main``: the
documented exit code, every expected fragment, and never a traceback.

All cases run in ONE child process (a fresh interpreter per case would cost ~1-2 s of imports
each); the child calls ``app.cli.main`` once per case and lets any uncaught exception
print its traceback, which the test then finds. ``test_cli_data.py`` runs the console entry
point itself in separate processes for the done-when case.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).parents[1] / "data" / "bad"
EXPECTED = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))
MARK = "=====CASE "

DRIVER = f"""
import contextlib, io, sys, traceback
from app.cli.main import main
for case in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(["data", "validate", "--data", str({str(BAD)!r}) + "/" + case])
        except BaseException:
            traceback.print_exc()
            code = -1
    sys.__stdout__.write(f"{MARK}{{case}} {{code}}\\n{{out.getvalue()}}")
"""


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[int, str]]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *sorted(EXPECTED)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, tuple[int, str]] = {}
    for chunk in proc.stdout.split(MARK)[1:]:
        head, _, body = chunk.partition("\n")
        case, code = head.split()
        found[case] = (int(code), body)
    return found


def test_corpus_has_a_folder_per_case():
    folders = {p.name for p in BAD.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_case(case, results):
    code, out = results[case]
    assert "Traceback" not in out
    assert code == EXPECTED[case]["exit"], out
    for fragment in EXPECTED[case]["fragments"]:
        assert fragment in out, f"{case}: {fragment!r} not in output:\n{out}"
    if code == 2:
        assert "INVALID" in out and f"{BAD}/{case}" in out
