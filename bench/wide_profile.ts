/**
 * Where a training step of the wide MNIST model (`deno task train --model wide`) spends its
 * time: every native kernel call is timed, keyed by kernel and shape, over `--steps` steps of
 * batch 64 on random images (the kernels' cost does not depend on the pixel values), after one
 * warm-up step. The TypeScript between kernel calls (autograd, allocation, the optimizer loop)
 * is the step time minus the kernel time.
 *
 *   deno run -A bench/wide_profile.ts [--steps 20] [--width 50000] [--batch 64] [--threads N]
 *
 * Prints a table: kernel (with n_in → n_out for the sparse ones), calls per step, ms per step,
 * share of the step.
 * @module
 */
import { cliArgs, cliFail, intFlag, precisionFlag } from "../examples/cli.ts";
import type { ValueOrder } from "../lib/nn/sparse_linear.ts";
import { getNumThreads, native, setNumThreads } from "../ffi/library.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { fromFloat32 } from "../lib/tensor.ts";
import { WideMnistNet } from "../examples/models.ts";

const USAGE =
  `Usage: deno run -A bench/wide_profile.ts [--steps N] [--width N] [--batch N] [--threads N]
                                          [--precision highest|medium] [--value-order csr|csc]

Times every native call of wide-MNIST training steps (random images) and prints, per kernel
and layer shape, calls and ms per step and share of the step.
  --steps N     timed steps after one warm-up step (default 20)
  --width N     hidden width, a multiple of 10 (default 50000)
  --batch N     batch size (default 64)
  --threads N   native threads (default: SL_NUM_THREADS or all cores)
  --precision P medium (default, as deno task train --model wide) or highest (float32)
  --value-order O  csc (default, as deno task train --model wide) or csr: the hidden
                layers' value order (SparseLinearOptions.valueOrder)
  -h, --help    this text`;
const values = cliArgs({
  steps: { type: "string" },
  width: { type: "string" },
  batch: { type: "string" },
  threads: { type: "string" },
  precision: { type: "string" },
  "value-order": { type: "string" },
}, USAGE);
const steps = intFlag(values, "steps", 20, 1, USAGE);
const width = intFlag(values, "width", 50000, 10, USAGE);
const batch = intFlag(values, "batch", 64, 1, USAGE);
if (width % 10 !== 0) cliFail(`--width must be a multiple of 10, got ${width}`, USAGE);
if (values.threads !== undefined) setNumThreads(intFlag(values, "threads", 0, 1, USAGE));
const precision = precisionFlag(values, USAGE, "medium");
const valueOrder = String(values["value-order"] ?? "csc");
if (valueOrder !== "csr" && valueOrder !== "csc") {
  cliFail(`--value-order must be csr or csc, got "${valueOrder}"`, USAGE);
}

/** Kernels whose first arguments are (batch, n_in, n_out): keyed by their layer shape. */
const SPARSE = new Set([
  "sl_spmm_fwd",
  "sl_spmm_fwd_permuted",
  "sl_spmm_bwd_csc",
  "sl_spmm_bwd_input",
  "sl_spmm_bwd_input_csr",
  "sl_spmm_bwd",
  "sl_spmm_bwd_csr",
  "sl_sddmm",
]);

const timings = new Map<string, { calls: number; ms: number }>();
let recording = false;
const lib = native() as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const name of Object.keys(lib)) {
  const fn = lib[name];
  if (typeof fn !== "function" || !name.startsWith("sl_") || name === "sl_last_error") continue;
  lib[name] = (...args: unknown[]) => {
    if (!recording) return fn(...args);
    const t0 = performance.now();
    const result = fn(...args);
    const ms = performance.now() - t0;
    const key = SPARSE.has(name) ? `${name} ${args[1]}→${args[2]}` : name;
    const entry = timings.get(key) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += ms;
    timings.set(key, entry);
    return result;
  };
}

const model = new WideMnistNet({ seed: 0, width, valueOrder: valueOrder as ValueOrder });
const opt = new SGD(model, { lr: 5e-5, momentum: 0.9, nesterov: true });
const gen = new Generator(1);
const images = gen.fillNormal(new Float32Array(batch * 784));
const labels = Int32Array.from({ length: batch }, () => gen.int(10));
const x = fromFloat32(images, [batch, 784]);

function step(): { forward: number; backward: number; optimizer: number } {
  let t = performance.now();
  const loss = crossEntropy(model.forward(x), labels);
  loss.item();
  const forward = performance.now() - t;
  t = performance.now();
  loss.backward();
  const backward = performance.now() - t;
  t = performance.now();
  opt.step();
  opt.zeroGrad();
  return { forward, backward, optimizer: performance.now() - t };
}

/** Fields of /proc/self/stat after the command name (field 3 is index 0), or null. */
function procStat(): string[] | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Minor page faults of this process so far (field 10), or NaN. */
function minorFaults(): number {
  return Number(procStat()?.[7] ?? NaN);
}

/**
 * CPU time of this process so far in ms (user + system, fields 14 and 15, at 100 ticks/s), or
 * NaN. On a shared machine it is closer to the quiet-machine cost than wall time: waiting for
 * a core is not counted (cache and memory-bandwidth contention still are).
 */
function cpuMs(): number {
  const f = procStat();
  return f === null ? NaN : (Number(f[11]) + Number(f[12])) * 10;
}

step(); // warm-up: first-touch of scratch and optimizer state
const faults0 = minorFaults();
const cpu0 = cpuMs();
recording = true;
const phases = { forward: 0, backward: 0, optimizer: 0 };
const t0 = performance.now();
for (let s = 0; s < steps; s++) {
  const p = step();
  phases.forward += p.forward;
  phases.backward += p.backward;
  phases.optimizer += p.optimizer;
}
const total = (performance.now() - t0) / steps;
recording = false;
const faultsPerStep = (minorFaults() - faults0) / steps;
const cpuPerStep = (cpuMs() - cpu0) / steps;

const load = (() => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
})();
console.log(
  `WideMnistNet(width ${width}), batch ${batch}, ${steps} steps, ${getNumThreads()} threads, ` +
    `${precision} precision, hidden values in ${valueOrder.toUpperCase()} order, ` +
    `load average ${load}`,
);
console.log(
  `step ${total.toFixed(1)} ms = forward ${(phases.forward / steps).toFixed(1)} + backward ${
    (phases.backward / steps).toFixed(1)
  } + optimizer ${(phases.optimizer / steps).toFixed(1)} ms; epoch of 937 steps ≈ ${
    (total * 937 / 1000).toFixed(0)
  } s; CPU time ${cpuPerStep.toFixed(0)} ms per step (all threads); ${
    faultsPerStep.toFixed(0)
  } minor page faults per step (fresh buffers touched for the first time)`,
);
const rows = [...timings].sort((a, b) => b[1].ms - a[1].ms);
let kernelMs = 0;
console.log(`\n| kernel | calls/step | ms/step | share |\n|---|---:|---:|---:|`);
for (const [key, { calls, ms }] of rows) {
  kernelMs += ms;
  const perStep = ms / steps;
  if (perStep < 0.05) continue;
  console.log(
    `| ${key} | ${calls / steps} | ${perStep.toFixed(1)} | ${
      (100 * perStep / total).toFixed(1)
    } % |`,
  );
}
const rest = total - kernelMs / steps;
console.log(
  `| (TypeScript, allocation, GC between kernels) | | ${rest.toFixed(1)} | ${
    (100 * rest / total).toFixed(1)
  } % |`,
);
