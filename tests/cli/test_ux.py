"""What a user reads: every command takes -w, help names only real views, short log lines."""

from __future__ import annotations

import re

from tests.fl_cli import run_fl

from frontload.catalog import VIEWS
from frontload.cli import command_tree


def _commands(command, path=()):
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_command_accepts_workspace():
    commands = list(_commands(command_tree()))
    assert len(commands) > 25
    missing = [
        name
        for name, command in commands
        if not {"-w", "--workspace"} <= {o for p in command.params for o in getattr(p, "opts", [])}
    ]
    assert not missing, f"commands without -w/--workspace: {missing}"


def test_stats_query_help_names_only_real_views(capsys, monkeypatch):
    code, output = run_fl(["stats", "query", "--help"], capsys, monkeypatch)
    assert code == 0
    text = " ".join(output.split())
    listed = re.search(r"catalog views: (.*?), and corpus_<name>", text).group(1)
    assert [name.strip() for name in listed.split(",")] == [spec.name for spec in VIEWS]
    for ghost in (" metrics,", "evaluations", "(pool, corpora"):
        assert ghost not in text


def test_curation_logs_are_short_lines(tmp_path):
    """In a real process, as on a terminal: datatrove's own task logs go to the run's log file."""
    import subprocess
    import sys

    from tests.curate.helpers import sample_recipe, write_recipe

    from frontload.quickstart.sample import generate_sample

    generate_sample(tmp_path / "sample", records=100, seed=2)
    recipe = sample_recipe(tmp_path / "sample", tasks=1)
    recipe["length"] = {"vocab_size": 4096}  # more than 100 records support: a warning line
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    done = subprocess.run(
        [sys.executable, "-m", "frontload", "curate", "run", str(path), "-w", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, output = done.returncode, done.stdout + done.stderr
    assert code == 0, output
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", output), output
    assert "| INFO" not in output and "| WARNING" not in output
    got = re.search(r"^warning: tokenizer has (\d+) tokens, not the 4096 asked", output, re.M)
    assert got, output
    assert re.search(rf"^trained a byte-level BPE tokenizer \(vocab {got[1]}\)", output, re.M)


def test_sql_on_an_empty_workspace_is_one_line_with_the_views(tmp_path, capsys, monkeypatch):
    ws = str(tmp_path / "ws")
    code, output = run_fl(["stats", "query", "SELECT 1 FROM pool", "-w", ws], capsys, monkeypatch)
    assert code == 1, output
    first, *rest = output.strip().splitlines()
    assert first.startswith("error: SQL failed:") and "pool does not exist" in first, output
    assert rest == [
        "  hint: views in this workspace: none yet (run `fl curate run RECIPE.yaml` first)"
    ]
    code, output = run_fl(["stats", "views", "-w", ws], capsys, monkeypatch)
    assert code == 0 and "no views yet" in output, output
