#!/usr/bin/env bash
# Check mmbench's CUDA path once on a machine with a GPU (CI has none). It runs the device tests
# (every model, perturbation and corruption on cuda: the contract tests in mmbench/testing, and
# cuda vs cpu on a small suite), each torchattacks attack that may not support CUDA, and
# suites/gpu-check.yaml on cuda and on the CPU, then compares the two result tables. Without a
# CUDA GPU it prints that it is skipped and exits 0 (`make bench` runs it on any machine).
# Usage: benchmarks/gpu_check.sh [OUT_DIR] (PYTHON=... picks the interpreter; default
# .venv/bin/python, made by `make`).
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-results/gpu-check}
if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check.sh: skipped, torch sees no CUDA GPU"
  exit 0
fi
mkdir -p "$OUT"
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -p no:cacheprovider tests/test_devices.py mmbench/testing/test_contract_models.py \
  mmbench/testing/test_contract_perturbations.py mmbench/testing/test_contract_corruptions.py
"$PY" benchmarks/cuda_attacks.py
for device in cuda cpu; do
  start=$(date +%s)
  "$PY" -m mmbench run suites/gpu-check.yaml --device "$device" --out "$OUT/$device" \
    --cache-dir "$OUT/cache-$device" > "$OUT/$device.log" 2>&1 || { tail -20 "$OUT/$device.log"; exit 1; }
  echo "suites/gpu-check.yaml on $device: $(( $(date +%s) - start )) s"
done
"$PY" benchmarks/compare_devices.py "$OUT/cpu" "$OUT/cuda"
