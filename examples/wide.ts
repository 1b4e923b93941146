/**
 * `deno task wide`: a 1,000,000 × 1,000,000 SparseLinear at 99.999 % sparsity (10 M
 * connections) on one CPU machine, stage by stage, with the memory model's estimate printed
 * next to the measured resident memory (RSS) of each stage:
 *
 * 1. random connectivity (Vitter's sequential sampling, O(nnz)) — the layer of stages 3–4;
 * 2. small-world connectivity of the same size (built, measured, released);
 * 3. training steps at batch 64: forward, loss, backward, SGD (momentum 0.9) step, on random
 *    "post-ReLU" inputs (a fraction `--input-density` of entries nonzero);
 * 4. one SET prune-and-grow update (`growth: "set"`, drop fraction α = 0.3);
 * 5. one RigL update on a 100,000 × 100,000 layer: its dense gradient dYᵀ·X (10^10 entries) is
 *    computed in chunks of whole rows of at most `maxSize` entries (a fixed-order kernel, then
 *    a top-k pass over each); at 1 M width that gradient has 10^12 entries, so the example
 *    extrapolates the measured time per entry.
 *
 * "estimate" is what lib/nn/memory.ts predicts the stage holds at its peak (layers, gradients,
 * optimizer state, activations, kernel scratch, update scratch); "peak Δ" is the measured peak
 * RSS of the stage (VmHWM, reset per stage through /proc/self/clear_refs) minus the RSS before
 * the first layer. Garbage is collected between stages (`--v8-flags=--expose-gc`). Each
 * training step's note also gives the kernel scratch the native calls held at once
 * (`kernelScratchPeakBytes`) next to the model's figure for it.
 *
 * Run `deno task wide --help` for the flags.
 * @module
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { cliArgs, cliFail, cpuModel, decimalNumber, integerAtLeast, readProc } from "./cli.ts";
import { getNumThreads, kernelScratchPeakBytes, setNumThreads } from "../ffi/library.ts";
import {
  type ActivationEstimate,
  availableMemory,
  checkMemoryFits,
  constructionPeakBytes,
  formatBytes,
  kernelTileColumns,
  type OptimizerKind,
  pruneAndGrowExtraBytes,
  sparseLinearActivations,
  sparseLinearMemory,
  type SparseLinearShape,
} from "../lib/nn/memory.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { SparseLinear, type SparseLinearOptions } from "../lib/nn/sparse_linear.ts";
import { expectedConnectionCount } from "../lib/sparsity/random.ts";
import { sum } from "../lib/ops/reduce.ts";
import { reshape } from "../lib/ops/shape.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { fromFloat32, type Tensor } from "../lib/tensor.ts";

const HELP = `Usage: deno task wide [options]

Train steps and prune-and-grow updates of a very wide SparseLinear, with memory.

Options:
  --width N           inputs = outputs of the wide layer (default 1000000)
  --sparsity S        its sparsity (default 0.99999: 10 M connections at 1 M width)
  --batch N           batch size (default 64)
  --steps N           training steps timed (default 3; the SET update is step N + 1)
  --input-density D   fraction of nonzero inputs (default 0.1)
  --alpha A           drop fraction of the SET and RigL updates (default 0.3, RigL's paper)
  --rigl-width N      width of the RigL layer (default 100000)
  --rigl-sparsity S   its sparsity (default 0.999: 10 M connections at 100 k width)
  --max-size N        RigL dense-gradient chunk, entries (default 1e8, the layer default)
  --skip LIST         stages to skip, comma-separated: wide (everything on the wide layer),
                      small-world, train, set, rigl
  --threads N         native kernel threads (default: every core)
  --seed N            seed (default 0)
  --markdown          also print the results as a Markdown table
  -h, --help          show this help
`;

/** One measured stage. */
interface Stage {
  name: string;
  seconds: number;
  estimate: number;
  peakDelta: number | null;
  rss: number;
  note: string;
}

const collectGarbage = (globalThis as { gc?: () => void }).gc ?? (() => {});

/**
 * Collects garbage and waits a little: V8 frees the backing stores of dead typed arrays on a
 * background thread, so RSS only drops some milliseconds after the collection.
 */
async function settle(): Promise<void> {
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 300));
  collectGarbage();
}

