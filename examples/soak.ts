/**
 * Soak test (issue 7): trains the tutorial's sparse MNIST model (784 → 2000 → 10, both layers
 * SparseLinear at sparsity 0.9, LayerNorm + ReLU between) with RigL prune-and-grow on a short
 * schedule (every `--delta-t` steps, so that hundreds of topology updates happen) and a
 * safetensors checkpoint every `--checkpoint-every` steps, for `--steps` steps. The resident
 * set size is sampled every `--sample-every` steps; after the warm-up (the first
 * `--warmup` fraction of the run) a least-squares line is fitted through the samples and the
 * run fails (exit 1) when memory grows by more than `--max-growth-mib` over the measured span.
 * Prints a table of the samples and a summary line with the slope.
 *
 * Usage:
 *   deno run --allow-all examples/soak.ts [--steps 20000] [--delta-t 50] [--sample-every 500]
 *     [--checkpoint-every 2000] [--warmup 0.2] [--max-growth-mib 32] [--threads N] [--seed 0]
 *     [--growth rigl|set] [--malloc-tuning]
 * The library's malloc tuning (csrc/common/core.c: freed buffers stay in the heap, up to a
 * 512 MiB trim threshold, the heap grows in 64 MiB pads) makes RSS climb in steps to a plateau
 * that says nothing about leaks, so the soak turns it off (SL_NO_MALLOC_TUNING=1, set before the
 * library loads) unless `--malloc-tuning` is given.
 * With `--v8-flags=--expose-gc`, a full garbage collection runs before each sample, so that the
 * samples measure live memory rather than when the collector last ran (tensor storage is
 * ArrayBuffer memory, freed only by a collection).
 * @module
 */
import { cliArgs, cliFail, decimalNumber, intFlag } from "./cli.ts";
import { join } from "node:path";
import { setNumThreads } from "../ffi/library.ts";
import { batches } from "../lib/data/batches.ts";
import { loadMnistFromPackage } from "../lib/data/mnist_package.ts";
import { fromFloat32 } from "../lib/tensor.ts";
import { loadStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { cudaMemoryStats } from "../lib/backend/cuda.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { stepDynamicSparsity } from "../lib/sparsity/rigl.ts";

/** One RSS sample. */
export interface RssSample {
  /** Training steps done when sampled. */
  step: number;
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
  /** Memory of ArrayBuffers (tensor storage) held by V8, bytes. */
  external: number;
  /** Topology updates so far (all layers). */
  updates: number;
  /** Mean loss over the steps since the previous sample. */
  loss: number;
}

/** Least-squares slope (y per x) and intercept of the points. */
export function linearFit(xs: number[], ys: number[]): { slope: number; intercept: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx };
}

const MIB = 1024 * 1024;

const USAGE = `Usage: deno run --allow-all examples/soak.ts [options]

Trains the sparse MNIST model with RigL every --delta-t steps and a checkpoint every
--checkpoint-every steps; fails (exit 1) when resident memory grows by more than
--max-growth-mib after the warm-up.
  --steps N              training steps (default 20000)
  --delta-t N            steps between topology updates (default 50)
  --sample-every N       steps between memory samples (default 500)
  --checkpoint-every N   steps between safetensors checkpoints (default 2000)
  --warmup F             fraction of the run before the fit starts (default 0.2)
  --max-growth-mib X     allowed growth over the measured span (default 32)
  --threads N            native threads (default: SL_NUM_THREADS or all cores)
  --seed N               seed (default 0)
  --growth rigl|set      growth criterion (default rigl)
  --malloc-tuning        keep the library's malloc tuning on (off by default, see the source)
  --device cpu|cuda      device (default cpu)
  -h, --help             this text`;

function positive(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === "string" ? decimalNumber(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) {
    cliFail(`--${name} must be a positive number, got "${value}"`, USAGE);
  }
  return n;
}

