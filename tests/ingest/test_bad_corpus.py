"""Every case of the bad-input corpus (tests/data/bad) through the CLI's ``main``: the
documented exit code, every expected fragment (on one line for a command's error), no
forbidden fragment, never a traceback, nothing created that should not be, and an existing
output folder left exactly as it was.

All cases run in ONE child process (a fresh interpreter per case would cost ~1-2 s of imports
each), from a scratch working folder; the child calls ``app.cli.main`` once per case and lets
any uncaught exception print its traceback, which the test then finds.
``test_cli_data.py`` runs the console entry point itself in separate processes for the
done-when case.
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
CHANGED = "=====OUTPUT FOLDER CHANGED"

DRIVER = f"""
import contextlib, io, json, sys, traceback
from pathlib import Path
from app.cli.main import main

def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
                  for p in folder.rglob("*"))

expected = json.loads(Path({str(BAD / "expected.json")!r}).read_text(encoding="utf-8"))
for case in sys.argv[1:]:
    out_dir = Path.cwd() / ("out-" + case)
    (out_dir / "report").mkdir(parents=True)
    (out_dir / "report" / "report.md").write_text("the previous run's report")
    before = snapshot(out_dir)
    where = {{"case": {str(BAD)!r} + "/" + case, "out": str(out_dir)}}
    argv = [a.format(**where) for a in expected[case]["argv"]]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc()
            code = -1
    text = out.getvalue()
    if snapshot(out_dir) != before:
        text += "{CHANGED}\\n"
    sys.__stdout__.write(f"{MARK}{{case}} {{code}}\\n{{text}}")
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[int, str]]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *sorted(EXPECTED)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path_factory.mktemp("corpus"),
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
    spec = EXPECTED[case]
    code, out = results[case]
    assert "Traceback" not in out
    assert code == spec["exit"], out
    assert CHANGED not in out, f"{case}: the existing output folder was changed"
    for fragment in spec["fragments"]:
        assert fragment in out, f"{case}: {fragment!r} not in output:\n{out}"
    for fragment in spec.get("absent", []):
        assert fragment not in out, f"{case}: {fragment!r} in output:\n{out}"
    if spec.get("one_line"):
        lines = out.splitlines()
        assert any(all(f in line for f in spec["fragments"]) for line in lines), out
    elif code == 2:
        assert "INVALID" in out and f"{BAD}/{case}" in out
    for path in spec.get("absent_paths", []):
        assert not Path(path.format(case=f"{BAD}/{case}")).exists(), path
