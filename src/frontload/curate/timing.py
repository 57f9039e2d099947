"""Time per pipeline step, measured between steps rather than trusted from each step.

datatrove steps time themselves, and some count other steps' work: the exact-dedup filter keeps
its timer running while it is suspended at `yield` (so it is charged for everything downstream:
the staged writer and the whole MinHash signature step), and the stock MinHash signature step
times its loop over the input (so it is charged for everything upstream). Their times overlap
and add up to more than the run took.

Here a `Lap` sits after every step and adds up the time spent waiting for that step's next
document, which includes every step before it. A step's own time is its lap minus the previous
lap. Steps that run eagerly, before any document flows (the global bucket, cluster and
find-duplicates stages), keep datatrove's own timer, which covers exactly their work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep


class Lap(PipelineStep):
    """Pass-through step: seconds spent producing the documents it forwards (everything before)."""

    type = "⏱️ - TIMING"
    name = "lap"

    def run(self, data: Iterable[Document] | None, rank: int = 0, world_size: int = 1):
        if data is None:
            return
        self.stat_update("measured")  # tells `step_seconds` that this lap saw a stream
        iterator: Iterator[Document] = iter(data)
        spent, clock = 0.0, time.perf_counter
        try:
            while True:
                start = clock()
                try:
                    doc = next(iterator)
                except StopIteration:
                    spent += clock() - start
                    return
                spent += clock() - start
                yield doc
        finally:
            self.stats.time_stats.update(spent)


def with_laps(steps: list[Any]) -> list[Any]:
    """The pipeline with a Lap after every step."""
    timed: list[Any] = []
    for step in steps:
        timed += [step, Lap()]
    return timed


def step_seconds(entries: list[dict]) -> list[float]:
    """Own seconds of each step, from one task's datatrove stats of a `with_laps` pipeline."""
    seconds, before = [], 0.0
    for step, lap in zip(entries[0::2], entries[1::2], strict=True):
        if lap["stats"].get("measured"):
            inclusive = _total(lap["time_stats"])
            seconds.append(max(0.0, inclusive - before))
            before = inclusive
        else:  # an eager step: datatrove's own timer covers just its work
            seconds.append(_total(step.get("time_stats", {})))
            before = 0.0
    return seconds


def _total(time_stats: Any) -> float:
    return float(time_stats.get("total", 0.0)) if isinstance(time_stats, dict) else 0.0