async function main(): Promise<number> {
  const values = cliArgs({
    steps: { type: "string" },
    "delta-t": { type: "string" },
    "sample-every": { type: "string" },
    "checkpoint-every": { type: "string" },
    warmup: { type: "string" },
    "max-growth-mib": { type: "string" },
    threads: { type: "string" },
    seed: { type: "string" },
    growth: { type: "string" },
    "malloc-tuning": { type: "boolean" },
    device: { type: "string" },
  }, USAGE);
  // Before anything loads the native library (it reads the variable once, at load).
  if (!values["malloc-tuning"] && Deno.env.get("SL_NO_MALLOC_TUNING") === undefined) {
    Deno.env.set("SL_NO_MALLOC_TUNING", "1");
  }
  const tuning = Deno.env.get("SL_NO_MALLOC_TUNING") === undefined;
  const steps = Math.floor(positive(values.steps, "steps", 20000));
  const deltaT = Math.floor(positive(values["delta-t"], "delta-t", 50));
  const sampleEvery = Math.floor(positive(values["sample-every"], "sample-every", 500));
  const checkpointEvery = Math.floor(
    positive(values["checkpoint-every"], "checkpoint-every", 2000),
  );
  const warmup = positive(values.warmup, "warmup", 0.2);
  const maxGrowthMib = positive(values["max-growth-mib"], "max-growth-mib", 32);
  const seed = intFlag(values, "seed", 0, 0, USAGE);
  const growth = values.growth ?? "rigl";
  if (growth !== "rigl" && growth !== "set") {
    cliFail(`--growth must be "rigl" or "set", got "${growth}"`, USAGE);
  }
  const device = values.device ?? "cpu";
  if (device !== "cpu" && device !== "cuda") {
    cliFail(`--device must be "cpu" or "cuda", got "${device}"`, USAGE);
  }
  if (values.threads !== undefined) setNumThreads(positive(values.threads, "threads", 1));

  const mnist = await loadMnistFromPackage();
  const gen = new Generator(seed);
  const dynamic = { dynamic: true, deltaT, tEnd: steps, alpha: 0.3, growth, seed: gen } as const;
  const first = new SparseLinear(784, 2000, { sparsity: 0.9, ...dynamic });
  const second = new SparseLinear(2000, 10, { sparsity: 0.9, ...dynamic });
  const model = new Sequential(first, new LayerNorm(2000), new ReLU(), second).to(device);
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = fromFloat32(mnist.train.images, [mnist.train.count, 784]);
  const train = batches(x, mnist.train.labels, {
    batchSize: 64,
    shuffle: true,
    seed: seed + 1,
    dropLast: true,
    device,
  });
  const dir = await Deno.makeTempDir({ prefix: "sparselinear-soak-" });
  const checkpoint = join(dir, "soak.safetensors");

  console.log(
    `soak: ${steps} steps, batch 64, RigL (${growth}) every ${deltaT} steps, checkpoint ` +
      `(save + reload) every ${checkpointEvery}, RSS every ${sampleEvery}, malloc tuning ` +
      (tuning ? "on" : "off"),
  );
  const collectGarbage = (globalThis as { gc?: () => void }).gc;
  console.log(
    `   step   RSS MiB  heap MiB  ext MiB  updates    loss` +
      (collectGarbage ? "   (after a full GC)" : ""),
  );
  const samples: RssSample[] = [];
  let step = 0, updates = 0, checkpoints = 0, lossSum = 0, lossCount = 0;
  const start = performance.now();
  try {
    while (step < steps) {
      for (const batch of train) {
        if (step >= steps) break;
        step++;
        const loss = crossEntropy(model.forward(batch.x), batch.y);
        lossSum += loss.item();
        lossCount++;
        loss.backward();
        updates += stepDynamicSparsity(model).size;
        optimizer.step();
        optimizer.zeroGrad();
        if (step % checkpointEvery === 0) {
          await saveStateDict(model, checkpoint);
          await loadStateDict(model, checkpoint); // same state back: exercises the load path
          checkpoints++;
        }
        if (step % sampleEvery === 0 || step === steps) {
          if (collectGarbage) {
            // Twice, with a pause: V8 frees ArrayBuffer memory on a background thread after
            // a collection.
            collectGarbage();
            await new Promise((resolve) => setTimeout(resolve, 20));
            collectGarbage();
          }
          const mem = Deno.memoryUsage();
          if (device === "cuda") {
            const dev = cudaMemoryStats();
            console.log(
              `        device: ${dev.buffers} live buffers, ${(dev.bytes / MIB).toFixed(1)} MiB`,
            );
          }
          const s = {
            step,
            rss: mem.rss,
            heapUsed: mem.heapUsed,
            external: mem.external,
            updates,
            loss: lossSum / lossCount,
          };
          samples.push(s);
          lossSum = lossCount = 0;
          console.log(
            `${String(step).padStart(7)} ${(s.rss / MIB).toFixed(1).padStart(9)} ` +
              `${(s.heapUsed / MIB).toFixed(1).padStart(9)} ` +
              `${(s.external / MIB).toFixed(1).padStart(8)} ${String(updates).padStart(8)} ` +
              `${s.loss.toFixed(4).padStart(7)}`,
          );
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const seconds = (performance.now() - start) / 1000;

  const measured = samples.filter((s) => s.step > warmup * steps);
  const fitRss = linearFit(measured.map((s) => s.step), measured.map((s) => s.rss / MIB));
  const fitHeap = linearFit(measured.map((s) => s.step), measured.map((s) => s.heapUsed / MIB));
  const span = measured.length > 0 ? measured[measured.length - 1].step - measured[0].step : 0;
  const growthMib = fitRss.slope * span;
  const rssValues = measured.map((s) => s.rss / MIB);
  console.log(
    `soak: ${step} steps in ${seconds.toFixed(0)} s, ${updates} topology updates, ` +
      `${checkpoints} checkpoints; after warm-up (step > ${Math.round(warmup * steps)}): ` +
      `RSS ${Math.min(...rssValues).toFixed(1)}–${Math.max(...rssValues).toFixed(1)} MiB, ` +
      `slope ${(fitRss.slope * 1000).toFixed(3)} MiB per 1000 steps ` +
      `(${growthMib.toFixed(1)} MiB over ${span} steps), heap slope ` +
      `${(fitHeap.slope * 1000).toFixed(3)} MiB per 1000 steps`,
  );
  if (measured.length < 3) {
    console.log("soak: too few samples after warm-up to judge the slope");
    return 1;
  }
  if (growthMib > maxGrowthMib) {
    console.log(`soak: FAILED: RSS grew ${growthMib.toFixed(1)} MiB > ${maxGrowthMib} MiB`);
    return 1;
  }
  console.log(`soak: memory flat (growth ${growthMib.toFixed(1)} MiB <= ${maxGrowthMib} MiB)`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
