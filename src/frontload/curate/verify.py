"""The datatrove step that checks a response's final answer against the source's reference answer.

`response` holds the final answer only (a `<think>` trace is in `reasoning`), so the answer
extracted is the one after the trace, never a guess inside it.

Uses the evaluation package's extraction (boxed, "The answer is", last number) and Math-Verify
equivalence, graded in batches so the process pool and its timeouts are paid once per batch.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from frontload.grading.extract import extract_answer
from frontload.grading.grade import grade_math_batch


class VerifyStep(PipelineStep):
    """Sets doc.metadata["verified"]: True/False, or None when the record has no reference."""

    name = "verify answers"
    type = "🏷 - ANNOTATE"

    def __init__(self, workers: int = 1, timeout: float = 5.0, batch_size: int = 256) -> None:
        super().__init__()
        self.workers = workers
        self.timeout = timeout
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data is None:
            return

        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                pairs, index = [], []
                for position, doc in enumerate(batch):
                    reference = (doc.metadata.get("reference") or "").strip()
                    response = doc.metadata.get("response") or ""
                    if not reference or not response:
                        # no reference: a label from the source (explode + labels) stands
                        doc.metadata["verified"] = doc.metadata.get("verified")
                        continue
                    answer = extract_answer(response).answer
                    if not answer:
                        doc.metadata["verified"] = False
                        self.stat_update("no_answer")
                        continue
                    if "####" in reference or "\\boxed" in reference:
                        reference = extract_answer(reference).answer or reference
                    pairs.append((answer, reference))
                    index.append(position)
                if pairs:
                    verdicts = grade_math_batch(pairs, workers=self.workers, timeout=self.timeout)
                    for position, verdict in zip(index, verdicts, strict=True):
                        batch[position].metadata["verified"] = bool(verdict)
            for doc in batch:
                verified = doc.metadata.get("verified")
                self.stat_update(
                    "no_reference" if verified is None else ("verified" if verified else "wrong")
                )
                yield doc
