#!/usr/bin/env bash
# Issue #15 item 5's GPU checks in one short run, for a lent GPU machine (the `device` tool), whose python3 holds
# torch, numpy, scikit-learn and pytest but none of the platform's servers or settings packages:
#   1. the worker's CUDA path: pinned batch buffers, asynchronous copies, CUDA-event timing, the built-in template
#      predicting from a pinned buffer as on the CPU (tests/serving/test_batch_buffers.py, numpy + torch only);
#   2. the slicing benchmark's timing parts on the GPU → slicing-cuda.json (never over the CPU's slicing.json).
# Usage there: `bash benchmarks/gpu_check.sh "$OUT"` (about 3-5 min on an H100); the results come back from $OUT.
# Here (no GPU) it says so and exits 2 without running anything.
set -euo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
python=${PYTHON:-python3}
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no GPU visible to $python's torch: nothing checked" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu-check-device.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -m pytest --noconftest -p no:cacheprovider -q -rA tests/serving/test_batch_buffers.py \
    2>&1 | tee "$out/gpu-check-tests.txt"
"$python" benchmarks/slicing.py --device cuda --out "$out/slicing-cuda.json" 2>&1 | tee "$out/gpu-check-slicing.txt"
