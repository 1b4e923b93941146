/**
 * RigL / SET prune-and-grow: the schedule, option checks, the kernels' TS entry points, and
 * full layer updates checked against float64 TS references (dropped set, grown set, values,
 * optimizer state, chunked == unchunked, SET sampling, gradient accumulation).
 */
import assert from "node:assert/strict";
import { NativeError } from "../lib/errors.ts";
import { Generator } from "../lib/random.ts";
import { fromFloat32 } from "../lib/tensor.ts";
import { noGrad } from "../lib/autograd.ts";
import { sum } from "../lib/ops/reduce.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Adam } from "../lib/optim/adam.ts";
import { registerParameterState } from "../lib/optim/param_state.ts";
import {
  dropFraction,
  DYNAMIC_DEFAULTS,
  isUpdateStep,
  pruneAndGrow,
  resolveDynamicOptions,
  stepDynamicSparsity,
  type UpdateReport,
} from "../lib/sparsity/rigl.ts";
import { csrDropGrow, denseGradTopk, sampleAbsent, topk } from "../lib/sparsity/topk.ts";

// ---------------------------------------------------------------- references ----

/** Asserts that fn throws an instance of `cls` whose message matches `re`. */
// deno-lint-ignore no-explicit-any
function throwsWith(fn: () => unknown, cls: new (...args: any[]) => Error, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (re !== undefined) assert.match((err as Error).message, re);
    return true;
  });
}

/** Indices of the k best scores (ties: lower index), ascending: the TS reference of sl_topk. */
function refTopk(scores: ArrayLike<number>, k: number, smallest: boolean, abs: boolean): number[] {
  const key = (i: number) => {
    const v = abs ? Math.abs(scores[i]) : scores[i];
    return smallest ? -v : v;
  };
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => key(b) - key(a) || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

/** Small-integer data: dYᵀ·X is exact in float32, so rankings (and their ties) are unambiguous. */
function integerArray(gen: Generator, n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + gen.int(hi - lo + 1);
  return a;
}

/** Dense G = dyᵀ·x in float64, [nOut, nIn] row-major. */
function refDenseGrad(
  x: Float32Array,
  dy: Float32Array,
  batch: number,
  nIn: number,
  nOut: number,
): Float64Array {
  const g = new Float64Array(nOut * nIn);
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < nOut; o++) {
      const d = dy[b * nOut + o];
      for (let i = 0; i < nIn; i++) g[o * nIn + i] += d * x[b * nIn + i];
    }
  }
  return g;
}

/** (row, col) keys of a layer's connections, in CSR order. */
function connectionKeys(layer: SparseLinear): number[] {
  const p = layer.pattern;
  const keys: number[] = [];
  for (let o = 0; o < p.nRows; o++) {
    for (let k = p.hostRowPtr[o]; k < p.hostRowPtr[o + 1]; k++) {
      keys.push(o * p.nCols + p.hostColIdx[k]);
    }
  }
  return keys;
}

/** Runs forward + backward with dY = dy (so the dense gradient is exactly dyᵀ·x). */
function forwardBackward(layer: SparseLinear, x: Float32Array, dy: Float32Array, batch: number) {
  const input = fromFloat32(x, [batch, layer.inFeatures]);
  const y = layer.forward(input);
  y.backward(fromFloat32(dy, [batch, layer.outFeatures]));
}

/**
 * Checks one RigL update of `layer` against the references: `before` = connection keys and
 * values before, (x, dy) the batch. Returns the expected grown keys.
 */
function checkRiglUpdate(
  layer: SparseLinear,
  report: UpdateReport,
  before: { keys: number[]; values: Float32Array },
  x: Float32Array,
  dy: Float32Array,
  batch: number,
): void {
  const nIn = layer.inFeatures, nOut = layer.outFeatures;
  const nnz = before.keys.length;
  assert.equal(layer.nnz, nnz, "nnz stays constant");
  assert.equal(report.k, Math.floor(report.dropFraction * nnz));
  // Dropped: exactly the k smallest |w| (ties to the lower CSR position).
  const wantDrop = refTopk(before.values, report.k, true, true);
  assert.deepEqual(Array.from(report.dropped.index), wantDrop);
  assert.deepEqual(
    Array.from(report.dropped.rows, (r, j) => r * nIn + report.dropped.cols[j]),
    wantDrop.map((p) => before.keys[p]),
  );
  // Grown: exactly the top-k |G| of the float64 dense gradient outside the kept connections.
  const dropped = new Set(wantDrop.map((p) => before.keys[p]));
  const kept = new Set(before.keys.filter((key) => !dropped.has(key)));
  const g = refDenseGrad(x, dy, batch, nIn, nOut);
  const candidates: number[] = [];
  for (let q = 0; q < nOut * nIn; q++) if (!kept.has(q)) candidates.push(q);
  candidates.sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]) || a - b);
  const wantGrow = candidates.slice(0, report.k).sort((a, b) => a - b);
  assert.deepEqual(
    Array.from(report.grown.rows, (r, j) => r * nIn + report.grown.cols[j]),
    wantGrow,
  );
  // The new pattern is (old - dropped) + grown; values: kept and regrown keep theirs, new are 0.
  const want = new Set([...kept, ...wantGrow]);
  const after = connectionKeys(layer);
  assert.deepEqual(after, [...want].sort((a, b) => a - b));
  const oldValue = new Map(before.keys.map((key, p) => [key, before.values[p]]));
  const values = layer.weights.toArray();
  let regrown = 0;
  after.forEach((key, p) => {
    if (kept.has(key)) assert.equal(values[p], oldValue.get(key));
    else if (dropped.has(key)) {
      regrown++;
      assert.equal(values[p], oldValue.get(key), "a regrown connection keeps its weight");
    } else assert.equal(values[p], 0, "a new connection starts at 0");
  });
  assert.equal(report.regrown, regrown);
}

