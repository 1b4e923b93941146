#!/usr/bin/env bash
# Builds every libFuzzer harness fuzz/fuzz_*.c into OUT_DIR (default build-fuzz/) with clang,
# AddressSanitizer + UndefinedBehaviorSanitizer (any UB report aborts) and OpenMP when libomp is
# installed. The library sources are compiled once with coverage instrumentation and without
# CBLAS, so the fuzzers also cover the portable GEMM that sl_dense_grad_topk runs on.
# Usage: fuzz/build.sh [OUT_DIR]    (CC=clang-NN to pick a compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-fuzz}
cc=${CC:-clang}
mkdir -p "$out/obj"

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-g -O1 -w -std=c11 -D_GNU_SOURCE -march=native -Icsrc/include -Icsrc/common -Icsrc/cpu"

# OpenMP when clang can link it (libomp-NN-dev); the kernels also build without it.
omp=""
if echo 'int main(void){return 0;}' | $cc -fopenmp -x c - -o "$out/omp_probe" 2>/dev/null; then
  omp="-fopenmp"
fi
rm -f "$out/omp_probe"

# Edge coverage without comparison tracing: the kernels' inner loops compare 64-bit counters on
# every iteration, and tracing them cost ~2/3 of the run time for little guidance (the inputs
# that matter are sizes and indices, which edge coverage already separates).
cov="-fno-sanitize-coverage=trace-cmp"
if ! echo 'int f(int a){return a>3;}' | $cc -fsanitize=fuzzer-no-link $cov -x c -c - -o /dev/null 2>/dev/null; then
  cov=""
fi
objs=()
for src in csrc/common/*.c csrc/cpu/*.c; do
  obj="$out/obj/$(basename "${src%.c}").o"
  $cc $cflags $san $omp -fsanitize=fuzzer-no-link $cov -c "$src" -o "$obj"
  objs+=("$obj")
done
# The harnesses themselves are not coverage-instrumented: their naive reference loops would
# dominate the run time (comparison tracing) and steer the fuzzer toward harness branches.
for harness in fuzz/fuzz_*.c; do
  name=$(basename "${harness%.c}")
  $cc $cflags $san $omp -c "$harness" -o "$out/obj/harness_$name.o"
  $cc $san $omp -fsanitize=fuzzer "$out/obj/harness_$name.o" "${objs[@]}" -lm -o "$out/$name"
done
echo "built $(ls fuzz/fuzz_*.c | wc -l) harnesses in $out${omp:+ (OpenMP)}"
