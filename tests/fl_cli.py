"""Run `fl ...` the way a user does -- through `main()`, with its error table -- and capture output."""

from __future__ import annotations

import sys

import pytest


def run_fl(args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """Return (exit code, stdout + stderr) of `fl *args`."""
    from frontload.cli import main

    monkeypatch.setattr(sys, "argv", ["fl", *args])
    for name in ("FL_DEBUG", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)  # restored after the test (main() sets some)
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        from loguru import logger

        logger.remove()  # main() pointed loguru at this test's captured stderr
        logger.add(sys.__stderr__)
    out = capsys.readouterr()
    return code, out.out + out.err