// ------------------------------------------------------------------ schedule ----

Deno.test("dropFraction follows α/2·(1 + cos(π t / T_end)), isUpdateStep t % ΔT == 0, t <= T_end", () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(dropFraction(0, 0.3, 1000), 0.3);
  close(dropFraction(250, 0.3, 1000), 0.15 * (1 + Math.SQRT1_2));
  close(dropFraction(500, 0.3, 1000), 0.15);
  close(dropFraction(750, 0.3, 1000), 0.15 * (1 - Math.SQRT1_2));
  close(dropFraction(1000, 0.3, 1000), 0);
  assert.equal(dropFraction(1001, 0.3, 1000), 0);
  close(dropFraction(6000, 0.1, 150000), 0.05 * (1 + Math.cos(Math.PI * 0.04)));
  assert.equal(isUpdateStep(6000, 6000, 150000), true);
  assert.equal(isUpdateStep(150000, 6000, 150000), true);
  assert.equal(isUpdateStep(156000, 6000, 150000), false);
  assert.equal(isUpdateStep(5999, 6000, 150000), false);
  assert.equal(isUpdateStep(0, 6000, 150000), false);
  assert.deepEqual(
    { ...DYNAMIC_DEFAULTS },
    { deltaT: 6000, tEnd: 150000, alpha: 0.1, maxSize: 1e8, growth: "rigl" },
  );
});

Deno.test("dynamic options: bad values are clear errors, and no layer is built", () => {
  const make = (o: Record<string, unknown>) => new SparseLinear(30, 10, { seed: 1, ...o });
  throwsWith(
    () => make({ dynamic: true, deltaT: 0 }),
    RangeError,
    /deltaT must be a positive integer.*got 0/,
  );
  throwsWith(() => make({ dynamic: true, deltaT: -5 }), RangeError, /deltaT/);
  throwsWith(() => make({ dynamic: true, deltaT: 2.5 }), RangeError, /deltaT/);
  throwsWith(
    () => make({ dynamic: true, tEnd: -1 }),
    RangeError,
    /tEnd must be a non-negative integer.*got -1/,
  );
  throwsWith(
    () => make({ dynamic: true, alpha: 1.5 }),
    RangeError,
    /alpha must be in \[0, 1\].*1\.5/,
  );
  throwsWith(() => make({ dynamic: true, alpha: -0.1 }), RangeError, /alpha/);
  throwsWith(() => make({ dynamic: true, alpha: NaN }), RangeError, /alpha/);
  throwsWith(() => make({ dynamic: true, alpha: "0.1" }), TypeError, /alpha must be a number/);
  throwsWith(
    () => make({ dynamic: true, maxSize: 29 }),
    RangeError,
    /maxSize = 29 cannot hold one row.*30/,
  );
  throwsWith(
    () => make({ dynamic: true, growth: "magic" }),
    RangeError,
    /growth must be "rigl" or "set"/,
  );
  throwsWith(() => make({ dynamic: "yes" }), TypeError, /dynamic must be a boolean/);
  throwsWith(() => make({ deltaT: 100 }), RangeError, /deltaT only applies to dynamic layers/);
  // SET never builds the dense gradient: maxSize does not constrain it.
  assert.equal(make({ dynamic: true, growth: "set", maxSize: 1 }).dynamicSparsity?.growth, "set");
  assert.equal(make({}).dynamicSparsity, null);
  assert.deepEqual(
    { ...resolveDynamicOptions({ dynamic: true }, 30)! },
    { ...DYNAMIC_DEFAULTS },
  );
});

// ----------------------------------------------------------- kernel wrappers ----

