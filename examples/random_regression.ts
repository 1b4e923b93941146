/**
 * `deno task regression`: the "Training with random inputs" cell of SparseLinear's tutorial
 * notebook (after PyTorch's two-layer-net tutorial): a dense and a sparse two-layer network fit
 * the same random data, side by side.
 *
 * As the notebook: N = 64 examples, D_in = 200, H = 1000, D_out = 10; x and y drawn from
 * N(0, 1); `Linear(200, 1000), ReLU, Linear(1000, 10)` against
 * `SparseLinear(200, 1000), ReLU, SparseLinear(1000, 10)` at the default 90 % sparsity; MSE
 * loss summed over all elements; plain gradient descent `p -= lr · grad` (SGD without
 * momentum) with lr 1e-4 for the dense model and 1e-3 for the sparse one (the notebook: sparse
 * models want a larger rate); 500 steps; both losses printed every 100 steps, after the
 * step's forward and before its update (the notebook's `t % 100 == 99`), each line led by
 * its step number (the notebook's lines had none).
 *
 * The notebook printed, for its random draw:
 * ```
 * Dense model loss: 4.417; Sparse model loss: 5.111
 * Dense model loss: 0.075; Sparse model loss: 0.031
 * Dense model loss: 0.002; Sparse model loss: 0.000
 * Dense model loss: 0.000; Sparse model loss: 0.000
 * Dense model loss: 0.000; Sparse model loss: 0.000
 * ```
 * Both losses fall towards zero here too; the exact values depend on the draw (`--seed`).
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { integerAtLeast, joinNegativeValues } from "./cli.ts";
import { randn } from "../lib/creation.ts";
import { Linear } from "../lib/nn/linear.ts";
import { mseLoss } from "../lib/nn/losses.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";

/** The losses printed at one reporting step. */
export interface RegressionReport {
  /** Step number (1-based: 100, 200, ..., and the last step). */
  step: number;
  /** Summed squared error of the dense model. */
  dense: number;
  /** Summed squared error of the sparse model. */
  sparse: number;
}

/** Options of `runRegression` (defaults: the notebook's). */
export interface RegressionOptions {
  /** Training steps (default 500). */
  steps?: number;
  /** Report every this many steps, and after the last (default 100). */
  every?: number;
  /** Seed of data and initial weights (default 0). */
  seed?: number;
  /** Called with each report (default: prints the notebook's line, led by the step). */
  report?: (r: RegressionReport) => void;
}

/** Trains both models as the notebook does; returns the reports. */
export function runRegression(options: RegressionOptions = {}): RegressionReport[] {
  const steps = options.steps ?? 500;
  const every = options.every ?? 100;
  const seed = options.seed ?? 0;
  const report = options.report ??
    ((r: RegressionReport) =>
      console.log(
        `step ${String(r.step).padStart(String(steps).length)}: ` +
          `Dense model loss: ${r.dense.toFixed(3)}; Sparse model loss: ${r.sparse.toFixed(3)}`,
      ));
  const [n, dIn, h, dOut] = [64, 200, 1000, 10];
  const gen = new Generator(seed);
  const x = randn([n, dIn], { seed: gen.nextUint32() });
  const y = randn([n, dOut], { seed: gen.nextUint32() });
  const dense = new Sequential(
    new Linear(dIn, h, { seed: gen }),
    new ReLU(),
    new Linear(h, dOut, { seed: gen }),
  );
  const sparse = new Sequential(
    new SparseLinear(dIn, h, { seed: gen }),
    new ReLU(),
    new SparseLinear(h, dOut, { seed: gen }),
  );
  const denseOpt = new SGD(dense, { lr: 1e-4 });
  const sparseOpt = new SGD(sparse, { lr: 1e-3 });
  const reports: RegressionReport[] = [];
  for (let t = 1; t <= steps; t++) {
    const lossDense = mseLoss(dense.forward(x), y, { reduction: "sum" });
    const lossSparse = mseLoss(sparse.forward(x), y, { reduction: "sum" });
    if (t % every === 0 || t === steps) {
      const r = { step: t, dense: lossDense.item(), sparse: lossSparse.item() };
      reports.push(r);
      report(r);
    }
    denseOpt.zeroGrad();
    sparseOpt.zeroGrad();
    lossDense.backward();
    lossSparse.backward();
    denseOpt.step();
    sparseOpt.step();
  }
  return reports;
}

/** The command-line flags. */
const OPTIONS = {
  seed: { type: "string" },
  steps: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsOptionsConfig;

if (import.meta.main) {
  let seed: number;
  let steps: number;
  try {
    const { values } = parseArgs({
      args: joinNegativeValues(Deno.args, OPTIONS),
      strict: true,
      options: OPTIONS,
    });
    if (values.help) {
      console.log(
        "Usage: deno task regression [--seed N] [--steps N]\n\n" +
          "The notebook's random-data regression: a dense and a sparse two-layer network\n" +
          "(200-1000-10) fit 64 random examples; both summed MSE losses every 100 steps and at the end.\n" +
          "  --seed N    seed of data and weights (default 0)\n" +
          "  --steps N   training steps (default 500)",
      );
      Deno.exit(0);
    }
    const integer = (raw: string | undefined, flag: string, fallback: number, min: number) => {
      const v = raw === undefined ? fallback : integerAtLeast(raw, min);
      if (v === null) throw new RangeError(`${flag} must be an integer ≥ ${min}, got "${raw}"`);
      return v;
    };
    seed = integer(values.seed, "--seed", 0, 0);
    steps = integer(values.steps, "--steps", 500, 1);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    console.error("Usage: deno task regression [--seed N] [--steps N]");
    Deno.exit(2);
  }
  // A failure while running (no native library, ...) is no usage error: status 1, no usage.
  try {
    runRegression({ seed, steps });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
