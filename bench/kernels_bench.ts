/**
 * The sparse kernels on the four workloads of issue 5, forward and training step (forward +
 * input gradient + weight and bias gradients), each group with the dense equivalent on the same
 * shapes as its baseline (GEMMs plus the same bias add and bias gradient); a third group per
 * workload times the input gradient alone in its two forms (CSC view, CSR pattern). The kernels
 * are called directly through the FFI (no Tensor or autograd), so these numbers are the kernels'
 * own. The dense 50000 × 50000 weight is 9.3 GiB (never written: its pages are all the kernel's
 * zero page and cost no memory); its gradient is another 9.3 GiB, written (that train group needs
 * ~10 GiB free and about a minute).
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
  sparseForward,
  sparseInputGradCsc,
  sparseInputGradCsr,
  type SparseState,
  sparseState,
  sparseTrainStep,
  WORKLOADS,
} from "./workloads.ts";

/** Builds a value on first use, so that filtered-out benchmarks allocate nothing. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

for (const workload of WORKLOADS) {
  const sparse = lazy<SparseState>(() => sparseState(workload));
  const dense = lazy<DenseState>(() => denseState(workload, true));
  // Dense GEMMs on 20000 × 20000 take most of a second, on 50000 × 50000 seconds: a few
  // samples are enough.
  const size = workload.inFeatures * workload.outFeatures;
  const denseRuns = { n: size > 1e9 ? 2 : size > 1e8 ? 3 : 50, warmup: 1 };
  const fwd = `${workload.name} fwd`;
  const train = `${workload.name} train`;

  Deno.bench(`${fwd}: dense GEMM`, { group: fwd, baseline: true, ...denseRuns }, (b) => {
    const d = dense();
    b.start();
    denseForward(d);
    b.end();
  });
  Deno.bench(`${fwd}: sparse`, { group: fwd }, (b) => {
    const s = sparse();
    b.start();
    sparseForward(s);
    b.end();
  });

  Deno.bench(`${train}: dense GEMM`, { group: train, baseline: true, ...denseRuns }, (b) => {
    const d = dense();
    b.start();
    denseTrainStep(d);
    b.end();
  });
  Deno.bench(`${train}: sparse`, { group: train }, (b) => {
    const s = sparse();
    b.start();
    sparseTrainStep(s);
    b.end();
  });
  // The input gradient alone, both forms: its own group (not a training step's work).
  const inputGrad = `${workload.name} input gradient only`;
  Deno.bench(`${inputGrad}: via the CSC view`, { group: inputGrad, baseline: true }, (b) => {
    const s = sparse();
    b.start();
    sparseInputGradCsc(s);
    b.end();
  });
  Deno.bench(`${inputGrad}: from the CSR pattern`, { group: inputGrad }, (b) => {
    const s = sparse();
    b.start();
    sparseInputGradCsr(s);
    b.end();
  });
}
