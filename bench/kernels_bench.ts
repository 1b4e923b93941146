/**
 * The sparse kernels on the four workloads of issue 5, forward and training step (forward +
 * input gradient + weight and bias gradients), each group with the dense equivalent on the same
 * shapes as its baseline (GEMMs plus the same bias add and bias gradient); a third group per
 * workload times the input gradient alone in its two forms (CSC view, CSR pattern). The kernels
 * are called directly through the FFI (no Tensor or autograd), so these numbers are the kernels'
 * own. The dense 50000 × 50000 weight is 9.3 GiB, written once (an unwritten array reads as the
 * kernel's cached zero page and flatters the GEMM); its gradient shares that buffer (see
 * `sharedMatrix` in workloads.ts), so those groups need ~10 GiB free and about a minute.
 *
 * Run: `deno bench --allow-ffi --allow-env --allow-read bench/kernels_bench.ts` on an otherwise
 * idle machine (other processes on the same cores inflate every number); `--filter 784` runs
 * one workload. `deno task compare` prints the same comparison as the issue-5 table.
 * @module
 */
import {
  denseForward,
  type DenseState,
  denseState,
  denseTrainStep,
  sparseBackwardCsr,
  sparseForward,
  sparseInputGradCsc,
  sparseInputGradCsr,
  type SparseState,
  sparseState,
  sparseTrainStep,
  sparseWeightGrad,
  WORKLOADS,
} from "./workloads.ts";

/** Builds a value on first use, so that filtered-out benchmarks allocate nothing. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** A timed call of `run` on the state `state()` makes (built outside the timing). */
function timed<T>(state: () => T, run: (s: T) => void): (b: Deno.BenchContext) => void {
  return (b) => {
    const s = state();
    b.start();
    run(s);
    b.end();
  };
}

for (const workload of WORKLOADS) {
  const sparse = lazy<SparseState>(() => sparseState(workload));
  const dense = lazy<DenseState>(() => denseState(workload, true));
  // Dense GEMMs on 20000 × 20000 take most of a second, on 50000 × 50000 seconds: a few
  // samples are enough.
  const size = workload.inFeatures * workload.outFeatures;
  const denseRuns = { n: size > 1e9 ? 2 : size > 1e8 ? 3 : 50, warmup: 1 };
  const pairs = [
    ["fwd", denseForward, (s: SparseState) => sparseForward(s)],
    ["train", denseTrainStep, sparseTrainStep],
  ] as const;
  for (const [what, denseStep, sparseStep] of pairs) {
    const group = `${workload.name} ${what}`;
    const baseline = { group, baseline: true, ...denseRuns };
    Deno.bench(`${group}: dense GEMM`, baseline, timed(dense, denseStep));
    Deno.bench(`${group}: sparse`, { group }, timed(sparse, sparseStep));
  }
  // The input gradient alone, both forms: its own group (not a training step's work).
  const inputGrad = `${workload.name} input gradient only`;
  Deno.bench(
    `${inputGrad}: via the CSC view`,
    { group: inputGrad, baseline: true },
    timed(sparse, sparseInputGradCsc),
  );
  Deno.bench(
    `${inputGrad}: from the CSR pattern`,
    { group: inputGrad },
    timed(sparse, sparseInputGradCsr),
  );
  if (workload.batch === 1) {
    // Both gradients from the CSR pattern: the two calls against one pass over the pattern.
    const both = `${workload.name} both gradients (CSR)`;
    Deno.bench(
      `${both}: sl_spmm_bwd_input_csr + sl_sddmm`,
      { group: both, baseline: true },
      timed(sparse, (s) => {
        sparseInputGradCsr(s);
        sparseWeightGrad(s);
      }),
    );
    Deno.bench(`${both}: sl_spmm_bwd_csr`, { group: both }, timed(sparse, sparseBackwardCsr));
  }
}
