"""One intra-op thread for the tiny models here: on a shared 2-core VM, OpenMP spinning across busy
cores made small matmuls ~20x slower (measured); results do not depend on the thread count."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
