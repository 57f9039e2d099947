"""One look for progress bars across stages (rich), quiet when output is not a terminal in tests."""

from __future__ import annotations

from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
console = Console(stderr=True)


def make_progress(transient: bool = False) -> Progress:
    """A rich Progress with count, percentage, elapsed and ETA columns."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
    )


def _short_line(record: dict) -> str:
    """`message`, or `warning: message` from WARNING up: no timestamp, no module:function:line."""
    level = record["level"]
    prefix = "" if level.no < 30 else f"{level.name.lower()}: "
    return prefix.replace("{", "{{").replace("}", "}}") + "{message}\n{exception}"


VERBOSE_ENV = "FL_VERBOSE"


def configure_logging(verbose: bool = False) -> None:
    """One output style for every command: loguru lines (ours and datatrove's) are short and
    without timestamps, and library FutureWarnings stay quiet; `--verbose` (or FL_VERBOSE=1)
    restores loguru's full format at DEBUG and shows every warning."""
    import os
    import sys
    import warnings

    import datatrove.utils.logging as datatrove_logging
    from loguru import logger

    verbose = verbose or bool(os.environ.get(VERBOSE_ENV))

    def install() -> None:
        logger.remove()
        if verbose:
            logger.add(sys.stderr, level="DEBUG")
        else:
            logger.add(sys.stderr, level="INFO", format=_short_line, colorize=False)

    install()
    # datatrove puts its own full-format sink back after every task: have it put ours back.
    datatrove_logging.setup_default_logger = install
    if not verbose:
        warnings.filterwarnings("ignore", category=FutureWarning)
        # transformers' "Loading weights" / "Writing model shards" bars follow the hub's switch;
        # set before transformers is imported (it is imported lazily, inside the stages).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # transformers' notices (kernel fallbacks, PAD/BOS/EOS): errors only on the terminal;
        # training runs turn them back on into their train.log (train/progress.py).
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def no_library_bars() -> None:
    """Turn off transformers' per-file bars ("Loading weights", "Writing model shards") in this
    process: fl prints its own progress, and theirs only adds lines between it."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
