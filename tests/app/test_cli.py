"""The CLI shell: help, descriptions and shown defaults on every command, the same flag names
for the same ideas, command groups that need a sub-command, and the one error boundary."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

import pytest

from app.cli.common import HelpFormatter
from app.cli.main import build_parser, main
from app.demand import DemandFitConfig
from app.pipeline_config import PipelineConfig
from simulator.stock import StockAssumptions


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (command path, parser) under ``parser``, groups included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


COMMANDS = dict(_commands(build_parser()))


def test_help_lists_every_registered_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: deadstock" in out
    for path in COMMANDS:
        if len(path) == 1:
            assert path[0] in out


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_has_a_description_and_shows_defaults(path):
    parser = COMMANDS[path]
    assert parser.description, f"deadstock {' '.join(path)} has no description"
    assert isinstance(parser.formatter_class("x"), HelpFormatter)
    formatter = HelpFormatter("deadstock")
    for action in parser._actions:
        shown = formatter._get_help_string(action) or ""
        has_default = action.default not in (None, False, [], argparse.SUPPRESS)
        if getattr(action, "config_default", None) or (has_default and action.help):
            assert "default" in shown, f"{path} {action.option_strings}: {shown!r}"
    parser.format_help()  # the config defaults resolve


@pytest.mark.parametrize(("group", "n"), [(("risk",), 3), (("data",), 7), (("demand",), 1)])
def test_a_group_without_a_subcommand_prints_its_help_and_exits_2(group, n, capsys):
    assert main(list(group)) == 2
    err = capsys.readouterr().err
    assert f"usage: deadstock {group[0]}" in err
    assert sum(1 for path in COMMANDS if path[:1] == group and len(path) == 2) == n
    assert main([]) == 2  # the top level too


def test_the_same_idea_has_the_same_flag_everywhere():
    flags = {
        path: {o for a in p._actions for o in a.option_strings} for path, p in COMMANDS.items()
    }
    reads_data = [p for p in flags if p[0] in ("run", "risk", "data", "demand") and len(p) > 1]
    reads_data += [("run",)]
    for path in reads_data:
        if path not in (("data", "synth"), ("data", "synth-bulk")):  # they make data
            assert "--data" in flags[path], path
    retired = {"--n-runs", "--no-log", "--no-mlflow", "--json", "--model-uri", "--uncertain"}
    for path, names in flags.items():
        if path != ("data", "describe"):  # describe --json: a format switch, not a file
            assert not names & retired, path
    assert "--episodes" in flags[("simulate",)] and "--episodes" in flags[("evaluate",)]
    assert "--no-track" in flags[("evaluate",)] and "--no-track" in flags[("demand", "fit")]
    assert "--no-track" in flags[("risk", "backtest")]
    assert "--model" in flags[("evaluate",)] and "--model" in flags[("risk", "score")]
    for path in (("run",), ("train",), ("demand", "fit"), ("simulate",), ("evaluate",)):
        assert "--config" in flags[path], path


def test_run_and_demand_fit_use_the_same_stock_assumption(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("app.pipeline.run_pipeline", lambda c: seen.setdefault("run", c) and 1 / 0)
    monkeypatch.setattr("app.demand.run_demand_fit", lambda c: seen.setdefault("fit", c) and 1 / 0)
    main(["run", "--out", str(tmp_path / "o")])
    main(["demand", "fit", "--out", str(tmp_path / "c.parquet")])
    run: PipelineConfig = seen["run"]
    fit: DemandFitConfig = seen["fit"]
    assert run.fit.stock == fit.fit.stock == StockAssumptions()
    assert fit.fit.stock.salvage_share == 0.0 and fit.fit.stock.velocity_weeks == 13
    # and every other setting of the demand fit is the same too
    shared = {k: v for k, v in vars(run.fit).items() if k != "peers_per_category"}
    assert shared == vars(fit.fit)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("horizon_weeks = 6.5", "horizon_weeks = 6.5"),
        ("[evaluation]\nn_episodes = 40.5", "[evaluation] n_episodes = 40.5"),
        ("[evaluation]\nquick_n_episodes = 40.5", "[evaluation] quick_n_episodes"),
        ('horizon_weeks = "twelve"', 'horizon_weeks = "twelve"'),
        ("horizon_wekes = 6", "did you mean 'horizon_weeks'"),
        ("horizon_weeks = [", "is not valid TOML"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_field(text, field, tmp_path, capsys):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert field in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_config_that_is_not_a_file_exits_2(where, tmp_path, capsys):
    path = tmp_path if where == "folder" else tmp_path / "missing.toml"
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert ("is a folder" if where == "folder" else "does not exist") in err


def test_bad_flag_values_exit_2_naming_the_flag(tmp_path, capsys):
    assert main(["risk", "backtest", "--data", str(tmp_path), "--models", "svm"]) == 2
    assert "models" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["run", "--seed", "x"])
    assert done.value.code == 2


def _explode(_args: argparse.Namespace) -> int:
    raise RuntimeError("boom in the library")


def test_an_unexpected_error_is_one_line_and_the_traceback_needs_v(monkeypatch, capsys):
    monkeypatch.setattr("app.cli.data.cmd_describe", _explode)
    assert main(["data", "describe", "--data", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'deadstock data describe' failed unexpectedly (RuntimeError: boom" in err
    assert "rerun with -v" in err and "deadstock 0." in err
    assert main(["-v", "data", "describe", "--data", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom in the library" in err
    assert main(["data", "describe", "--data", "x", "-v"]) == 1  # -v after the command too
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr("app.cli.data.cmd_describe", interrupted)
    assert main(["data", "describe", "--data", "x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_verbosity_sets_the_log_level(monkeypatch, capsys):
    def say(_args):
        logging.getLogger("app.somewhere").info("info line")
        logging.getLogger("app.somewhere").debug("debug line")
        logging.getLogger("app.somewhere").warning("careful")
        return 0

    monkeypatch.setattr("app.cli.data.cmd_describe", say)
    main(["data", "describe", "--data", "x"])
    err = capsys.readouterr().err
    assert "info line" in err and "debug line" not in err and "warning: careful" in err
    main(["-q", "data", "describe", "--data", "x"])
    err = capsys.readouterr().err
    assert "info line" not in err and "careful" in err
    main(["-v", "data", "describe", "--data", "x"])
    assert "debug line" in capsys.readouterr().err


def test_console_script_help_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "deadstock" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_train_on_a_gpu_that_is_not_there_exits_2_before_any_run(monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ppo.device = 'cuda'" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('target = "bandit"', "sweep target = 'bandit'"),
        (
            'target = "risk"\ndata = "x"\nmodel = "ens"\n[space]\nC = { uniform = [0.1, 1.0] }',
            "ens",
        ),
        ("[space]\nn_epochs = { uniform = [1, 4] }", "[space] n_epochs uniform"),
        ("[space]\nn_epochs = { randint = [1, 3] }\n[asha]\nmax_t = 0", "[asha] max_t = 0"),
        ("num_samples = 2.5", "num_samples = 2.5"),
    ],
)
def test_a_bad_sweep_file_exits_2_before_any_trial(text, field, tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert field in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written, no Ray started
