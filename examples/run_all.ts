/**
 * `deno task results`: trains every model of `deno task train` one after the other (each in its
 * own process, so that memory and time are its own) and writes a markdown table of our test
 * accuracy next to the seed notebook's, with seconds per epoch and peak memory, to
 * `bench/MNIST_RESULTS.md` (rewritten after every model, so a long run keeps what it finished;
 * a partial run writes a file only where `--out` says).
 *
 * ```
 * deno task results                           # all models, 20 epochs each (hours)
 * deno task results --epochs 1 --models dense,sparse
 * ```
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { cpuModel, integerAtLeast, joinNegativeValues } from "./cli.ts";
import { fileURLToPath } from "node:url";
import { MODEL_NAMES, type ModelName, MODELS } from "./models.ts";
import { checkWritableFile, type MetricsFile, parseTrainArgs } from "./train_mnist.ts";

const USAGE = `Usage: deno task results [--epochs N] [--models a,b,...] [--out PATH]
                         [--limit-train N] [--threads N] [--seed N]

Trains each model with \`deno task train\` for N epochs (default 20), sequentially, and writes
the results table to PATH after each model. Default PATH: bench/MNIST_RESULTS.md for the full
run (every model, 20 epochs, all images); a partial run prints its table and writes no file
unless --out is given (so it cannot replace the full run's table).
Models (default all): ${MODEL_NAMES.join(", ")}`;

interface Row {
  model: ModelName;
  metrics: MetricsFile | null;
  error: string | null;
}

function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits);
}

function machine(): string {
  const cpu = cpuModel(); // through `cat`: this task has the run permission, not --allow-all
  let commit = "";
  try {
    const out = new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"] }).outputSync();
    commit = new TextDecoder().decode(out.stdout).trim();
  } catch { /* no git */ }
  return `${cpu}, ${navigator.hardwareConcurrency} logical cores${
    commit === "" ? "" : `; commit ${commit}`
  }`;
}

