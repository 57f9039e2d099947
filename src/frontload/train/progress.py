"""SFT and GRPO output in the pretraining style: one rich bar (step, loss or reward, tokens/s,
ETA), with library chatter -- transformers' bars and notices, FutureWarnings, NemotronH kernel
fallbacks -- written to the run folder's `train.log` instead of the terminal."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from frontload.progress import make_progress

_installed: dict[str, logging.Handler] = {}


def capture_library_output(log_path: Path) -> None:
    """Route transformers/TRL/datasets logging and Python warnings of this process to `log_path`
    and turn off their progress bars. Called again (another run), it moves them to the new file."""
    import datasets
    import huggingface_hub.utils
    import transformers

    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()  # into the log, whatever the terminal gets
    transformers.utils.logging.disable_default_handler()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    previous = set(_installed.values())
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # each distinct warning once, into the log
    for name in ("transformers", "trl", "datasets", "accelerate", "py.warnings"):
        logger = logging.getLogger(name)
        if name in _installed:
            logger.removeHandler(_installed[name])
        logger.addHandler(handler)
        logger.propagate = False
        _installed[name] = handler
    for stale in previous - {handler}:
        stale.close()


def progress_callback(stage: str, run: str, value: str):
    """A TrainerCallback drawing the bar on the main process; `value` is `loss` or `reward`."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.progress = None
            self.status = ""

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.progress = make_progress()
            self.progress.start()
            self.task = self.progress.add_task(
                f"{stage} {run}", total=state.max_steps, completed=state.global_step, status=""
            )
            self.started, self.first_tokens = time.perf_counter(), None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is None or not logs:
                return
            parts = []
            number = logs.get(value)
            if isinstance(number, int | float):
                parts.append(f"{value} {number:.4f}")
            tokens = logs.get("num_tokens", logs.get("num_input_tokens_seen"))
            if isinstance(tokens, int | float):
                if self.first_tokens is None:
                    self.first_tokens = (tokens, time.perf_counter())
                else:
                    seen, since = self.first_tokens
                    rate = (tokens - seen) / max(1e-9, time.perf_counter() - since)
                    parts.append(f"{rate:,.0f} tok/s")
            if parts:
                self.status = "  ".join(parts)
            self.progress.update(self.task, completed=state.global_step, status=self.status)

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)
                self.progress.stop()
                self.progress = None

    return _Progress()