Deno.test("topk: exact, ties to the lower index, every mode, vs a reference", () => {
  const gen = new Generator(3);
  for (const n of [1, 9, 1000, 70001]) {
    const s = new Float32Array(n);
    for (let i = 0; i < n; i++) s[i] = (gen.int(41) - 20) / 4; // many ties, negatives
    for (const smallest of [false, true]) {
      for (const abs of [false, true]) {
        for (const k of [0, 1, Math.floor(n / 3), n]) {
          assert.deepEqual(Array.from(topk(s, k, { smallest, abs })), refTopk(s, k, smallest, abs));
        }
      }
    }
  }
  throwsWith(() => topk(new Float32Array([1, NaN]), 1), NativeError, /scores\[1\] is NaN/);
  throwsWith(() => topk(new Float32Array(3), 4), RangeError, /k = 4 exceeds/);
});

Deno.test("denseGradTopk: chunked == unchunked == float64 reference, for several maxSize", () => {
  const gen = new Generator(11);
  const nIn = 37, nOut = 23, batch = 6;
  const layer = new SparseLinear(nIn, nOut, { sparsity: 0.8, seed: 5 });
  const p = layer.pattern;
  const csr = { nRows: nOut, nCols: nIn, rowPtr: p.hostRowPtr, colIdx: p.hostColIdx };
  const x = integerArray(gen, batch * nIn, -3, 3), dy = integerArray(gen, batch * nOut, -2, 2);
  const g = refDenseGrad(x, dy, batch, nIn, nOut);
  const inPattern = new Set(connectionKeys(layer));
  const absent: number[] = [];
  for (let q = 0; q < nIn * nOut; q++) if (!inPattern.has(q)) absent.push(q);
  absent.sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]) || a - b);
  for (const k of [1, 17, 150]) {
    const want = absent.slice(0, k).sort((a, b) => a - b);
    for (const maxSize of [nIn, 2 * nIn + 1, 5 * nIn, nIn * nOut, 1e8]) {
      const got = denseGradTopk(csr, x, dy, batch, k, maxSize);
      assert.deepEqual(
        Array.from(got.rows, (r, j) => r * nIn + got.cols[j]),
        want,
        `maxSize ${maxSize}`,
      );
      assert.deepEqual(Array.from(got.grad), want.map((q) => g[q]));
    }
  }
  throwsWith(
    () => denseGradTopk(csr, x, dy, batch, 1, nIn - 1),
    RangeError,
    /cannot hold one row/,
  );
  throwsWith(
    () => denseGradTopk(csr, x, dy, batch, absent.length + 1, nIn),
    RangeError,
    /exceeds/,
  );
});

Deno.test("sampleAbsent: k distinct absent positions, seeded, even at 10^6 x 10^6", () => {
  const layer = new SparseLinear(40, 30, { sparsity: 0.5, seed: 2 });
  const p = layer.pattern;
  const csr = { nRows: 30, nCols: 40, rowPtr: p.hostRowPtr, colIdx: p.hostColIdx };
  const present = new Set(connectionKeys(layer));
  for (const k of [0, 1, 100, 599, 600]) {
    const s = sampleAbsent(csr, k, 77);
    const keys = Array.from(s.rows, (r, j) => r * 40 + s.cols[j]);
    assert.equal(keys.length, k);
    keys.forEach((q, j) => {
      assert.ok(!present.has(q), "an absent position");
      if (j > 0) assert.ok(q > keys[j - 1], "distinct, row-major");
    });
    assert.deepEqual(sampleAbsent(csr, k, 77), s, "deterministic for a seed");
  }
  assert.notDeepEqual(sampleAbsent(csr, 50, 1), sampleAbsent(csr, 50, 2));
  throwsWith(() => sampleAbsent(csr, 601, 1), RangeError, /exceeds/);
  // 10^6 x 10^6 with a 3-connection pattern: no dense anything.
  const n = 1_000_000;
  const rowPtr = new Int32Array(n + 1).fill(3);
  rowPtr[0] = 0;
  const big = sampleAbsent(
    { nRows: n, nCols: n, rowPtr, colIdx: new Int32Array([0, 7, n - 1]) },
    1000,
    5,
  );
  assert.equal(big.rows.length, 1000);
  for (let j = 0; j < 1000; j++) {
    assert.ok(!(big.rows[j] === 0 && [0, 7, n - 1].includes(big.cols[j])));
  }
});

