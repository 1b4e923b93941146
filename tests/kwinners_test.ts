import assert from "node:assert/strict";
import { ActivationSparsity, kWinners } from "../lib/nn/activation_sparsity.ts";
import { tensor } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { loadStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { fromFloat32, Tensor } from "../lib/tensor.ts";
import { assertClose, assertThrows, dot, numericGrad, randomArray } from "./_nn_reference.ts";

/**
 * Reference K-Winners in float64: winners by boosted value x·exp(β·(k/F − dc)) descending,
 * ties to the lower index; returns the output, the winner mask and the per-unit win counts.
 */
function reference(
  x: ArrayLike<number>,
  features: number,
  k: number,
  beta: number,
  dutyCycle: ArrayLike<number>,
) {
  const rows = x.length / features;
  const y = new Float64Array(x.length);
  const mask = new Uint8Array(x.length);
  const counts = new Float64Array(features);
  const factor = Array.from(
    { length: features },
    (_, j) => (beta > 0 ? Math.exp(Math.fround(beta) * (k / features - dutyCycle[j])) : 1),
  );
  for (let r = 0; r < rows; r++) {
    const key = (j: number) => {
      const v = x[r * features + j] * factor[j];
      return Number.isNaN(v) ? Infinity : v === Infinity ? Number.MAX_VALUE : v;
    };
    const order = Array.from({ length: features }, (_, j) => j).sort((a, b) =>
      key(b) - key(a) || a - b
    );
    for (const j of order.slice(0, k)) {
      y[r * features + j] = x[r * features + j];
      mask[r * features + j] = 1;
      counts[j]++;
    }
  }
  return { y, mask, counts, rows };
}

/** The duty-cycle update in float32 steps: dc ← (1 − α)·dc + α·counts/rows. */
function referenceDutyCycle(dc: Float32Array, counts: Float64Array, rows: number, alpha: number) {
  const a = Math.fround(alpha);
  return dc.map((v, j) => Math.fround((1 - a) * v + a * (counts[j] / rows)));
}

function winnersPerRow(y: Float32Array, features: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < y.length / features; r++) {
    out.push(y.subarray(r * features, (r + 1) * features).filter((v) => v !== 0).length);
  }
  return out;
}

Deno.test("kWinners: exactly k winners per row, raw values kept, boosted selection", () => {
  const rows = 16, features = 50, k = 7;
  const x = randomArray(rows * features, 1);
  const dc = randomArray(features, 2, 0, 1);
  const y = kWinners(fromFloat32(x, [rows, features]), k, {
    dutyCycle: fromFloat32(dc.slice(), [features]),
    boostStrength: 1.5,
  });
  const ref = reference(x, features, k, 1.5, dc);
  assert.deepEqual(winnersPerRow(y.data, features), new Array(rows).fill(k));
  assert.deepEqual(Array.from(y.data), Array.from(ref.y));
  // Boosting changed the winners compared with the plain top-k (the test would be weak if not).
  const plain = kWinners(fromFloat32(x, [rows, features]), k);
  assert.deepEqual(Array.from(plain.data), Array.from(reference(x, features, k, 0, dc).y));
  assert.notDeepEqual(Array.from(plain.data), Array.from(y.data));
});

