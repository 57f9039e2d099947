"""The datatrove step that writes `answer_tokens` (reasoning trace + final answer), the trace's
share `reasoning_tokens`, and `total_tokens` (text), so length rules can use either part."""

from __future__ import annotations

from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from frontload.curate.length import TokenCounter, tokenizer_file
from frontload.curate.recipe import LengthConfig
from frontload.workspace import Workspace


class TokenCountStep(PipelineStep):
    """Counts tokens of whole batches in one call each; the tokenizer loads once per task."""

    name = "answer length"
    type = "🏷 - ANNOTATE"

    def __init__(self, tokenizer_path: Path, batch_size: int = 1024) -> None:
        super().__init__()
        self.tokenizer_path = tokenizer_path
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data is None:
            return
        counter = TokenCounter(self.tokenizer_path)
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                responses = [doc.metadata.get("response") or "" for doc in batch]
                traces = [doc.metadata.get("reasoning") or "" for doc in batch]
                counts = counter.count([doc.text for doc in batch] + responses + traces)
            size = len(batch)
            totals, answers, reasoning = counts[:size], counts[size : 2 * size], counts[2 * size :]
            for doc, total, answer, trace in zip(batch, totals, answers, reasoning, strict=True):
                doc.metadata["total_tokens"] = total
                doc.metadata["answer_tokens"] = answer + trace
                doc.metadata["reasoning_tokens"] = trace
                self.stat_update("tokens", value=total)
                self.stat_update("answer_tokens", value=answer + trace)
                self.stat_update("reasoning_tokens", value=trace)
                yield doc


def length_steps(config: LengthConfig | None, workspace: Workspace, tokenizer_path: Path) -> list:
    """The token-counting step for the curation pipeline."""
    config = config or LengthConfig()
    tokenizer_file(tokenizer_path)
    return [TokenCountStep(Path(tokenizer_path), config.batch_size)]