function table(rows: Row[], command: string, startedAt: string): string {
  const lines = [
    "# MNIST results: sparselinear vs the SparseLinear notebook",
    "",
    `Written by \`${command}\` (examples/run_all.ts), started ` +
    `${startedAt}; machine: ${machine()}. The seed's accuracies are the last (20th) epoch of ` +
    "tutorials/SparseLinearDemo.ipynb (on a GPU, test set of 9,984 images); ours are the last " +
    "epoch run, on all 10,000 test images. Seconds per epoch are training only; the test " +
    "pass is listed apart.",
    "",
    "| Model | Epochs | Steps/epoch | Test acc. (ours) | Best epoch (ours) | Seed (20 epochs) | Δ (points) | " +
    "s/epoch train | s test pass | Peak RSS |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { model, metrics, error } of rows) {
    const seed = MODELS[model].seedTestAccuracy;
    if (metrics === null) {
      lines.push(`| ${model} | - | - | failed: ${error ?? "?"} | | ${seed} | | | | |`);
      continue;
    }
    const h = metrics.history;
    const last = h[h.length - 1];
    const best = Math.max(...h.map((e) => e.testAccuracy ?? NaN));
    const train = h.reduce((s, e) => s + e.trainSeconds, 0) / h.length;
    const test = h.reduce((s, e) => s + e.testSeconds, 0) / h.length;
    const delta = (last.testAccuracy ?? NaN) - seed;
    // The sparse kernels' precision, where a model's default is not float32 (wide: medium).
    const label = metrics.args.precision === "highest"
      ? model
      : `${model}, ${metrics.args.precision}`;
    lines.push(
      `| ${label} | ${h.length} | ${metrics.stepsPerEpoch} | ${fmt(last.testAccuracy)} | ${
        fmt(best)
      } | ${seed} | ` +
        `${delta >= 0 ? "+" : ""}${fmt(delta)} | ${fmt(train)} | ${fmt(test)} | ` +
        `${(metrics.peakRssBytes / 2 ** 20).toFixed(0)} MiB |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

async function runModel(
  model: ModelName,
  trainArgs: string[],
  metricsPath: string,
): Promise<Row> {
  const script = fileURLToPath(new URL("./train_mnist.ts", import.meta.url));
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-sys=systemMemoryInfo", // as `deno task train`: memory checks of large layers
      script,
      "--model",
      model,
      "--metrics",
      metricsPath,
      ...trainArgs,
    ],
    stdout: "inherit",
    stderr: "piped",
  });
  const { code, stderr } = await command.output();
  const errText = new TextDecoder().decode(stderr).trim();
  if (errText !== "") console.error(errText);
  let metrics: MetricsFile | null = null;
  try {
    metrics = JSON.parse(await Deno.readTextFile(metricsPath));
  } catch { /* the run failed before its first epoch */ }
  const error = code === 0 ? null : (errText.split("\n")[0] || `exit status ${code}`);
  return { model, metrics, error };
}

/** Where the full run's table goes unless --out says otherwise. */
const DEFAULT_OUT = "bench/MNIST_RESULTS.md";

/** The command-line flags. */
const OPTIONS = {
  epochs: { type: "string", default: "20" },
  models: { type: "string", default: MODEL_NAMES.join(",") },
  out: { type: "string" },
  "limit-train": { type: "string" },
  threads: { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsOptionsConfig;

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(Deno.args, OPTIONS),
      strict: true,
      options: OPTIONS,
    }));
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const models = values.models.split(",").map((m) => m.trim()).filter((m) => m !== "");
  const unknown = models.filter((m) => !(MODEL_NAMES as readonly string[]).includes(m));
  const fail = (message: string): never => {
    console.error(`error: ${message}\n\n${USAGE}`);
    Deno.exit(2);
  };
  if (models.length === 0) fail(`--models names no model; choose from ${MODEL_NAMES.join(", ")}`);
  if (unknown.length > 0) {
    fail(`unknown model(s) ${unknown.join(", ")}; choose from ${MODEL_NAMES.join(", ")}`);
  }
  const epochs = integerAtLeast(values.epochs, 1) ??
    fail(`--epochs must be a positive integer, got "${values.epochs}"`);
  const trainArgs = ["--epochs", String(epochs)];
  for (const flag of ["limit-train", "threads", "seed"] as const) {
    if (values[flag] !== undefined) trainArgs.push(`--${flag}`, values[flag]!);
  }
  const full = models.length === MODEL_NAMES.length && epochs === 20 &&
    values["limit-train"] === undefined;
  const out = values.out ?? (full ? DEFAULT_OUT : null);
  // Every flag passed on is checked here, as each run will: a bad --seed would otherwise fail
  // every model in turn and overwrite the results table with "failed" rows.
  try {
    for (const model of models) parseTrainArgs([...trainArgs, "--model", model]);
    if (out !== null) await checkWritableFile(out, "--out");
  } catch (err) {
    fail((err as Error).message);
  }
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  // The whole command line in the file's header: a partial run (--models, --limit-train) must
  // not read as the full one.
  const command = ["deno task results", ...Deno.args].join(" ");
  const dir = await Deno.makeTempDir({ prefix: "sparselinear-results-" });
  const rows: Row[] = [];
  try {
    for (const model of models as ModelName[]) {
      console.log(`\n=== ${model} (${epochs} epoch${epochs === 1 ? "" : "s"}) ===`);
      rows.push(await runModel(model, trainArgs, `${dir}/${model}.json`));
      if (out !== null) await Deno.writeTextFile(out, table(rows, command, startedAt));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`\n${table(rows, command, startedAt)}`);
  console.log(
    out !== null
      ? `Written to ${out}`
      : "A partial run: not written to a file (--out PATH writes the table there)",
  );
  if (rows.some((r) => r.error !== null)) Deno.exit(1);
}