Deno.test("kWinners: ties go to the lower index, NaN ranks first (as torch.topk)", () => {
  const y = kWinners(tensor([[1, 3, 3, 3, 2, 2], [0, 0, 0, 0, 0, 0]]), 2);
  assert.deepEqual(Array.from(y.data), [0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // NaN above +inf above every number: the NaN wins and propagates, as in nupic.torch.
  const nan = kWinners(tensor([[1, Infinity, 3, NaN, 2], [NaN, 0, NaN, 5, Infinity]]), 2);
  assert.deepEqual(Array.from(nan.data), [0, Infinity, 0, NaN, 0, NaN, 0, NaN, 0, 0]);
  const all = kWinners(tensor([[1, -2, 3]]), 3);
  assert.deepEqual(Array.from(all.data), [1, -2, 3]);
});

Deno.test("kWinners: gradient flows through the winners only (finite differences)", () => {
  const rows = 4, features = 12, k = 5, beta = 1.2;
  const x = randomArray(rows * features, 3);
  const dc = randomArray(features, 4, 0, 0.5);
  const w = randomArray(rows * features, 5);
  const xt = fromFloat32(x.slice(), [rows, features], true);
  const y = kWinners(xt, k, {
    dutyCycle: fromFloat32(dc.slice(), [features]),
    boostStrength: beta,
  });
  y.backward(fromFloat32(w.slice(), [rows, features]));
  const [numeric] = numericGrad(
    ([xs]) => dot(reference(xs, features, k, beta, dc).y, w),
    [x],
    1e-4,
  );
  assertClose(xt.grad!.data, numeric, "dx", { rtol: 1e-4, atol: 1e-4 });
  // The mask itself: w at winners, exactly 0 elsewhere.
  const { mask } = reference(x, features, k, beta, dc);
  assert.deepEqual(Array.from(xt.grad!.data), Array.from(w, (v, i) => (mask[i] ? v : 0)));
});

Deno.test("ActivationSparsity: duty cycle follows the TS reference over training steps", () => {
  const features = 40, alpha = 0.1, beta = 1.5;
  const layer = new ActivationSparsity({ actSparsity: 0.8, alpha, beta });
  assert.equal(layer.features, null);
  let dc = new Float32Array(features);
  for (let step = 0; step < 6; step++) {
    const rows = 3 + step; // different batch sizes: the update is per-sample fraction
    const x = randomArray(rows * features, 10 + step);
    const y = layer.forward(fromFloat32(x, [rows, features]));
    const k = 8; // floor(0.2 · 40)
    const ref = reference(x, features, k, beta, dc);
    assert.deepEqual(Array.from(y.data), Array.from(ref.y), `step ${step} output`);
    dc = referenceDutyCycle(dc, ref.counts, rows, alpha);
    assertClose(layer.dutyCycle!.data, dc, `step ${step} duty cycle`, { rtol: 0, atol: 1e-7 });
  }
  assert.equal(layer.k, 8);
  for (const v of layer.dutyCycle!.data) assert.ok(v >= 0 && v <= 1);
});

Deno.test("ActivationSparsity: eval mode uses kInference and changes no state", () => {
  const features = 20;
  const layer = new ActivationSparsity({ actSparsity: 0.75, kInferenceFactor: 1.5, features });
  layer.forward(fromFloat32(randomArray(8 * features, 20), [8, features]));
  const dcBefore = layer.dutyCycle!.data.slice();
  const boostBefore = layer.boostStrength;
  layer.eval();
  const x = randomArray(5 * features, 21);
  const y = layer.forward(fromFloat32(x, [5, features]));
  assert.equal(layer.k, 5);
  assert.equal(layer.kInference, 7); // floor(5 · 1.5)
  assert.deepEqual(winnersPerRow(y.data, features), [7, 7, 7, 7, 7]);
  // Boost uses the eval k for its target density, as nupic.
  assert.deepEqual(Array.from(y.data), Array.from(reference(x, features, 7, 1.5, dcBefore).y));
  assert.deepEqual(layer.dutyCycle!.data, dcBefore);
  assert.equal(layer.boostStrength, boostBefore);
  // kInference is clamped to F.
  const wide = new ActivationSparsity({ actSparsity: 0.1, kInferenceFactor: 3, features: 10 });
  assert.equal(wide.kInference, 10);
});

Deno.test("ActivationSparsity: any-rank input, winners over the last dimension", () => {
  const features = 9;
  const a = new ActivationSparsity({ actSparsity: 0.6, features });
  const b = new ActivationSparsity({ actSparsity: 0.6, features });
  const x = randomArray(2 * 3 * features, 30);
  const y3 = a.forward(fromFloat32(x.slice(), [2, 3, features]));
  const y2 = b.forward(fromFloat32(x.slice(), [6, features]));
  assert.deepEqual(y3.shape, [2, 3, features]);
  assert.deepEqual(Array.from(y3.data), Array.from(y2.data));
  assert.deepEqual(a.dutyCycle!.data, b.dutyCycle!.data);
  assert.deepEqual(winnersPerRow(y3.data, features), new Array(6).fill(3)); // floor(0.4 · 9)
  // 1-D input is one sample.
  const y1 = a.forward(fromFloat32(x.slice(0, features), [features]));
  assert.deepEqual(winnersPerRow(y1.data, features), [3]);
});

Deno.test("ActivationSparsity: boost strength decays per epoch and round-trips the state", () => {
  const layer = new ActivationSparsity({ beta: 2, boostStrengthFactor: 0.5 });
  layer.forward(fromFloat32(randomArray(4 * 30, 40), [4, 30]));
  layer.onEpochEnd();
  layer.onEpochEnd();
  assert.equal(layer.boostStrength, 0.5);
  const state = layer.stateDict();
  assert.deepEqual(Object.keys(state).sort(), ["boostStrength", "dutyCycle"]);

  // A fresh layer (F not yet known) takes F, the duty cycle and β from the state.
  const fresh = new ActivationSparsity({ beta: 2, boostStrengthFactor: 0.5 });
  fresh.loadStateDict(state);
  assert.equal(fresh.features, 30);
  assert.equal(fresh.boostStrength, 0.5);
  assert.deepEqual(fresh.dutyCycle!.data, layer.dutyCycle!.data);
  const x = fromFloat32(randomArray(3 * 30, 41), [3, 30]);
  layer.eval();
  fresh.eval();
  assert.deepEqual(fresh.forward(x).data, layer.forward(x).data);

  // An untouched lazy layer round-trips too ([0] placeholder), and bad states leave it intact.
  const lazy = new ActivationSparsity();
  new ActivationSparsity().loadStateDict(lazy.stateDict());
  assertThrows(
    () => layer.loadStateDict({ ...state, dutyCycle: fromFloat32(new Float32Array(7), [7]) }),
    Error,
    /dutyCycle" has shape \[7\], expected \[30\]/,
  );
  assertThrows(
    () =>
      layer.loadStateDict({ ...state, boostStrength: fromFloat32(new Float32Array([-1]), [1]) }),
    Error,
    /boostStrength" must be finite and >= 0, got -1/,
  );
  assertThrows(
    () => layer.loadStateDict({ ...state, boostStrength: tensor([3, 4]) }),
    Error,
    /boostStrength" must hold one value, got shape \[2\]/,
  );
  assert.equal(layer.boostStrength, 0.5);

  // β decays in double precision, as nupic's cached boost strength: 2 · 0.8 is 1.6.
  const decaying = new ActivationSparsity({ beta: 2, boostStrengthFactor: 0.8 });
  decaying.onEpochEnd();
  assert.equal(decaying.boostStrength, 1.6);
  assert.match(String(decaying), /boostStrength=1\.6,/);
});

Deno.test("ActivationSparsity: its state is optional, as the seed's PyTorch module has none", async () => {
  // The seed's model 784-2000-K-Winners-10: its PyTorch state dict has no K-Winners keys.
  const model = new Sequential(
    new SparseLinear(12, 8, { seed: 1 }),
    new ActivationSparsity({ actSparsity: 0.5 }),
    new SparseLinear(8, 3, { seed: 2 }),
  );
  model.forward(fromFloat32(randomArray(4 * 12, 50), [4, 12]));
  const kw = model.namedModules().find(([, m]) =>
    m instanceof ActivationSparsity
  )![1] as ActivationSparsity;
  const trained = kw.dutyCycle!.data.slice();
  const seedKeys = ["0.weights", "0.indices", "0.bias", "2.weights", "2.indices", "2.bias"];
  assert.deepEqual(Object.keys(model.stateDict({ optional: false })).sort(), seedKeys.sort());
  assert.deepEqual(
    Object.keys(model.stateDict()).sort(),
    [...seedKeys, "1.boostStrength", "1.dutyCycle"].sort(),
  );

  // Strict loading of a seed-shaped state dict keeps the duty cycle as it is...
  const seedState = model.stateDict({ optional: false });
  model.loadStateDict(seedState);
  assert.deepEqual(kw.dutyCycle!.data, trained);
  // ...while a missing required key is still an error.
  const { ["2.bias"]: _bias, ...noBias } = seedState;
  assertThrows(() => model.loadStateDict(noBias), Error, /missing key "2\.bias"/);

  // A file saved without optional state has only the seed's keys and loads back strictly; a
  // scalar boost strength (shape [], as PyTorch saves a 0-d buffer) is accepted.
  const dir = await Deno.makeTempDir();
  try {
    await saveStateDict(model, `${dir}/m.safetensors`, { optional: false });
    const file = await loadSafetensors(`${dir}/m.safetensors`);
    assert.deepEqual(Object.keys(file.tensors).sort(), seedKeys.sort());
    await loadStateDict(model, `${dir}/m.safetensors`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  kw.loadStateDict({ boostStrength: fromFloat32(new Float32Array([0.25]), []) });
  assert.equal(kw.boostStrength, 0.25);
});

Deno.test("ActivationSparsity: bad arguments name the argument and the range", () => {
  assertThrows(
    () => new ActivationSparsity({ actSparsity: 1 }),
    RangeError,
    /actSparsity must be in \[0, 1\), got 1/,
  );
  assertThrows(
    () => new ActivationSparsity({ actSparsity: -0.1 }),
    RangeError,
    /actSparsity must be in \[0, 1\)/,
  );
  assertThrows(
    () => new ActivationSparsity({ alpha: 1.5 }),
    RangeError,
    /alpha must be in \[0, 1\]/,
  );
  assertThrows(
    () => new ActivationSparsity({ beta: -1 }),
    RangeError,
    /beta must be a finite number >= 0/,
  );
  assertThrows(
    () => new ActivationSparsity({ kInferenceFactor: 0 }),
    RangeError,
    /kInferenceFactor must be a finite number > 0/,
  );
  assertThrows(
    () => new ActivationSparsity({ boostStrengthFactor: 2 }),
    RangeError,
    /boostStrengthFactor must be in \[0, 1\]/,
  );
  // k = 0: F too small for the sparsity, at construction or at the first input.
  assertThrows(
    () => new ActivationSparsity({ actSparsity: 0.65, features: 2 }),
    RangeError,
    /k = floor\(\(1 - actSparsity\) \* F\) = 0 .*actSparsity in \[0, 0\.5\] or at least 3 units/,
  );
  const layer = new ActivationSparsity({ actSparsity: 0.65 });
  assertThrows(() => layer.forward(tensor([[1, 2]])), RangeError, /= 0 winners for F = 2/);
  assert.equal(layer.features, null); // rejected input: no state change
  // Float noise does not lose a winner: (1 - 0.9) · 10 = 0.9999999999999998; a real fraction
  // of a winner is not forgiven at large F: floor(0.999 · 1100001) = 1098900.
  assert.equal(new ActivationSparsity({ actSparsity: 0.9, features: 10 }).k, 1);
  assert.equal(new ActivationSparsity({ actSparsity: 0.001, features: 1100001 }).k, 1098900);
  assert.equal(
    new ActivationSparsity({ actSparsity: 1e-6, features: 1e6, kInferenceFactor: 1.000001 })
      .kInference,
    999999,
  );
  // A β that float32 cannot hold is refused up front (it was accepted and broke every forward).
  assertThrows(
    () => new ActivationSparsity({ beta: 1e39 }),
    RangeError,
    /beta must be a finite number >= 0, got 1e\+39 \(beyond float32's largest/,
  );
  assertThrows(
    () => kWinners(tensor([[1, 2]]), 1, { dutyCycle: tensor([0, 0]), boostStrength: 1e39 }),
    RangeError,
    /boostStrength must be a finite number >= 0, got 1e\+39 \(beyond float32/,
  );
  // Wrong kinds are TypeErrors naming the kind (a RangeError quoting "0.5" misled).
  for (const key of ["actSparsity", "alpha", "beta", "kInferenceFactor", "features"]) {
    assertThrows(
      () => new ActivationSparsity({ [key]: "0.5" }),
      TypeError,
      new RegExp(`${key} must be a number.*, got the string "0\\.5"`),
    );
  }
  assertThrows(() => kWinners(tensor([[1, 2]]), "1" as never), TypeError, /k must be a number/);
  layer.forward(tensor([[1, 2, 3, 4, 5, 6]]));
  assertThrows(() => layer.forward(tensor([[1, 2, 3]])), ShapeError, /has 6 units/);
  assertThrows(() => layer.forward(tensor(1)), ShapeError, /at least one dimension/);
  assertThrows(() => kWinners(tensor([[1, 2]]), 3), RangeError, /k must be an integer in \[1, 2\]/);
  assertThrows(
    () => kWinners(tensor([[1, 2]]), 1, { boostStrength: 1 }),
    TypeError,
    /needs a dutyCycle tensor/,
  );
  assertThrows(
    () => kWinners(tensor([[1, 2]]), 1, { dutyCycle: tensor([0, 0, 0]), boostStrength: 1 }),
    ShapeError,
    /dutyCycle has shape \[3\], expected \[2\]/,
  );
});

Deno.test("kWinners: empty batch is fine and touches nothing", () => {
  const dc = fromFloat32(new Float32Array([0.25, 0.5]), [2]);
  const y = kWinners(new Tensor(fromFloat32(new Float32Array(0), [0, 2]).storage, [0, 2]), 1, {
    dutyCycle: dc,
    boostStrength: 1,
    dutyCycleRate: 0.5,
  });
  assert.deepEqual(y.shape, [0, 2]);
  assert.deepEqual(Array.from(dc.data), [0.25, 0.5]);
});

Deno.test("kWinners: a large boost strength ranks like the exact boosted values", () => {
  // β·k/F = 3000/3 = 1000: exp(β·(k/F − dc)) overflows a double, yet the ranking is defined.
  // Exact boosted values, as log|x| + β·(k/F − dc) with the constant β·k/F left out:
  // unit 1: log 0.5 = −0.69, unit 2: log 2 − 3000·0.0005 = −0.81, unit 0: log 0.1 = −2.30,
  // unit 3: log 3 − 3000·0.002 = −4.90, then the zero (unit 4) and the negative (unit 5).
  const dutyCycle = fromFloat32(new Float32Array([0, 0, 0.0005, 0.002, 0, 0]), [6]);
  const x = tensor([[0.1, 0.5, 2, 3, 0, -1]]);
  const y = kWinners(x, 2, { dutyCycle, boostStrength: 3000 });
  assert.deepEqual(Array.from(y.data), [0, 0.5, 2, 0, 0, 0]);
  const y4 = kWinners(x, 4, { dutyCycle, boostStrength: 3000 });
  assert.deepEqual(Array.from(y4.data), [Math.fround(0.1), 0.5, 2, 3, 0, 0]);
  // A fresh layer (every duty cycle 0) boosts every unit alike: its winners are the plain top-k.
  const layer = new ActivationSparsity({ actSparsity: 0.5, beta: 5000 });
  const z = layer.forward(tensor([[0.3, 0, 0.9, -2]]));
  assert.deepEqual(Array.from(z.data), [Math.fround(0.3), 0, Math.fround(0.9), 0]);
});

// ---------------------------------- cases planted bugs showed untested (mutation testing) ----

Deno.test("ActivationSparsity: documented defaults; the forward uses the decayed boost strength", () => {
  const a = new ActivationSparsity({ features: 100 });
  assert.deepEqual([a.actSparsity, a.alpha, a.beta, a.k], [0.65, 0.1, 1.5, 35]);
  // beta 4, decayed by 0.25 at the epoch's end: the eval forward boosts with 1.
  const F = 8;
  const layer = new ActivationSparsity({
    actSparsity: 0.5,
    beta: 4,
    boostStrengthFactor: 0.25,
    features: F,
  });
  const duty = new Float32Array([0, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6]);
  layer.loadStateDict({
    dutyCycle: fromFloat32(duty.slice(), [F]),
    boostStrength: tensor([4]),
  });
  layer.onEpochEnd();
  layer.eval();
  const x = tensor([[0.5, 1.0, 0.45, 0.95, 0.4, 0.9, 0.35, 0.85]]);
  const want = kWinners(x, layer.kInference!, {
    dutyCycle: fromFloat32(duty.slice(), [F]),
    boostStrength: 1,
  });
  assert.deepEqual(Array.from(layer.forward(x).data), Array.from(want.data));
});

Deno.test("K-Winners: a duty-cycle rate or a loaded duty cycle above 1 is refused", () => {
  assertThrows(
    () =>
      kWinners(tensor([[1, 1, 1, 1]]), 2, { dutyCycle: tensor([0, 0, 0, 0]), dutyCycleRate: 1.5 }),
    RangeError,
  );
  const layer = new ActivationSparsity({ features: 4 });
  assertThrows(
    () =>
      layer.loadStateDict({
        dutyCycle: tensor([0, 0, 0, 1.5]),
        boostStrength: tensor([1.5]),
      }),
    Error,
    /is not a duty cycle/,
  );
});