Deno.test("csrDropGrow: rebuild and old -> new map; a grown kept connection is rejected", () => {
  // 2 x 4: row 0 = {0, 2}, row 1 = {1, 3}
  const csr = {
    nRows: 2,
    nCols: 4,
    rowPtr: new Int32Array([0, 2, 4]),
    colIdx: new Int32Array([0, 2, 1, 3]),
  };
  const values = new Float32Array([10, 20, 30, 40]);
  const r = csrDropGrow(csr, values, new Int32Array([2, 1]), {
    rows: new Int32Array([1, 0, 1]),
    cols: new Int32Array([1, 3, 0]),
  });
  assert.deepEqual(Array.from(r.rowPtr), [0, 2, 5]);
  assert.deepEqual(Array.from(r.colIdx), [0, 3, 0, 1, 3]);
  assert.deepEqual(Array.from(r.values!), [10, 0, 0, 30, 40]); // (1, 1) regrown keeps 30
  assert.deepEqual(Array.from(r.oldIndex), [0, -1, -1, 2, 3]);
  const fresh = csrDropGrow(csr, values, new Int32Array([2]), {
    rows: new Int32Array([1]),
    cols: new Int32Array([1]),
  }, false);
  assert.deepEqual(Array.from(fresh.oldIndex), [0, 1, -1, 3]);
  assert.deepEqual(Array.from(fresh.values!), [10, 20, 0, 40]);
  throwsWith(
    () =>
      csrDropGrow(csr, values, new Int32Array([0]), {
        rows: new Int32Array([1]),
        cols: new Int32Array([3]),
      }),
    NativeError,
    /grown position \(row 1, col 3\) is a kept connection/,
  );
  throwsWith(
    () =>
      csrDropGrow(csr, values, new Int32Array([1, 1]), {
        rows: new Int32Array(0),
        cols: new Int32Array(0),
      }),
    NativeError,
    /listed twice/,
  );
});

// -------------------------------------------------------------- layer updates ----

Deno.test("RigL update: nnz constant, drops the k smallest |w|, grows the dense-gradient top-k", () => {
  const gen = new Generator(21);
  const nIn = 13, nOut = 11, batch = 5;
  const layer = new SparseLinear(nIn, nOut, {
    sparsity: 0.7,
    seed: 4,
    dynamic: true,
    deltaT: 2,
    tEnd: 10,
    alpha: 0.5,
  });
  const dyn = layer.dynamicSparsity!;
  // Step 1 is not an update step: nothing recorded, nothing changes.
  forwardBackward(
    layer,
    integerArray(gen, batch * nIn, -3, 3),
    integerArray(gen, batch * nOut, -2, 2),
    batch,
  );
  const keys0 = connectionKeys(layer);
  assert.equal(dyn.step(), null);
  assert.deepEqual(connectionKeys(layer), keys0);
  // Step 2 updates with the batch of step 2.
  const x = integerArray(gen, batch * nIn, -3, 3), dy = integerArray(gen, batch * nOut, -2, 2);
  forwardBackward(layer, x, dy, batch);
  const before = { keys: connectionKeys(layer), values: layer.weights.toArray() };
  const report = dyn.step()!;
  assert.equal(report.step, 2);
  assert.equal(report.dropFraction, dropFraction(2, 0.5, 10));
  assert.ok(report.k > 0);
  checkRiglUpdate(layer, report, before, x, dy, batch);
  assert.equal(layer.weights.grad, null, "the old layout's gradient is cleared");
  assert.equal(dyn.stepCount, 2);

  // The bias is applied on (and after) the update step: forward == dense reference.
  const input = integerArray(gen, 3 * nIn, -3, 3);
  const y = noGrad(() => layer.forward(fromFloat32(input, [3, nIn]))).toArray();
  const w = layer.weight.toDense().toArray(), b = layer.bias!.toArray();
  for (let r = 0; r < 3; r++) {
    for (let o = 0; o < nOut; o++) {
      let s = b[o];
      for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * input[r * nIn + i];
      assert.ok(Math.abs(y[r * nOut + o] - s) < 1e-4);
    }
  }
});

Deno.test("RigL update: chunked == unchunked for several maxSize values", () => {
  const gen = new Generator(8);
  const nIn = 29, nOut = 17, batch = 4;
  const x = integerArray(gen, batch * nIn, -3, 3), dy = integerArray(gen, batch * nOut, -2, 2);
  let reference: number[] | null = null;
  for (const maxSize of [nIn, 3 * nIn + 2, 10 * nIn, nIn * nOut, 1e8]) {
    const layer = new SparseLinear(nIn, nOut, {
      sparsity: 0.75,
      seed: 6,
      dynamic: true,
      deltaT: 1,
      tEnd: 5,
      alpha: 0.4,
      maxSize,
    });
    forwardBackward(layer, x, dy, batch);
    const before = { keys: connectionKeys(layer), values: layer.weights.toArray() };
    const report = layer.dynamicSparsity!.step()!;
    checkRiglUpdate(layer, report, before, x, dy, batch);
    const after = connectionKeys(layer);
    if (reference === null) reference = after;
    else assert.deepEqual(after, reference, `maxSize ${maxSize}`);
  }
});

