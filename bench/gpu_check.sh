#!/usr/bin/env bash
# The GPU verification behind bench/RESULTS.md ("CUDA"): builds both libraries for the local GPU,
# runs the whole test suite with the CUDA library, compute-sanitizer's memcheck over the CUDA
# tests (where the tool is installed), the CUDA benchmarks (with the torch.sparse comparison when
# python3 has a CUDA build of PyTorch) and one epoch of CUDA training. Logs go to $LOGS (default
# gpu-logs/). Needs deno, cmake, nvcc and an NVIDIA GPU.
#
#   bash bench/gpu_check.sh            # everything
#   STAGES="test bench" bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${LOGS:-gpu-logs}
STAGES=${STAGES:-"build test memcheck bench train"}
mkdir -p "$LOGS"
export SPARSELINEAR_LIB=$PWD/build-gpu/libsparselinear.so
export SPARSELINEAR_CUDA_LIB=$PWD/build-gpu/libsparselinear_cuda.so
PERMS="--allow-ffi --allow-env --allow-read --allow-write --allow-run --allow-sys=systemMemoryInfo"
step() { echo "== $1: $(date -u +%H:%M:%S)"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOGS/gpu.txt"
if has build; then
  step build
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=native \
    --log-level=WARNING && cmake --build build-gpu -j "$(nproc)" >"$LOGS/build.log" 2>&1 ||
    { tail -20 "$LOGS/build.log"; exit 1; }
fi
if has test; then
  step test
  deno test $PERMS tests/ >"$LOGS/test.log" 2>&1
  echo "tests rc=$?"; grep -E "passed|FAILED" "$LOGS/test.log" | tail -3
fi
if has memcheck && command -v compute-sanitizer >/dev/null; then
  step memcheck
  compute-sanitizer --tool memcheck --error-exitcode 9 --target-processes all \
    deno test $PERMS tests/cuda_test.ts >"$LOGS/memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|passed" "$LOGS/memcheck.log" | tail -2
fi
if has bench; then
  step bench
  deno bench $PERMS bench/cuda_bench.ts >"$LOGS/bench.log" 2>&1
  echo "bench rc=$?"
fi
if has train; then
  step train
  deno run $PERMS examples/train_mnist.ts --model sparse --epochs 1 --device cuda \
    >"$LOGS/train.log" 2>&1
  echo "train rc=$?"; tail -2 "$LOGS/train.log"
fi
