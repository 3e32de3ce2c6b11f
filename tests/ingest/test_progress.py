"""Progress bars: one switch for all of them, stderr only, and rate-limited log lines."""

from __future__ import annotations

import logging

import pytest

from ingest import progress as prog
from ingest.progress import Progress, format_seconds, progress, progress_enabled, set_progress


@pytest.fixture(autouse=True)
def _automatic(monkeypatch):
    monkeypatch.delenv(prog.PROGRESS_ENV, raising=False)
    set_progress(None)
    yield
    set_progress(None)


def test_switch_order_function_then_environment_then_terminal(monkeypatch):
    assert not progress_enabled()  # pytest captures stderr: not a terminal
    monkeypatch.setenv(prog.PROGRESS_ENV, "1")
    assert progress_enabled()
    for off in ("0", "false", "Off", "no"):
        monkeypatch.setenv(prog.PROGRESS_ENV, off)
        assert not progress_enabled()
    set_progress(True)
    assert progress_enabled()
    monkeypatch.setenv(prog.PROGRESS_ENV, "1")
    set_progress(False)
    assert not progress_enabled()


def test_bars_go_to_stderr_never_stdout(capsys):
    set_progress(True)
    assert list(progress(range(5), desc="counting")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert out == "" and "counting" in err
    set_progress(False)
    assert list(progress(iter("ab"), desc="quiet", total=2)) == ["a", "b"]
    assert capsys.readouterr() == ("", "")


def test_progress_logs_count_speed_and_time_left(caplog):
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with Progress(1000, desc="ppo", unit="step", logger=log, log_every=0.0) as p:
            p.set_count(250)
            p.update(250)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("ppo: 250/1,000 steps (25%), ") and "steps/s" in lines[0]
    assert lines[0].endswith(" left")
    assert lines[-1].startswith("ppo: 500/1,000 steps (50%)")


def test_progress_is_rate_limited(caplog):
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with Progress(10, desc="slow", logger=log, log_every=3600.0) as p:
            for _ in range(10):
                p.update()
    assert caplog.records == []  # shorter than one interval: nothing logged, not even the end


def test_resumed_progress_counts_speed_from_where_it_started():
    p = Progress(100, desc="x", start=40)
    p.set_count(100)
    assert p.line().startswith("x: 100/100 its (100%)") and "done in" in p.line()
    p.close()


def test_format_seconds():
    assert format_seconds(42.4) == "42 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"
