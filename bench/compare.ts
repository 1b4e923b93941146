/**
 * Prints the issue-5 comparison table with this library's numbers filled in: for each workload
 * the sparse forward and training step (forward + input gradient + weight and bias gradients)
 * timed on the native kernels, the dense GEMM forward measured in the same run, the reference
 * numbers of the issue (scipy, floor, target), and GFLOP/s with the % of the machine's
 * 128 GFLOP/s fp32 ceiling; and the same two on feature-major activations ([features, batch],
 * the layout of scipy's `W @ X` in the reference column; `SparseLinear.forwardFeatureMajor`),
 * where the kernels skip their transposes. Then the break-even sparsity of a 4096 × 4096 layer at batch 64:
 * the lowest sparsity at which the sparse training step beats the dense one.
 *
 * Run: `deno task compare` (or `deno run --allow-ffi --allow-env --allow-read
 * bench/compare.ts [--runs 15] [--workload 784] [--no-break-even]`) on an otherwise idle machine: timings are
 * medians, and other processes on the same cores inflate them; the last line says how far apart
 * each measurement's runs were (90th / 10th percentile), which shows when that happened.
 * @module
 */
import { cliArgs, cliFail, intFlag, precisionFlag } from "../examples/cli.ts";
import { getNumThreads } from "../ffi/library.ts";
import {
  denseForward,
  type DenseState,
  denseState,
  denseTrainStep,
  forwardFlops,
  PEAK_GFLOPS,
  sparseForward,
  sparseState,
  sparseTrainStep,
  sparseTrainStepFeatureMajor,
  trainFlops,
  type Workload,
  WORKLOADS,
} from "./workloads.ts";

/**
 * Untimed warm-up before each measurement: `warmup` calls, and more until this many ms have
 * passed. Right after Deno starts, V8's background compiler threads take one of the two cores
 * for a fraction of a second, and a two-thread kernel then waits on a descheduled thread: the
 * first ~100 calls of the 784→2000 forward took 0.7-0.8 ms instead of 0.35, and with two calls
 * of warm-up the table's first measurement (the batch-major forward) reported 0.68-0.71 ms.
 */
const WARMUP_MS = 200;

/**
 * Every measurement's spread: its 90th over its 10th percentile time (measurements of at least
 * 5 runs). A quiet machine repeats a kernel within a few percent; other processes on the cores
 * or other tenants of the host stretch some runs, and the table's footer says how much.
 */
const spreads: number[] = [];

