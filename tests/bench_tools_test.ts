/**
 * The benchmark and results tools (bench/compare.ts, bench/workloads.ts, examples/run_all.ts):
 * medians, GFLOP/s, the "met" verdict, the timing-spread footer, the break-even search, the
 * workloads' flop counts and patterns, and run_all's partial runs. No other test reached their
 * logic (mutation testing, bench/RESULTS.md). Deterministic: compare.ts runs with a fake clock
 * (tests/fixtures/fake_clock.ts preloaded), so its table is exact.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { medianMs } from "../bench/compare.ts";
import {
  denseForward,
  denseState,
  forwardFlops,
  PEAK_GFLOPS,
  randomPattern,
  sparseForward,
  sparseState,
  trainFlops,
  type Workload,
} from "../bench/workloads.ts";

const ROOT = join(import.meta.dirname!, "..");

async function compare(steps: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--preload",
      join(ROOT, "tests/fixtures/fake_clock.ts"),
      join(ROOT, "bench/compare.ts"),
      ...args,
    ],
    env: { FAKE_CLOCK_STEPS: steps },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.deepEqual(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("medianMs: odd and even medians over the timed runs", () => {
  const real = performance.now;
  try {
    for (const [durations, want] of [[[5, 1, 3], 3], [[4, 1, 3, 2], 2.5]] as [number[], number][]) {
      let t = 0;
      let i = 0;
      Object.defineProperty(performance, "now", { value: () => t, configurable: true });
      // warm-up calls take 300 ms (past WARMUP_MS after one call; warmup=2 forces two)
      const fn = () => {
        t += i < 2 ? 300 : durations[i - 2];
        i++;
      };
      assert.deepEqual(medianMs(fn, durations.length), want);
      assert.deepEqual(i, 2 + durations.length);
    }
  } finally {
    Object.defineProperty(performance, "now", { value: real, configurable: true });
  }
});

Deno.test("workloads: flop counts, ceiling, pattern size and balance", () => {
  assert.deepEqual(forwardFlops(10, 3), 60);
  assert.deepEqual(trainFlops(10, 3), 180);
  assert.deepEqual(PEAK_GFLOPS, 128);
  for (
    const [nIn, nOut, sp, nnz] of [[784, 2000, 0.9, 156800], [10, 4, 0.3, 28], [7, 3, 0.5, 11]]
  ) {
    const { rowPtr, colIdx } = randomPattern(nIn, nOut, sp);
    assert.deepEqual(colIdx.length, nnz);
    assert.deepEqual(rowPtr[nOut], nnz);
    for (let r = 0; r < nOut; r++) {
      const n = rowPtr[r + 1] - rowPtr[r];
      assert.ok(n === Math.floor(nnz / nOut) || n === Math.floor(nnz / nOut) + 1, `row ${r}: ${n}`);
      for (let k = rowPtr[r] + 1; k < rowPtr[r + 1]; k++) assert.ok(colIdx[k] > colIdx[k - 1]);
      for (let k = rowPtr[r]; k < rowPtr[r + 1]; k++) assert.ok(colIdx[k] >= 0 && colIdx[k] < nIn);
    }
  }
});

Deno.test("workloads: dense and sparse forwards compute y = x·Wᵀ + b", () => {
  const w: Workload = {
    name: "t",
    inFeatures: 3,
    outFeatures: 5,
    sparsity: 0.4,
    batch: 2,
    reference: { scipyFwd: 0, scipyTrain: 0, denseFwd: 0, floor: 0, targetFwd: 0, targetTrain: 0 },
  };
  const d = denseState(w, false);
  denseForward(d);
  for (let b = 0; b < 2; b++) {
    for (let o = 0; o < 5; o++) {
      let want = d.bias[o];
      for (let i = 0; i < 3; i++) want += d.x[b * 3 + i] * d.w[o * 3 + i];
      assert.ok(Math.abs(d.y[b * 5 + o] - want) < 1e-5, `dense y[${b},${o}]`);
    }
  }
  const s = sparseState(w);
  sparseForward(s);
  for (let b = 0; b < 2; b++) {
    for (let o = 0; o < 5; o++) {
      let want = s.bias[o];
      for (let k = s.rowPtr[o]; k < s.rowPtr[o + 1]; k++) {
        want += s.values[k] * s.x[b * 3 + s.colIdx[k]];
      }
      assert.ok(Math.abs(s.y[b * 5 + o] - want) < 1e-5, `sparse y[${b},${o}]`);
    }
  }
});

Deno.test("compare table: GFLOP/s, % of ceiling and 'met' from the measured medians", async () => {
  // every timed run 1 ms: fwd 1 > 0.4 (target missed), train 1 <= 1.2
  const slow = await compare("1", ["--workload", "784", "--runs", "5", "--no-break-even"]);
  assert.ok(
    slow.includes(
      "| 784x2000 90% b64 | 15.6 / 55.6 | 1.00 | 0.16 | ≤ 0.4 / ≤ 1.2 | **1.00 / 1.00** " +
        "| 20.1 (16 %) / 60.2 (47 %) | 1.00 / 1.00 | no |",
    ),
    slow,
  );
  const fast = await compare("0.3", ["--workload", "784", "--runs", "5", "--no-break-even"]);
  assert.ok(
    fast.includes("| **0.300 / 0.300** | 66.9 (52 %) / 200.7 (157 %) | 0.300 / 0.300 | yes |"),
    fast,
  );
  // At the target itself (0.4 ms; the fake clock's float steps land a hair above it), the
  // verdict follows the printed 0.400: met.
  const edge = await compare("0.4", ["--workload", "784", "--runs", "5", "--no-break-even"]);
  assert.ok(
    edge.includes("| **0.400 / 0.400** |") && edge.includes("| 0.400 / 0.400 | yes |"),
    edge,
  );
  // only the 784 workload, one row
  assert.deepEqual(slow.split("\n").filter((l) => /^\| \d/.test(l)).length, 1);
});

Deno.test("compare footer: spread median vs the 1.25× busy threshold", async () => {
  const busy = await compare("1,1,1.3", ["--workload", "784", "--runs", "5", "--no-break-even"]);
  assert.match(busy, /median 1\.30×, largest 1\.30× — the machine was busy/);
  const quiet = await compare("1,1,1.2", ["--workload", "784", "--runs", "5", "--no-break-even"]);
  assert.match(quiet, /median 1\.20×, largest 1\.20× — repeatable\./);
  const few = await compare("1,1,1.3", ["--workload", "784", "--runs", "4", "--no-break-even"]);
  assert.doesNotMatch(few, /Timing spread/); // fewer than 5 runs: no spreads recorded
});

Deno.test("compare break-even: equal time is not 'beats dense', sweep stops there", async () => {
  const out = await compare("60", ["--workload", "784", "--runs", "5"]);
  assert.match(out, /dense GEMM fwd 60\.0 ms, train 60\.0 ms/);
  assert.deepEqual(out.split("\n").filter((l) => /^\| \d+ % \|/.test(l)).length, 1);
  assert.match(out, /\| 95 % \| [\d.]+ \| [\d.]+ \| as fast \|/);
  assert.match(out, /Break-even: sparse is not faster than dense at any sparsity of the sweep\./);
});

Deno.test("run_all: a partial run writes no bench/MNIST_RESULTS.md; Δ = ours − seed", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(cwd, "bench"));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "examples/run_all.ts"),
        "--models",
        "dense",
        "--epochs",
        "1",
        "--limit-train",
        "64",
      ],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.deepEqual(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual((await Array.fromAsync(Deno.readDir(join(cwd, "bench")))).length, 0);
    assert.match(text, /A partial run: not written to a file/);
    const row = text.split("\n").find((l) => l.startsWith("| dense |"))!;
    const c = row.split("|").map((x) => x.trim());
    // | dense | 1 | steps | acc | best | seed | delta | train | test | rss |
    assert.deepEqual(c[2], "1");
    assert.deepEqual(c[3], "1"); // 64 images / batch 64
    const [acc, best, seed, delta] = [c[4], c[5], c[6], c[7]].map(Number);
    assert.ok(best >= acc);
    assert.ok(Math.abs(delta - (acc - seed)) < 0.011, row);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
