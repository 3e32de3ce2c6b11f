"""benchmarks/fit_groups_vs_joint.py and benchmarks/bench_scale_fit.py run end to end on a
tiny synthetic world, and what they report matches a recomputation."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import simulator.fit
from simulator.fit import FitConfig, fit_catalog

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _cells(out: str, field: str) -> list[str]:
    """The cells of the printed table's row ``field``."""
    (line,) = [ln for ln in out.splitlines() if ln.startswith(f"| {field} |")]
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_fit_groups_vs_joint_prints_the_largest_differences_of_its_fits(capsys, monkeypatch):
    script = _script("fit_groups_vs_joint")
    per_group = simulator.fit.fit_by_group
    assert script.main(["--max-skus", "120", "--weeks", "40"]) == 0
    assert simulator.fit.fit_by_group is per_group  # the script put the fit back
    out = capsys.readouterr().out

    # the same two fits, recomputed: the fit as it is, and the joint fit in its place
    panel, _ = script.panel_of("synthetic", 120, 40)
    plain = fit_catalog(panel, FitConfig(pooling="eb"))
    monkeypatch.setattr(simulator.fit, "fit_by_group", script.joint)
    joint = fit_catalog(panel, FitConfig(pooling="eb"))
    diff = float(np.max(np.abs(plain.catalog.elasticity - joint.catalog.elasticity)))
    raw = plain.estimates["elasticity_raw"].to_numpy(float)
    raw_diff = float(np.nanmax(np.abs(raw - joint.estimates["elasticity_raw"].to_numpy(float))))
    assert _cells(out, "elasticity")[0] == f"{diff:.2g}"
    assert _cells(out, "elasticity_raw")[0] == f"{raw_diff:.2g}"
    # the groups share no parameter: the two agree up to Newton's stopping rule
    assert 0 < diff < 0.01
    assert f"source synthetic: {plain.catalog.n_skus} SKUs" in out
    # the exact fit is at least as close to the per-group fit as the tolerance allows
    assert float(_cells(out, "elasticity")[1]) < 0.01


@pytest.mark.slow
def test_bench_scale_fit_writes_its_section_and_json_and_both_engines_agree(ray_local, tmp_path):
    script = _script("bench_scale_fit")
    page = tmp_path / "scale.md"
    page.write_text(
        "# Scale\n\nkept\n\n<!-- fit:start -->\nold figures\n<!-- fit:end -->\n\nafter\n"
    )
    results = tmp_path / "scale_fit.json"
    argv = ["--skus", "150", "--weeks", "30", "--categories", "3", "--cpus", "2"]
    assert script.main([*argv, "--page", str(page), "--json", str(results)]) == 0
    assert ray_local.is_initialized()  # the session's Ray is not the script's to stop

    record = json.loads(results.read_text())
    assert set(record["engines"]) == {"local", "ray"} and record["skus"] == 150
    assert all(e["wall_s"] > 0 and e["cpu_s"] > 0 for e in record["engines"].values())
    assert record["max_abs_elasticity_diff"] == 0.0  # same inputs, same arrays on both
    assert record["ray_cpus"] == 2 and record["command"].endswith(" ".join(argv))

    text = page.read_text()
    assert text.startswith("# Scale\n\nkept\n") and text.rstrip().endswith("after")
    assert "old figures" not in text and text.count("<!-- fit:start -->") == 1
    assert f"`{record['command']}`" in text and "shared with other work" in text
    local = record["engines"]["local"]
    assert f"| local | {local['wall_s']:.1f} | {local['cpu_s']:.1f} |" in text
    assert "Both engines give the same elasticities" in text
    # the section again from the figures alone (no fit): the same text
    again = tmp_path / "again.md"
    assert script.main(["--from-json", "--json", str(results), "--page", str(again)]) == 0
    section = text.split("<!-- fit:start -->")[1].split("<!-- fit:end -->")[0]
    assert section in again.read_text()