/** Median wall time of `fn` in ms over `runs` timed calls, after the untimed warm-up. */
export function medianMs(fn: () => void, runs: number, warmup = 2): number {
  const start = performance.now();
  for (let i = 0; i < warmup || performance.now() - start < WARMUP_MS; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  if (runs >= 5) {
    spreads.push(times[Math.ceil(0.9 * runs) - 1] / times[Math.floor(0.1 * runs)]);
  }
  const mid = times.length >> 1;
  return times.length % 2 === 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
}

/** Spread above which the footer calls the machine busy (a quiet one stays well below). */
const BUSY_SPREAD = 1.25;

/** The footer's line on how repeatable this run's timings were. */
function spreadNote(): string {
  if (spreads.length === 0) return "";
  const sorted = [...spreads].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const worst = sorted[sorted.length - 1];
  const verdict = median > BUSY_SPREAD
    ? "the machine was busy (other processes or other tenants of the host): these medians are " +
      "pessimistic; rerun on an idle machine"
    : "repeatable";
  return `\nTiming spread (90th / 10th percentile of each measurement's runs): median ` +
    `${median.toFixed(2)}×, largest ${worst.toFixed(2)}× — ${verdict}.`;
}

function fmt(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** A sparse time against the dense one, in words: "2.00× faster", "1.25× slower", "as fast". */
function versusDense(ms: number, denseMs: number): string {
  if (ms < denseMs) return `${(denseMs / ms).toFixed(2)}× faster`;
  if (ms > denseMs) return `${(ms / denseMs).toFixed(2)}× slower`;
  return "as fast"; // the break-even search counts a tie as not faster
}

function gflops(flops: number, ms: number): string {
  const g = flops / (ms * 1e6);
  return `${g.toFixed(1)} (${(100 * g / PEAK_GFLOPS).toFixed(0)} %)`;
}

/** Timed runs of the table's dense GEMMs (20000 × 20000 takes most of a second each). */
const DENSE_TABLE_RUNS = 5;

/** One row of the table, measured. */
interface Row {
  workload: Workload;
  nnz: number;
  fwd: number;
  train: number;
  /** The same on feature-major activations. */
  fmFwd: number;
  fmTrain: number;
  denseFwd: number | null;
}

function measureWorkload(workload: Workload, runs: number, dense: DenseState | null): Row {
  const s = sparseState(workload);
  const fwd = medianMs(() => sparseForward(s), runs);
  const train = medianMs(() => sparseTrainStep(s), runs);
  const fmFwd = medianMs(() => sparseForward(s, true), runs);
  const fmTrain = medianMs(() => sparseTrainStepFeatureMajor(s), runs);
  const denseFwd = dense
    ? medianMs(() => denseForward(dense), Math.min(runs, DENSE_TABLE_RUNS), 1)
    : null;
  return { workload, nnz: s.nnz, fwd, train, fmFwd, fmTrain, denseFwd };
}

function printTable(rows: Row[]): void {
  console.log(
    "| workload | scipy CSR fwd / train | dense OpenBLAS fwd (this run) | floor | target fwd / train " +
      "| **ours fwd / train** | ours GFLOP/s fwd / train (% of 128) " +
      "| ours feature-major fwd / train | met |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const ref = r.workload.reference;
    const denseCell = r.denseFwd === null ? "(9.3 GiB)" : fmt(r.denseFwd);
    // Judged on the printed values, so that the verdict never contradicts the row it ends.
    const meets = (fwd: number, train: number) =>
      Number(fmt(fwd)) <= ref.targetFwd && Number(fmt(train)) <= ref.targetTrain;
    const met = meets(r.fwd, r.train)
      ? "yes"
      : meets(r.fmFwd, r.fmTrain)
      ? "feature-major only"
      : "no";
    console.log(
      `| ${r.workload.name} | ${ref.scipyFwd} / ${ref.scipyTrain} | ${denseCell} | ${ref.floor} ` +
        `| ≤ ${ref.targetFwd} / ≤ ${ref.targetTrain} | **${fmt(r.fwd)} / ${fmt(r.train)}** ` +
        `| ${gflops(forwardFlops(r.nnz, r.workload.batch), r.fwd)} / ` +
        `${gflops(trainFlops(r.nnz, r.workload.batch), r.train)} ` +
        `| ${fmt(r.fmFwd)} / ${fmt(r.fmTrain)} | ${met} |`,
    );
  }
  console.log(
    "\nscipy and floor are the issue's numbers for this machine. floor: the forward's lower " +
      "bound, the larger of its FMAs at 128 GFLOP/s (2 · nnz · batch flops) and reading each " +
      "connection's 8 bytes once at 23 GB/s. Train = forward + input, weight and bias " +
      "gradients (3 × the forward's flops in the GFLOP/s column). The dense column is a GEMM " +
      "plus the bias add, as a dense Linear.",
  );
}

/**
 * Sparse vs dense training step of a 4096 × 4096 layer at batch 64 over a sweep of sparsities;
 * returns the lowest sparsity of the sweep from which on sparse is faster (null: never).
 */
function breakEven(runs: number): number | null {
  const base: Workload = {
    name: "4096x4096 b64",
    inFeatures: 4096,
    outFeatures: 4096,
    sparsity: 0,
    batch: 64,
    reference: {
      scipyFwd: 0,
      scipyTrain: 0,
      denseFwd: 0,
      floor: 0,
      targetFwd: 0,
      targetTrain: 0,
    },
  };
  const dense = denseState(base, true);
  const denseFwd = medianMs(() => denseForward(dense), runs);
  const denseTrain = medianMs(() => denseTrainStep(dense), runs);
  console.log(
    `\n4096 × 4096, batch 64: dense GEMM fwd ${fmt(denseFwd)} ms, train ${fmt(denseTrain)} ms`,
  );
  console.log("| sparsity | sparse fwd (ms) | sparse train (ms) | train vs dense |");
  console.log("|---|---|---|---|");
  let lowest: number | null = null;
  for (const sparsity of [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]) {
    const s = sparseState({ ...base, sparsity });
    const fwd = medianMs(() => sparseForward(s), runs);
    const train = medianMs(() => sparseTrainStep(s), runs);
    console.log(
      `| ${(100 * sparsity).toFixed(0)} % | ${fmt(fwd)} | ${fmt(train)} | ` +
        `${versusDense(train, denseTrain)} |`,
    );
    if (train < denseTrain && (lowest === null || sparsity < lowest + 1e-9)) lowest = sparsity;
    if (train >= denseTrain) break;
  }
  return lowest;
}

if (import.meta.main) {
  const usage =
    `Usage: deno task compare [--runs N] [--workload TEXT] [--precision P] [--no-break-even]

The issue-5 table: each workload's sparse forward and training step against the dense GEMM
measured in the same run, GFLOP/s and % of the 128 GFLOP/s ceiling, and the same step on
feature-major activations (SparseLinear.forwardFeatureMajor); then the break-even
sparsity of a 4096 x 4096 layer at batch 64. Run it on an otherwise idle machine.
  --runs N          timed runs per measurement, the median is printed (default 15)
  --workload TEXT   only the workloads whose name contains TEXT (e.g. 50000, b1, 784)
  --precision P     highest (default, float32) or medium (the batched sparse kernels gather
                    bfloat16: setSparseMatmulPrecision)
  --no-break-even   skip the break-even sweep
  -h, --help        this text`;
  const values = cliArgs({
    runs: { type: "string" },
    workload: { type: "string" },
    precision: { type: "string" },
    "no-break-even": { type: "boolean" },
  }, usage);
  const precision = precisionFlag(values, usage);
  const runs = intFlag(values, "runs", 15, 1, usage);
  const only = String(values.workload ?? "");
  const workloads = WORKLOADS.filter((w) => w.name.includes(only));
  if (workloads.length === 0) {
    cliFail(
      `--workload "${only}" matches none of: ${WORKLOADS.map((w) => w.name).join(", ")}`,
      usage,
    );
  }
  console.log(
    `sparselinear kernels, ${getNumThreads()} threads, ${navigator.hardwareConcurrency} ` +
      (precision === "highest" ? "" : `${precision} precision (bfloat16 gathers), `) +
      `logical CPUs, medians of ${runs} runs (ms; dense GEMMs of the table: ` +
      `${Math.min(runs, DENSE_TABLE_RUNS)} runs)\n`,
  );
  const rows: Row[] = [];
  for (const workload of workloads) {
    const dense = workload.reference.denseFwd === null ? null : denseState(workload, false);
    rows.push(measureWorkload(workload, runs, dense));
  }
  printTable(rows);
  if (!values["no-break-even"]) {
    const lowest = breakEven(runs);
    console.log(
      lowest === null
        ? "\nBreak-even: sparse is not faster than dense at any sparsity of the sweep."
        : `\nBreak-even: the sparse training step beats dense from ${
          (100 * lowest).toFixed(0)
        } % sparsity on (target ≤ 70 %).`,
    );
  }
  console.log(spreadNote());
}
