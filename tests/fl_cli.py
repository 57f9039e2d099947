"""Run `fl ...` the way a user does -- through `main()`, with its error table -- and capture output."""

from __future__ import annotations

import sys

import pytest


def run_fl(args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """Return (exit code, stdout + stderr) of `fl *args`."""
    from frontload.cli import main

    monkeypatch.setattr(sys, "argv", ["fl", *args])
    monkeypatch.delenv("FL_DEBUG", raising=False)
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    out = capsys.readouterr()
    return code, out.out + out.err
