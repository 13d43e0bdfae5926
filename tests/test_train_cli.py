"""`facerec-train`: one documented option per TrainConfig field, mapped onto the config unchanged."""

import dataclasses
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import facerec.cli.train as cli
from facerec.training.config import TrainConfig


def test_every_config_field_is_an_option_with_help_and_its_default():
    ctx = click.Context(cli.main)
    options = {p.name: p for p in cli.main.params if isinstance(p, click.Option)}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in options, f"TrainConfig.{f.name} has no facerec-train option"
    for name, p in options.items():
        decl, text = p.get_help_record(ctx)
        assert len(text.split("  [")[0]) > 15, f"{decl}: no help (add it to facerec.cli.train.HELP)"
        assert "[default: " in text or "[required]" in text, f"{decl}: its default is not shown"


@pytest.fixture()
def calls(monkeypatch):
    """What facerec-train hands to train(), without training."""
    seen = []
    monkeypatch.setattr(cli, "train", lambda cfg, resume, progress: seen.append((cfg, resume, progress)) or "OUT")
    return seen


def test_options_map_onto_the_config(calls):
    r = CliRunner().invoke(cli.main, ["--cache", "a", "--out", "o"])
    assert r.exit_code == 0 and r.stdout == "OUT\n", r.output
    assert calls[-1] == (TrainConfig(caches=["a"], out="o"), False, 2)  # defaults are TrainConfig's; a log: no bar
    args = ["--cache", "a", "--cache", "b:people.txt", "--out", "o", "--exclude-pairs", "p1", "--exclude-pairs", "p2",
            "--backbone", "tiny", "--learning-rate", "3e-4", "--epochs", "2", "--teacher", "sface,dlib", "--resume", "-q"]
    assert CliRunner().invoke(cli.main, args).exit_code == 0
    cfg, resume, progress = calls[-1]
    assert cfg == TrainConfig(caches=["a", "b:people.txt"], out="o", exclude_pairs=["p1", "p2"], backbone="tiny",
                              learning_rate=3e-4, epochs=2, teacher="sface,dlib")
    assert resume and progress == 0


def test_usage_mistakes_are_one_line_and_exit_2(calls):
    r = CliRunner().invoke(cli.main, ["--cache", "a"])
    assert r.exit_code == 2 and "Missing option '--out'" in r.output
    r = CliRunner().invoke(cli.main, ["--cache", "a", "--out", "o", "--backbone", "resnet"])
    assert r.exit_code == 2 and "'resnet' is not one of" in r.output and not calls


def test_python_m_is_the_same_command():
    r = subprocess.run([sys.executable, "-m", "facerec.train", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("Usage: facerec-train [OPTIONS]") and "--exclude-pairs" in r.stdout
