#!/usr/bin/env bash
# The GPU measurements in one call: install the wheels brought along, then print one JSON object
# (kernels chosen, fused Mamba-2 kernels vs the PyTorch path in bf16, the 866M peer shape at 1 x 4096
# and 4 x 4096, MFU of the 1b preset at 8192 context, decode tokens/s at 1k and 4k of context).
#
# On the CPU machine, first:   bash benchmarks/gpu.sh --wheels      (builds .whl/, see ../shared/docs/gpu.md)
# On the GPU machine:          bash benchmarks/gpu.sh               (the run tool: carry [".whl"])
# Anywhere, to check it:       bash benchmarks/gpu.sh --cpu-smoke   (same Python code, tiny shapes, CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

case "${1:-}" in
  --wheels)
    # mamba-ssm ships only a source archive; built without its CUDA extension it is pure Python
    # (its Mamba-2 kernels are Triton), so the wheel installs on the GPU machine without compiling.
    mkdir -p .whl
    MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
      "$PY" -m pip wheel --no-deps --no-build-isolation mamba-ssm==2.3.2.post1 -w .whl
    ls .whl
    ;;
  --cpu-smoke)
    exec "$PY" benchmarks/model.py --cpu-smoke
    ;;
  "")
    if compgen -G ".whl/*.whl" > /dev/null; then
      site=$(mktemp -d)
      "$PY" -m pip install --quiet --no-index --no-deps --target "$site" .whl/*.whl >&2
      export PYTHONPATH="$PYTHONPATH:$site"
    else
      echo "no .whl/ folder: measuring without mamba_ssm (PyTorch kernels)" >&2
    fi
    "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" >&2
    exec "$PY" benchmarks/model.py --gpu --steps 5
    ;;
  *)
    echo "usage: bash benchmarks/gpu.sh [--wheels | --cpu-smoke]" >&2
    exit 2
    ;;
esac