Deno.test("RigL update with SGD momentum: kept entries keep their momentum, new ones start at 0", () => {
  const gen = new Generator(31);
  const nIn = 16, nOut = 12, batch = 4;
  const layer = new SparseLinear(nIn, nOut, {
    sparsity: 0.6,
    seed: 9,
    dynamic: true,
    deltaT: 3,
    tEnd: 30,
    alpha: 0.3,
  });
  const opt = new SGD(layer, { lr: 0.05, momentum: 0.9 });
  const momentum = () => opt.stateDict()["state.0.momentum_buffer"].toArray();
  let x: Float32Array = new Float32Array(0), dy: Float32Array = new Float32Array(0);
  let checked = false;
  for (let it = 1; it <= 3; it++) {
    x = integerArray(gen, batch * nIn, -3, 3);
    dy = integerArray(gen, batch * nOut, -2, 2);
    forwardBackward(layer, x, dy, batch);
    const before = { keys: connectionKeys(layer), values: layer.weights.toArray() };
    const bufBefore = it > 1 ? momentum() : null;
    const report = layer.dynamicSparsity!.step(); // RigL's order: before optimizer.step()
    if (report !== null) {
      checkRiglUpdate(layer, report, before, x, dy, batch);
      const bufAfter = momentum();
      const oldPos = new Map(before.keys.map((key, p) => [key, p]));
      const droppedKeys = new Set(Array.from(report.dropped.index, (p) => before.keys[p]));
      connectionKeys(layer).forEach((key, p) => {
        const old = oldPos.get(key);
        if (old === undefined) assert.equal(bufAfter[p], 0, "new connection: zero momentum");
        else assert.equal(bufAfter[p], bufBefore![old], droppedKeys.has(key) ? "regrown" : "kept");
      });
      assert.ok(bufAfter.some((v) => v !== 0));
      checked = true;
    }
    opt.step(); // skips the weights on the update step (their gradient was consumed)
    opt.zeroGrad();
  }
  assert.ok(checked, "step 3 updated");
});

Deno.test("Adam moments and registered state tensors follow the update", () => {
  const gen = new Generator(5);
  const nIn = 10, nOut = 9, batch = 3;
  const layer = new SparseLinear(nIn, nOut, {
    sparsity: 0.5,
    seed: 1,
    dynamic: true,
    deltaT: 2,
    tEnd: 8,
    alpha: 0.6,
  });
  const opt = new Adam(layer, { lr: 0.01 });
  // A fake per-connection state: value = CSR position + 1 before the update.
  const fake = fromFloat32(Float32Array.from({ length: layer.nnz }, (_, p) => p + 1), [layer.nnz]);
  registerParameterState(layer.weights, fake);
  forwardBackward(
    layer,
    integerArray(gen, batch * nIn, -3, 3),
    integerArray(gen, batch * nOut, -2, 2),
    batch,
  );
  layer.dynamicSparsity!.step();
  opt.step();
  opt.zeroGrad();
  forwardBackward(
    layer,
    integerArray(gen, batch * nIn, -3, 3),
    integerArray(gen, batch * nOut, -2, 2),
    batch,
  );
  const beforeKeys = connectionKeys(layer);
  const state = opt.stateDict();
  const m = state["state.0.exp_avg"].toArray(), v = state["state.0.exp_avg_sq"].toArray();
  const report = layer.dynamicSparsity!.step()!;
  assert.ok(report.k > 0);
  const after = opt.stateDict();
  const m2 = after["state.0.exp_avg"].toArray(), v2 = after["state.0.exp_avg_sq"].toArray();
  const f2 = fake.toArray();
  const oldPos = new Map(beforeKeys.map((key, p) => [key, p]));
  connectionKeys(layer).forEach((key, p) => {
    const old = oldPos.get(key);
    assert.equal(m2[p], old === undefined ? 0 : m[old]);
    assert.equal(v2[p], old === undefined ? 0 : v[old]);
    assert.equal(f2[p], old === undefined ? 0 : old + 1);
  });
});

Deno.test("SET growth: k distinct positions outside the kept set, seeded, no gradient needed", () => {
  const make = () =>
    new SparseLinear(50, 40, {
      sparsity: 0.9,
      seed: 12,
      dynamic: true,
      growth: "set",
      deltaT: 1,
      tEnd: 4,
      alpha: 0.3,
    });
  const a = make(), b = make();
  const before = { keys: connectionKeys(a), values: a.weights.toArray() };
  const report = a.dynamicSparsity!.step()!; // no forward/backward at all
  assert.equal(a.nnz, before.keys.length);
  assert.equal(report.k, Math.floor(dropFraction(1, 0.3, 4) * before.keys.length));
  assert.deepEqual(Array.from(report.dropped.index), refTopk(before.values, report.k, true, true));
  const dropped = new Set(Array.from(report.dropped.index, (p) => before.keys[p]));
  const kept = new Set(before.keys.filter((key) => !dropped.has(key)));
  const grown = Array.from(report.grown.rows, (r, j) => r * 50 + report.grown.cols[j]);
  assert.equal(new Set(grown).size, report.k);
  for (const q of grown) assert.ok(!kept.has(q));
  assert.deepEqual(connectionKeys(a), [...new Set([...kept, ...grown])].sort((x, y) => x - y));
  b.dynamicSparsity!.step();
  assert.deepEqual(connectionKeys(b), connectionKeys(a), "same seed, same update");
});

