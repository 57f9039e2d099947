"""Generations of one problem (`explode:`) are siblings, not copies: the policy steps around dedup.

`GenerationFilter` drops the generations a source's `siblings: verified` policy leaves out (those
labelled false), with the reason `unverified_generation`. `SiblingKeeper` sits right after
near-dedup's filter and takes back the records that filter removed only because a sibling of
theirs survived in the same MinHash cluster: siblings share `meta.group` and arrive one after the
other (one raw row goes to one task), so the keeper decides one group at a time. A record whose
cluster's survivor is some other problem's record stays removed. Dedup itself is untouched: the
keeper only wraps the filter's exclusion writer (datatrove's `write(doc, rank)` contract).
Byte-identical generations are still removed by exact dedup: they are one text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from frontload.curate.steps import DROP_KEY

CLUSTER_KEY = "minhash_cluster_id"  # set by datatrove's MinhashDedupFilter(load_cluster_ids=True)


class GenerationFilter(BaseFilter):
    """Drops the records the reader marked (generations a source's policy does not keep)."""

    name = "generations"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reason = doc.metadata.pop(DROP_KEY, None)
        return (False, reason) if reason else True


def sibling_group(doc: Document) -> str | None:
    """`meta.group` of an exploded record whose source keeps siblings apart, else None."""
    meta = doc.metadata.get("meta")
    if not meta or '"group"' not in meta:
        return None
    return json.loads(meta).get("group")


class HeldBack:
    """Stands in for the near-dedup filter's exclusion writer: removed records wait here, in
    stream order, until the keeper has seen their siblings."""

    def __init__(self) -> None:
        self.records: list[Document] = []

    def __enter__(self) -> HeldBack:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, document: Document, rank: int = 0, **_: object) -> None:
        self.records.append(document)

    def drain(self) -> list[Document]:
        records, self.records = self.records, []
        return records


class SiblingKeeper(PipelineStep):
    """Yields what near-dedup kept, plus removed records whose cluster survivor is a sibling
    (counted as `rescued`); writes every other removed record to the real exclusion writer."""

    type = "🫂 - DEDUP"
    name = "keep_siblings"

    def __init__(self, exclusion_writer) -> None:
        super().__init__()
        self.held = HeldBack()
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        if data is None:
            return
        self.rank = rank
        self.group: list[tuple[Document, bool]] = []
        self.key: str | None = None
        with self.exclusion_writer as writer:
            self.writer = writer
            for doc in data:
                for removed in self.held.drain():
                    yield from self._route(removed, kept=False)
                yield from self._route(doc, kept=True)
            for removed in self.held.drain():
                yield from self._route(removed, kept=False)
            yield from self._flush()

    def _route(self, doc: Document, kept: bool) -> Iterator[Document]:
        key = sibling_group(doc)
        if key is None or key != self.key:
            yield from self._flush()
        if key is None:
            yield from self._emit(doc, kept)
            return
        self.key = key
        self.group.append((doc, kept))

    def _flush(self) -> Iterator[Document]:
        survivors = {doc.metadata.get(CLUSTER_KEY) for doc, kept in self.group if kept} - {None, -1}
        for doc, kept in self.group:
            if not kept and doc.metadata.get(CLUSTER_KEY) in survivors:
                self.stat_update("rescued")
                kept = True
            yield from self._emit(doc, kept)
        self.group, self.key = [], None

    def _emit(self, doc: Document, kept: bool) -> Iterator[Document]:
        # near-dedup already counted its removals: only the records going on are counted here
        if kept:
            self.stat_update("total", "forwarded")
            yield doc
        else:
            self.writer.write(doc, self.rank)


def keeps_siblings(sources) -> bool:
    """Whether any source explodes rows and keeps their siblings apart from dedup."""
    return any(s.mapping().explode and s.siblings != "dedup" for s in sources)


def explodes(sources) -> bool:
    """Whether any source makes several records of one row."""
    return any(s.mapping().explode for s in sources)
