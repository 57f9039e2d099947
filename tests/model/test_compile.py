"""Each block kind compiles as one graph (no graph breaks) on the packed-rows training path: the
document bounds are resolved before the blocks, so nothing in a block reads a tensor on the host."""

from __future__ import annotations

import pytest
import torch

from frontload.model import HybridForCausalLM, preset
from frontload.model.cache import StepContext
from frontload.model.kernels import select


@pytest.mark.parametrize("kind", ["mamba", "attention", "mlp"])
def test_block_compiles_without_graph_breaks(kind: str) -> None:
    select("auto")
    torch.manual_seed(0)
    model = HybridForCausalLM(preset("tiny"))
    block = next(b for b in model.backbone.layers if b.kind == kind)
    hidden = torch.randn(2, 24, model.config.hidden_size, requires_grad=True)
    seq_idx = torch.tensor([[0] * 10 + [1] * 14, [0] * 24], dtype=torch.int32)
    ctx = StepContext(seq_idx=seq_idx)
    torch._dynamo.reset()
    # fullgraph=True raises at the first graph break; the eager backend skips code generation.
    compiled = torch.compile(block, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(hidden, ctx), block(hidden, ctx))