/** Peak RSS of the process (VmHWM), or null when /proc cannot be read. */
function peakRss(): number | null {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false when not possible. */
function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

class Recorder {
  readonly stages: Stage[] = [];
  readonly baseline: number;
  readonly #peakResettable: boolean;

  private constructor(baseline: number, peakResettable: boolean) {
    this.baseline = baseline;
    this.#peakResettable = peakResettable;
  }

  /** A recorder whose baseline is the RSS now, after garbage collection. */
  static async create(): Promise<Recorder> {
    await settle();
    return new Recorder(Deno.memoryUsage().rss, resetPeakRss());
  }

  /**
   * Runs `fn` as a stage: garbage collection first (and time for V8 to hand freed buffers
   * back), then the peak reset, timing, and the RSS readings.
   */
  async run<T>(
    name: string,
    estimate: number,
    fn: () => T,
    note: (result: T) => string = () => "",
  ): Promise<T> {
    await settle();
    const canPeak = this.#peakResettable && resetPeakRss();
    const t0 = performance.now();
    const result = fn();
    const seconds = (performance.now() - t0) / 1000;
    const peak = canPeak ? peakRss() : null;
    const stage: Stage = {
      name,
      seconds,
      estimate,
      peakDelta: peak === null ? null : peak - this.baseline,
      rss: Deno.memoryUsage().rss,
      note: note(result),
    };
    this.stages.push(stage);
    console.log(
      `${name.padEnd(44)} ${seconds.toFixed(2).padStart(8)} s   estimate ${
        formatBytes(estimate).padStart(9)
      }   peak Δ ${
        (stage.peakDelta === null ? "n/a" : formatBytes(stage.peakDelta)).padStart(9)
      }   RSS ${formatBytes(stage.rss).padStart(9)}${stage.note ? `   ${stage.note}` : ""}`,
    );
    return result;
  }
}

/** Load average (1, 5, 15 min) from /proc/loadavg, or "unknown". */
function loadAverage(): string {
  return readProc("/proc/loadavg").split(" ").slice(0, 3).join(", ") || "unknown";
}

function machine(): string {
  const cpu = cpuModel();
  const flags = readProc("/proc/cpuinfo").match(/^flags\s*:(.*)$/m)?.[1].split(" ") ?? [];
  const simd = ["avx512f", "avx2", "fma"].filter((f) => flags.includes(f)).join("+");
  const kib = readProc("/proc/meminfo").match(/^MemTotal:\s+(\d+)/m)?.[1];
  const ram = kib === undefined ? "unknown" : formatBytes(Number(kib) * 1024);
  return `${cpu}${simd ? ` (${simd})` : ""}, ${navigator.hardwareConcurrency} logical CPUs, ` +
    `${ram} RAM; kernel threads ${getNumThreads()}; load average ${loadAverage()}; ` +
    `deno ${Deno.version.deno}`;
}

/** Random "post-ReLU" inputs: each entry nonzero (uniform in (0, 1)) with probability `density`. */
function sparseishInput(gen: Generator, batch: number, width: number, density: number): Tensor {
  const data = new Float32Array(batch * width);
  for (let i = 0; i < data.length; i++) {
    if (gen.uniform() < density) data[i] = gen.uniform();
  }
  return fromFloat32(data, [batch, width]);
}

/** Logits of a wide output: class c sums outputs c, c + 10, ... (as the wide MNIST model). */
function classLogits(y: Tensor): Tensor {
  const [batch, width] = y.shape;
  return sum(reshape(y, [batch, width / 10, 10]), 1);
}

function randomLabels(gen: Generator, batch: number): Int32Array {
  return Int32Array.from({ length: batch }, () => gen.int(10));
}

/** A flag value the run cannot use: the message and the usage, exit status 2. */
function usageError(message: string): never {
  return cliFail(message, HELP);
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  const n = value === undefined ? fallback : integerAtLeast(value, 1);
  if (n === null) usageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

/** A layer width: a positive multiple of 10 that int32 feature counts can hold. */
function widthFlag(value: string | undefined, fallback: number, name: string): number {
  const n = positiveInt(value, fallback, name);
  if (n > 2 ** 31 - 1) {
    usageError(`--${name} must be at most 2147483647 (int32 features), got ${n}`);
  }
  if (n % 10 !== 0) usageError(`--${name} must be a multiple of 10, got ${n}`);
  return n;
}

/** The layer's connection count; a sparsity that leaves none is a usage error. */
function connectionsOf(width: number, sparsity: number, name: string): number {
  const nnz = expectedConnectionCount(width, width, sparsity);
  if (nnz < 1) {
    usageError(`--${name} ${sparsity} leaves no connection in a ${width} × ${width} layer`);
  }
  return nnz;
}

function fraction(value: string | undefined, fallback: number, name: string): number {
  const x = value === undefined ? fallback : decimalNumber(value);
  if (!(x >= 0 && x <= 1)) usageError(`--${name} must be in [0, 1], got ${value}`);
  return x;
}

/** The command-line flags. */
const OPTIONS = {
  width: { type: "string" },
  sparsity: { type: "string" },
  batch: { type: "string" },
  steps: { type: "string" },
  "input-density": { type: "string" },
  alpha: { type: "string" },
  "rigl-width": { type: "string" },
  "rigl-sparsity": { type: "string" },
  "max-size": { type: "string" },
  skip: { type: "string" },
  threads: { type: "string" },
  seed: { type: "string" },
  markdown: { type: "boolean" },
} satisfies ParseArgsOptionsConfig;

/** The flags as parsed: strings, and the one boolean. */
type WideFlags = Partial<Record<Exclude<keyof typeof OPTIONS, "markdown">, string>> & {
  markdown?: boolean;
};

async function main(): Promise<void> {
  const values = cliArgs(OPTIONS, HELP) as WideFlags;
  const width = widthFlag(values.width, 1_000_000, "width");
  const sparsity = fraction(values.sparsity, 0.99999, "sparsity");
  const batch = positiveInt(values.batch, 64, "batch");
  const steps = positiveInt(values.steps, 3, "steps");
  const density = fraction(values["input-density"], 0.1, "input-density");
  const alpha = fraction(values.alpha, 0.3, "alpha");
  const riglWidth = widthFlag(values["rigl-width"], 100_000, "rigl-width");
  const riglSparsity = fraction(values["rigl-sparsity"], 0.999, "rigl-sparsity");
  const maxSize = positiveInt(values["max-size"], 1e8, "max-size");
  const seed = values.seed === undefined ? 0 : integerAtLeast(values.seed, 0);
  if (seed === null) usageError(`--seed must be an integer >= 0, got ${values.seed}`);
  const skip = new Set((values.skip ?? "").split(",").filter((s) => s !== ""));
  for (const s of skip) {
    if (!["wide", "small-world", "train", "set", "rigl"].includes(s)) {
      usageError(`--skip takes wide, small-world, train, set, rigl; got "${s}"`);
    }
  }
  if (values.threads !== undefined) setNumThreads(positiveInt(values.threads, 1, "threads"));
  // A layer of no connection, only where its stage runs.
  const nnz = skip.has("wide")
    ? expectedConnectionCount(width, width, sparsity)
    : connectionsOf(width, sparsity, "sparsity");
  if (!skip.has("rigl")) connectionsOf(riglWidth, riglSparsity, "rigl-sparsity");

  const gen = new Generator(seed);
  const shape: SparseLinearShape = { inFeatures: width, outFeatures: width, nnz };
  const optimizer: OptimizerKind = "sgd-momentum";
  const layerBytes = sparseLinearMemory(shape).total;
  const trainingState = sparseLinearMemory(shape, { gradients: true, optimizer });
  const trained = trainingState.total + trainingState.optimizerState;
  const act = sparseLinearActivations(width, width, batch, { inputGrad: false });
  const k = Math.floor(alpha * nnz);
  const setExtra = pruneAndGrowExtraBytes(shape, { k, growth: "set", optimizer });

  console.log(`Machine: ${machine()}`);
  const room = availableMemory();
  console.log(
    `Available memory: ${
      room === null ? "unknown" : `${formatBytes(room.bytes)} (${room.source})`
    }`,
  );
  console.log(
    `Layer ${width} × ${width} at sparsity ${sparsity}: ${nnz.toLocaleString("en-US")} ` +
      `connections; model: ${formatBytes(layerBytes)} (8 B/connection + row pointers and bias), ` +
      `${formatBytes(trained)} while training with SGD momentum (+4 B gradient, +4 B momentum), ` +
      `activations at batch ${batch}: ${formatBytes(act.total)} ` +
      `(input, output, its gradient, ${kernelTileColumns(batch)}-column kernel panel)`,
  );
  // The whole run, checked before anything big is allocated (the layer constructor checks
  // each layer again by itself).
  if (!skip.has("wide")) {
    const trains = !skip.has("train") || !skip.has("set");
    checkMemoryFits(
      trains ? trained + act.total + (skip.has("set") ? 0 : setExtra) : layerBytes,
      `This run (${width} × ${width}, batch ${batch})`,
    );
  }

  const rec = await Recorder.create();
  console.log(`Baseline RSS (runtime + library): ${formatBytes(rec.baseline)}\n`);

  if (!skip.has("wide")) {
    await wideStages(rec, gen, skip, {
      width,
      sparsity,
      batch,
      steps,
      density,
      alpha,
      shape,
      layerBytes,
      trained,
      act,
      k,
      setExtra,
    });
  }

  if (!skip.has("rigl")) {
    await riglStage(rec, gen, { riglWidth, riglSparsity, batch, alpha, maxSize });
  }

  console.log(`\nLoad average at the end: ${loadAverage()}`);
  if (values.markdown) {
    console.log(
      "\n| stage | time (s) | estimate | measured peak Δ RSS | RSS after | notes |\n|---|---:|---:|---:|---:|---|",
    );
    for (const s of rec.stages) {
      console.log(
        `| ${s.name} | ${s.seconds.toFixed(2)} | ${formatBytes(s.estimate)} | ${
          s.peakDelta === null ? "n/a" : formatBytes(s.peakDelta)
        } | ${formatBytes(s.rss)} | ${s.note} |`,
      );
    }
  }
}

/** What the stages of the wide layer need (computed in `main`). */
interface WideConfig {
  width: number;
  sparsity: number;
  batch: number;
  steps: number;
  density: number;
  alpha: number;
  shape: SparseLinearShape;
  layerBytes: number;
  trained: number;
  act: ActivationEstimate;
  k: number;
  setExtra: number;
}

/**
 * Stages 1–4 on the wide layer; the layer, its input and optimizer are released on return.
 */
async function wideStages(
  rec: Recorder,
  gen: Generator,
  skip: Set<string>,
  c: WideConfig,
): Promise<void> {
  const { width, sparsity, batch, steps, density, alpha, shape, layerBytes, trained, act, k } = c;
  const setExtra = c.setExtra;
  const options: SparseLinearOptions = {
    sparsity,
    dynamic: true,
    growth: "set",
    alpha,
    deltaT: steps + 1,
    tEnd: 1_000_000,
  };
  const layer = await rec.run(
    `random init ${width}×${width}`,
    constructionPeakBytes(shape, "random"),
    () => new SparseLinear(width, width, { ...options, seed: gen }),
    (l) => `nnz ${l.nnz.toLocaleString("en-US")}, memoryBytes ${formatBytes(l.memoryBytes())}`,
  );

  if (!skip.has("small-world")) {
    let sw: SparseLinear | null = await rec.run(
      `small-world init ${width}×${width}`,
      layerBytes + constructionPeakBytes(shape, "small-world"),
      () => new SparseLinear(width, width, { sparsity, smallWorld: true, seed: gen }),
      (l) => `nnz ${l.nnz.toLocaleString("en-US")}`,
    );
    sw = null; // released before the next stage
    void sw;
  }

  if (!skip.has("train") || !skip.has("set")) {
    const x = await rec.run(
      `input [${batch}, ${width}], density ${density}`,
      layerBytes + act.input,
      () => sparseishInput(gen, batch, width, density),
    );
    const opt = new SGD(layer, { lr: 0.01, momentum: 0.9 });
    /** Forward and loss, backward, and the SGD step, timed separately (ms). */
    const trainStep = (): { forward: number; backward: number; sgd: number } => {
      const labels = randomLabels(gen, batch);
      let t = performance.now();
      const loss = crossEntropy(classLogits(layer.forward(x)), labels);
      const forward = performance.now() - t;
      t = performance.now();
      loss.backward();
      const backward = performance.now() - t;
      t = performance.now();
      opt.step();
      opt.zeroGrad();
      return { forward, backward, sgd: performance.now() - t };
    };
    const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    if (!skip.has("train")) {
      for (let step = 1; step <= steps; step++) {
        await rec.run(
          `train step ${step}/${steps} (fwd+bwd+SGD), batch ${batch}`,
          trained + act.total,
          () => {
            kernelScratchPeakBytes({ reset: true });
            const times = trainStep();
            layer.dynamicSparsity!.step(); // no update before step `steps + 1`
            return { ...times, scratch: kernelScratchPeakBytes({ reset: true }) };
          },
          (t) =>
            `forward + loss ${s(t.forward)}, backward ${s(t.backward)}, SGD ${s(t.sgd)}; ` +
            `kernel scratch ${formatBytes(t.scratch)} (model ${formatBytes(act.kernelScratch)})`,
        );
      }
    }
    if (!skip.has("set")) {
      // The update step: forward and backward as usual, then the schedule's SET update.
      const dyn = layer.dynamicSparsity!;
      dyn.stepCount = steps; // the next step() is the update (deltaT = steps + 1)
      crossEntropy(classLogits(layer.forward(x)), randomLabels(gen, batch)).backward();
      await rec.run(
        `SET update (α ${alpha}: drop+grow up to ${k.toLocaleString("en-US")})`,
        trained + act.input + setExtra,
        () => dyn.step(),
        (report) =>
          `k ${report?.k.toLocaleString("en-US")}, regrown ${report?.regrown}, nnz ${layer.nnz}`,
      );
      opt.step();
      opt.zeroGrad();
    }
  }
}

/** Stage 5: one chunked RigL update on a narrower layer, and the 1 M-width extrapolation. */
async function riglStage(
  rec: Recorder,
  gen: Generator,
  o: { riglWidth: number; riglSparsity: number; batch: number; alpha: number; maxSize: number },
): Promise<void> {
  const n = o.riglWidth;
  const nnz = expectedConnectionCount(n, n, o.riglSparsity);
  const shape: SparseLinearShape = { inFeatures: n, outFeatures: n, nnz };
  const k = Math.floor(o.alpha * nnz);
  const chunkRows = Math.min(n, Math.floor(o.maxSize / n));
  const chunks = Math.ceil(n / chunkRows);
  const layer = await rec.run(
    `RigL layer init ${n}×${n}`,
    constructionPeakBytes(shape, "random"),
    () =>
      new SparseLinear(n, n, {
        sparsity: o.riglSparsity,
        dynamic: true,
        growth: "rigl",
        alpha: o.alpha,
        deltaT: 1,
        tEnd: 1_000_000,
        maxSize: o.maxSize,
        seed: gen,
      }),
  );
  const x = sparseishInput(gen, o.batch, n, 0.1);
  const act = sparseLinearActivations(n, n, o.batch, { inputGrad: false });
  const held = sparseLinearMemory(shape, { gradients: true }).total;
  await rec.run(
    `RigL fwd+bwd ${n}×${n} (records x, dY)`,
    held + act.total + 4 * o.batch * 2 * n,
    () => {
      const y = layer.forward(x);
      crossEntropy(classLogits(y), randomLabels(gen, o.batch)).backward();
    },
  );
  const extra = pruneAndGrowExtraBytes(shape, {
    k,
    growth: "rigl",
    maxSize: o.maxSize,
    batch: o.batch,
  });
  const report = await rec.run(
    `RigL update ${n}×${n}: ${chunks} ${chunks === 1 ? "chunk" : "chunks"} of ${chunkRows} rows`,
    held + act.input + extra,
    () => layer.dynamicSparsity!.step(),
    (r) => `k ${r?.k.toLocaleString("en-US")}, dense gradient ${(n * n).toExponential(0)} entries`,
  );
  void report;
  const update = rec.stages[rec.stages.length - 1].seconds;

  const wideEntries = 1e12;
  const wideRows = Math.floor(o.maxSize / 1e6);
  const wideChunks = Math.ceil(1e6 / wideRows);
  const perEntry = update / (n * n);
  // A maxSize below 10^6 holds no row at 1 M width (RigL refuses it): no chunk count then.
  const chunking = wideRows === 0
    ? `(a maxSize of ${o.maxSize} cannot hold one of its 10^6-entry rows)`
    : `= ${wideChunks} chunks of ${wideRows} rows (same maxSize),`;
  console.log(
    `\nRigL cost: the update took ${update.toFixed(1)} s for ${(n * n).toExponential(0)} ` +
      `dense-gradient entries in ${chunks} ${chunks === 1 ? "chunk" : "chunks"}. ` +
      `At 1,000,000 × 1,000,000 the dense gradient has ` +
      `10^12 entries ${chunking} ≈ ${
        (perEntry * wideEntries / 60).toFixed(0)
      } min per update in all (time per entry × 10^12), whatever the sparsity.`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
