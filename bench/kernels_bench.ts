/**
 * The sparse kernels on the four workloads of issue 5, forward and training step (forward +
 * input gradient + weight and bias gradients), each group with the dense equivalent on the same
 * shapes as its baseline (GEMMs plus the same bias add and bias gradient); a third group per
 * workload times the input gradient alone in its two forms (CSC view, CSR pattern). The kernels are called directly through the FFI (no Tensor or
 * autograd), so these numbers are the kernels' own. The 50000 × 50000 layer has no dense
 * baseline: its weight alone would take 9.3 GiB.
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
  const dense = workload.reference.denseFwd === null
    ? null
    : lazy<DenseState>(() => denseState(workload, true));
  // Dense GEMMs on 20000 × 20000 take most of a second: a few samples are enough.
  const denseRuns = { n: workload.inFeatures * workload.outFeatures > 1e8 ? 3 : 50, warmup: 1 };
  const fwd = `${workload.name} fwd`;
  const train = `${workload.name} train`;

  if (dense) {
    Deno.bench(`${fwd}: dense GEMM`, { group: fwd, baseline: true, ...denseRuns }, (b) => {
      const d = dense();
      b.start();
      denseForward(d);
      b.end();
    });
  }
  Deno.bench(`${fwd}: sparse`, { group: fwd, baseline: !dense }, (b) => {
    const s = sparse();
    b.start();
    sparseForward(s);
    b.end();
  });

  if (dense) {
    Deno.bench(`${train}: dense GEMM`, { group: train, baseline: true, ...denseRuns }, (b) => {
      const d = dense();
      b.start();
      denseTrainStep(d);
      b.end();
    });
  }
  Deno.bench(`${train}: sparse`, { group: train, baseline: !dense }, (b) => {
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