Deno.test("gradient accumulation: micro-batches give the same update as one concatenated batch", () => {
  const gen = new Generator(17);
  const nIn = 12, nOut = 10;
  const x1 = integerArray(gen, 2 * nIn, -3, 3), dy1 = integerArray(gen, 2 * nOut, -2, 2);
  const x2 = integerArray(gen, 3 * nIn, -3, 3), dy2 = integerArray(gen, 3 * nOut, -2, 2);
  const opts = { sparsity: 0.7, seed: 3, dynamic: true, deltaT: 1, tEnd: 3, alpha: 0.5 } as const;
  const split = new SparseLinear(nIn, nOut, opts), whole = new SparseLinear(nIn, nOut, opts);
  forwardBackward(split, x1, dy1, 2);
  forwardBackward(split, x2, dy2, 3);
  noGrad(() => split.forward(fromFloat32(x1, [2, nIn]))); // a forward without backward: ignored
  const cat = (a: Float32Array, b: Float32Array) => {
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  forwardBackward(whole, cat(x1, x2), cat(dy1, dy2), 5);
  const before = { keys: connectionKeys(whole), values: whole.weights.toArray() };
  split.dynamicSparsity!.step();
  const report = whole.dynamicSparsity!.step()!;
  checkRiglUpdate(whole, report, before, cat(x1, x2), cat(dy1, dy2), 5);
  assert.deepEqual(connectionKeys(split), connectionKeys(whole));
});

Deno.test("two backward passes through one retained graph grow on the sum of their gradients", () => {
  const gen = new Generator(23);
  const nIn = 9, nOut = 7, batch = 3;
  const x = integerArray(gen, batch * nIn, -3, 3);
  const dy1 = integerArray(gen, batch * nOut, -2, 2), dy2 = integerArray(gen, batch * nOut, -2, 2);
  const opts = { sparsity: 0.6, seed: 4, dynamic: true, deltaT: 1, tEnd: 3, alpha: 0.6 } as const;
  const twice = new SparseLinear(nIn, nOut, opts), once = new SparseLinear(nIn, nOut, opts);
  const y = twice.forward(fromFloat32(x.slice(), [batch, nIn]));
  y.backward(fromFloat32(dy1, [batch, nOut]), { retainGraph: true });
  y.backward(fromFloat32(dy2, [batch, nOut]));
  const sum = dy1.map((v, i) => v + dy2[i]);
  forwardBackward(once, x, sum, batch);
  const before = { keys: connectionKeys(once), values: once.weights.toArray() };
  twice.dynamicSparsity!.step();
  const report = once.dynamicSparsity!.step()!;
  checkRiglUpdate(once, report, before, x, sum, batch);
  assert.deepEqual(connectionKeys(twice), connectionKeys(once));
});

Deno.test("a RigL update without this step's backward is rejected and changes nothing", () => {
  const layer = new SparseLinear(8, 6, {
    sparsity: 0.5,
    seed: 1,
    dynamic: true,
    deltaT: 1,
    tEnd: 5,
  });
  const keys = connectionKeys(layer);
  throwsWith(
    () => layer.dynamicSparsity!.step(),
    Error,
    /RigL update at step 1 needs the dense gradient/,
  );
  layer.eval(); // an eval-mode batch is not recorded
  forwardBackward(layer, new Float32Array(8), new Float32Array(6), 1);
  throwsWith(() => layer.dynamicSparsity!.step(), Error, /needs the dense gradient/);
  assert.equal(layer.dynamicSparsity!.stepCount, 0);
  assert.deepEqual(connectionKeys(layer), keys);
  // The whole-model helper checks every layer before stepping any.
  const model = new Sequential(
    new SparseLinear(8, 6, { seed: 2, dynamic: true, growth: "set", deltaT: 1, tEnd: 5 }),
    layer,
  );
  throwsWith(() => stepDynamicSparsity(model), Error, /Layer "1": RigL update/);
  const first = model.namedModules().find(([name]) => name === "0")![1] as SparseLinear;
  assert.equal(first.dynamicSparsity!.stepCount, 0);
});

Deno.test("stepDynamicSparsity is all or none when a later layer's update fails (NaN gradient)", () => {
  const opts = { dynamic: true, deltaT: 1, tEnd: 5, alpha: 0.5 } as const;
  const a = new SparseLinear(4, 4, { ...opts, sparsity: 0, seed: 1, bias: false });
  const b = new SparseLinear(4, 3, { ...opts, sparsity: 0.5, seed: 2 });
  a.weights.storage.write(new Float32Array(16).fill(1));
  const model = new Sequential(a, b);
  // a's outputs overflow to inf, so b's dense gradient dyᵀx holds 0 · inf = NaN.
  const y = model.forward(fromFloat32(new Float32Array(4).fill(3e38), [1, 4]));
  y.backward(fromFloat32(new Float32Array([0, 1, 0]), [1, 3]));
  const keys = connectionKeys(a), grad = a.weights.grad!.toArray();
  throwsWith(() => stepDynamicSparsity(model), Error, /Layer "1": .*NaN/);
  assert.equal(a.dynamicSparsity!.stepCount, 0);
  assert.equal(b.dynamicSparsity!.stepCount, 0);
  assert.deepEqual(connectionKeys(a), keys);
  assert.deepEqual(a.weights.grad!.toArray(), grad);
});

Deno.test("stepDynamicSparsity steps every dynamic layer of a model; α = 0 or t > tEnd change nothing", () => {
  const gen = new Generator(2);
  const a = new SparseLinear(10, 8, { seed: 1, dynamic: true, deltaT: 2, tEnd: 4, alpha: 0.5 });
  const b = new SparseLinear(8, 6, { seed: 2, dynamic: true, growth: "set", deltaT: 1, tEnd: 1 });
  const model = new Sequential(a, b);
  const reportsByStep: number[][] = [];
  for (let t = 1; t <= 6; t++) {
    const x = fromFloat32(integerArray(gen, 4 * 10, -2, 2), [4, 10]);
    model.forward(x).backward(fromFloat32(integerArray(gen, 4 * 6, -2, 2), [4, 6]));
    const reports = stepDynamicSparsity(model);
    reportsByStep.push([...reports.values()].map((r) => r.step));
    model.zeroGrad();
  }
  assert.deepEqual(reportsByStep, [[1], [2], [], [4], [], []]);
  const still = new SparseLinear(10, 8, {
    seed: 1,
    dynamic: true,
    deltaT: 1,
    tEnd: 5,
    alpha: 0,
    growth: "set",
  });
  const keys = connectionKeys(still);
  // An update with nothing to drop keeps the weight gradient (the optimizer still steps).
  sum(still.forward(fromFloat32(integerArray(gen, 3 * 10, -2, 2), [3, 10]))).backward();
  const grad = Array.from(still.weights.grad!.toArray());
  assert.equal(still.dynamicSparsity!.step()!.k, 0);
  assert.deepEqual(connectionKeys(still), keys);
  assert.deepEqual(Array.from(still.weights.grad?.toArray() ?? []), grad);
});

Deno.test("pruneAndGrow rejects a bad k and leaves the layer unchanged", () => {
  const layer = new SparseLinear(8, 6, { sparsity: 0.5, seed: 1 });
  const keys = connectionKeys(layer);
  throwsWith(
    () => pruneAndGrow(layer, layer.nnz + 1, { kind: "set", seed: 1 }),
    RangeError,
    /k must be an integer/,
  );
  throwsWith(() => pruneAndGrow(layer, 1.5, { kind: "set", seed: 1 }), RangeError);
  const x = new Float32Array(8), dy = new Float32Array(6);
  x[0] = NaN;
  dy[0] = 1;
  throwsWith(
    () => pruneAndGrow(layer, 2, { kind: "rigl", x, dy, batch: 1, maxSize: 100 }),
    NativeError,
    /NaN/,
  );
  assert.deepEqual(connectionKeys(layer), keys);
  // A NaN weight: named by position and connection, not as a top-k score.
  const w = layer.weights.data;
  w[3] = NaN;
  throwsWith(
    () => pruneAndGrow(layer, 2, { kind: "set", seed: 1 }),
    RangeError,
    new RegExp(
      `weights\\[3\\] \\(output ${layer.pattern.hostRowPtr.findIndex((v) => v > 3) - 1}, ` +
        `input ${layer.pattern.hostColIdx[3]}\\) is NaN; nothing was changed`,
    ),
  );
  assert.deepEqual(connectionKeys(layer), keys);
});

Deno.test("a SET run resumes from a checkpoint on a layer built with another seed", () => {
  const opts = { dynamic: true, growth: "set", deltaT: 2, tEnd: 8, alpha: 0.5 } as const;
  const gen = new Generator(3);
  const batches = Array.from({ length: 6 }, () => integerArray(gen, 4 * 10, -3, 3));
  const grads = Array.from({ length: 6 }, () => integerArray(gen, 4 * 8, -3, 3));
  const train = (layer: SparseLinear, from: number, to: number) => {
    for (let t = from; t < to; t++) {
      forwardBackward(layer, batches[t], grads[t], 4);
      layer.dynamicSparsity!.step();
      layer.weights.grad = null;
      if (layer.bias !== null) layer.bias.grad = null;
    }
  };
  const whole = new SparseLinear(10, 8, { ...opts, seed: 1 });
  train(whole, 0, 6);
  const first = new SparseLinear(10, 8, { ...opts, seed: 1 });
  train(first, 0, 3);
  // Another seed, as a layer built without one: the SET seed is not in the state dict.
  const resumed = new SparseLinear(10, 8, { ...opts, seed: 2 });
  resumed.loadStateDict(first.stateDict());
  resumed.dynamicSparsity!.stepCount = first.dynamicSparsity!.stepCount;
  resumed.dynamicSparsity!.seed = first.dynamicSparsity!.seed;
  train(resumed, 3, 6);
  assert.deepEqual(connectionKeys(resumed), connectionKeys(whole));
  throwsWith(
    () => (resumed.dynamicSparsity!.seed = 2 ** 32),
    RangeError,
    /seed must be an integer in \[0, 2\^32\)/,
  );
});

Deno.test("drop count: k = floor(f(t)·nnz) where f(t)·nnz is a whole number only up to float noise", () => {
  // f(4) = 0.3/2·(1 + cos(π/3)) = 0.225 and 0.225·120 = 27, but in doubles 26.999999999999996.
  const layer = new SparseLinear(20, 10, {
    sparsity: 0.4,
    seed: 3,
    dynamic: true,
    growth: "set",
    deltaT: 4,
    tEnd: 12,
    alpha: 0.3,
  });
  assert.equal(layer.nnz, 120);
  assert.ok(dropFraction(4, 0.3, 12) * 120 < 27, "the product this test is about");
  for (let t = 1; t < 4; t++) assert.equal(layer.dynamicSparsity!.step(), null);
  assert.equal(layer.dynamicSparsity!.step()!.k, 27);
});

// ---------------------------------- cases planted bugs showed untested (mutation testing) ----

Deno.test("SET draws from (seed, t): the same layer updated at two steps grows different places", () => {
  const grownAt = (t: number) => {
    const layer = new SparseLinear(40, 40, {
      sparsity: 0.9,
      seed: 1,
      dynamic: true,
      growth: "set",
      deltaT: 1,
      tEnd: 1000,
      alpha: 0.5,
    });
    layer.dynamicSparsity!.stepCount = t - 1;
    const report = layer.dynamicSparsity!.step()!;
    return Array.from(report.grown.rows, (r, j) => r * 40 + report.grown.cols[j]).join();
  };
  assert.notEqual(grownAt(2), grownAt(4));
});

Deno.test("regrown counts a dropped-and-regrown connection at CSR position 0 (RigL)", () => {
  // Connections (0,0) with w 0 and (0,1) with w 1: k = 1 drops (0,0); the dense gradient
  // dyᵀx with x = [1, 0, 0], dy = [1] is non-zero only at (0,0), so it grows back.
  const layer = new SparseLinear(3, 1, {
    connectivity: [[0, 0], [0, 1]],
    bias: false,
    dynamic: true,
    deltaT: 1,
    tEnd: 10,
    alpha: 1,
  });
  layer.weights.storage.write(new Float32Array([0, 1]));
  const x = new Float32Array([1, 0, 0]), dy = new Float32Array([1]);
  const report = pruneAndGrow(layer, 1, { kind: "rigl", x, dy, batch: 1, maxSize: 100 });
  assert.equal(report.regrown, 1);
});

Deno.test("SET grows among the positions not kept, so a dense layer can take an update", () => {
  const layer = new SparseLinear(4, 4, {
    sparsity: 0,
    seed: 2,
    dynamic: true,
    growth: "set",
    deltaT: 1,
    tEnd: 10,
    alpha: 0.5,
  });
  const report = layer.dynamicSparsity!.step()!;
  assert.ok(report.k > 0);
  assert.equal(report.regrown, report.k, "every grown connection is a just-dropped one");
});

Deno.test("RigL: tEnd 0 is allowed; an update needs this step's backward, not an older one", () => {
  new SparseLinear(10, 10, { dynamic: true, tEnd: 0 });
  const make = () =>
    new SparseLinear(8, 6, { sparsity: 0.5, seed: 1, dynamic: true, deltaT: 1, tEnd: 5 });
  const x = fromFloat32(new Float32Array(8).fill(1), [1, 8]);
  // A training forward without its backward.
  const a = make();
  a.forward(x);
  throwsWith(() => a.dynamicSparsity!.step(), Error, /needs the dense gradient/);
  // Batches recorded before the step counter was set belong to another step.
  const b = make();
  sum(b.forward(x)).backward();
  b.dynamicSparsity!.stepCount = 2;
  throwsWith(() => b.dynamicSparsity!.step(), Error, /needs the dense gradient/);
});
