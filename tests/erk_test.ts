import assert from "node:assert/strict";
import { erkSparsities, type LayerShape } from "../lib/sparsity/erk.ts";
import { Generator } from "../lib/random.ts";
import { assertClose, assertThrows } from "./_nn_reference.ts";

const prod = (s: LayerShape) => s.reduce((a, b) => a * b, 1);

/** Σ (1 − s_l)·N_l must equal the budget Σ (N_l − floor((1 − density)·N_l)) (RigL's count). */
function assertBudget(layers: LayerShape[], density: number, sparsities: number[]) {
  let kept = 0, budget = 0;
  layers.forEach((shape, i) => {
    const n = prod(shape);
    kept += (1 - sparsities[i]) * n;
    budget += n - Math.floor((1 - density) * n);
  });
  assert.ok(Math.abs(kept - budget) <= 1e-9 * budget, `kept ${kept}, budget ${budget}`);
}

Deno.test("erk: two linear layers, by hand", () => {
  // N = 5000, 1000; p = 150/5000 = 0.03, 110/1000 = 0.11; kept 500 + 100 = 600;
  // ε = 600 / (0.03·5000 + 0.11·1000) = 600 / 260.
  const layers = [[100, 50], [10, 100]];
  const s = erkSparsities(layers, 0.1);
  const eps = 600 / 260;
  assertClose(s, [1 - 0.03 * eps, 1 - 0.11 * eps], "sparsities", { rtol: 1e-12, atol: 1e-12 });
  assertBudget(layers, 0.1, s);
  // ER and ERK agree on 2-D shapes.
  assert.deepEqual(erkSparsities(layers, 0.1, { erk: false }), s);
});

Deno.test("erk: layers whose ε·p exceeds 1 become dense, one round at a time", () => {
  // p = 0.002, 0.101, 0.6; N = 1e6, 1e4, 20; density 0.5 keeps 505010.
  // Round 1: ε = 505010/3022, 0.6·ε > 1 -> layer 2 dense. Round 2: ε = 504990/3010,
  // 0.101·ε > 1 -> layer 1 dense. Round 3: ε = (500000 - 5000 - 10)/2000 = 247.495.
  const layers = [[1000, 1000], [10, 1000], [2, 10]];
  const s = erkSparsities(layers, 0.5);
  assertClose(s, [1 - 0.002 * 247.495, 0, 0], "sparsities", { rtol: 1e-12, atol: 1e-12 });
  assertBudget(layers, 0.5, s);
});

Deno.test("erk: kernels count in ERK, not in ER", () => {
  const layers = [[64, 3, 3, 3], [128, 64, 3, 3], [256, 128, 3, 3], [10, 256]];
  const erk = erkSparsities(layers, 0.1);
  const er = erkSparsities(layers, 0.1, { erk: false });
  assertBudget(layers, 0.1, erk);
  assertBudget(layers, 0.1, er);
  // Non-dense layers have density proportional to the raw probability.
  const rawErk = layers.map((s) => s.reduce((a, b) => a + b, 0) / prod(s));
  const rawEr = layers.map((s) => (s[0] + s[1]) / (s[0] * s[1]));
  for (const [result, raw] of [[erk, rawErk], [er, rawEr]] as const) {
    const ratios = result.map((v, i) => (1 - v) / raw[i]).filter((_, i) => result[i] > 0);
    assert.ok(ratios.length >= 2);
    for (const r of ratios) assert.ok(Math.abs(r - ratios[0]) <= 1e-9 * ratios[0]);
  }
  // The 3-channel first conv is the densest (made dense here by ERK).
  assert.equal(erk[0], 0);
  assert.notDeepEqual(erk, er);
});

Deno.test("erk: powerScale softens ERK; custom sparsities are kept and left out", () => {
  const layers = [[64, 3, 3, 3], [128, 64, 3, 3], [10, 128]];
  const hard = erkSparsities(layers, 0.2);
  const soft = erkSparsities(layers, 0.2, { powerScale: 0.5 });
  assertBudget(layers, 0.2, soft);
  // Softer: the spread between the sparsest and the densest sparse layer shrinks.
  assert.ok(Math.max(...soft) - Math.min(...soft) < Math.max(...hard) - Math.min(...hard));

  const custom = erkSparsities(layers, 0.2, { custom: [undefined, 0.99] });
  assert.equal(custom[1], 0.99);
  // The rest share the budget of their own layers only (RigL's custom_sparsity_map).
  assertBudget([layers[0], layers[2]], 0.2, [custom[0], custom[2]]);
});

Deno.test("erk: total kept connections match the density on random networks", () => {
  const gen = new Generator(5);
  for (let trial = 0; trial < 50; trial++) {
    const nLayers = 1 + gen.int(6);
    const layers: number[][] = [];
    for (let l = 0; l < nLayers; l++) {
      const shape = [1 + gen.int(500), 1 + gen.int(500)];
      if (gen.uniform() < 0.4) shape.push(1 + gen.int(5), 1 + gen.int(5));
      layers.push(shape);
    }
    const density = 0.01 + 0.98 * gen.uniform();
    const s = erkSparsities(layers, density);
    for (const v of s) assert.ok(v >= 0 && v < 1, `sparsity ${v}`);
    assertBudget(layers, density, s);
  }
  // Density 1: everything dense.
  assert.deepEqual(erkSparsities([[10, 20], [3, 4, 5, 5]], 1), [0, 0]);
});

Deno.test("erk: bad arguments are clear errors", () => {
  assertThrows(() => erkSparsities([[10, 10]], 0), RangeError, /density must be in \(0, 1\]/);
  assertThrows(() => erkSparsities([[10, 10]], 1.5), RangeError, /density must be in/);
  assertThrows(() => erkSparsities([], 0.5), TypeError, /non-empty array/);
  assertThrows(() => erkSparsities([[10]], 0.5), TypeError, /layers\[0\] must be a shape/);
  assertThrows(() => erkSparsities([[10, 0]], 0.5), RangeError, /positive integers/);
  assertThrows(
    () => erkSparsities([[10, 10]], 0.5, { custom: [2] }),
    RangeError,
    /custom\[0\] must be a sparsity in \[0, 1\]/,
  );
  assertThrows(
    () => erkSparsities([[10, 10]], 0.5, { powerScale: 0 }),
    RangeError,
    /powerScale must be a positive finite number/,
  );
});
