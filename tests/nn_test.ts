import assert from "node:assert/strict";
import { noGrad } from "../lib/autograd.ts";
import { cpuBackend, releasePooledMemory } from "../lib/backend/cpu.ts";
import { ones, randn, tensor, zeros } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { ReLU, Sigmoid, Tanh } from "../lib/nn/activations.ts";
import { Dropout, dropout } from "../lib/nn/dropout.ts";
import { Flatten, flatten } from "../lib/nn/flatten.ts";
import { LayerNorm, layerNorm } from "../lib/nn/layer_norm.ts";
import { Linear, linear } from "../lib/nn/linear.ts";
import { mseLoss } from "../lib/nn/losses.ts";
import { ScaleShift, scaleShift } from "../lib/nn/scale_shift.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { Module, type StateDict } from "../lib/nn/module.ts";
import { RepeatInterleave, repeatInterleave } from "../lib/nn/repeat_interleave.ts";
import { GroupSum, groupSum } from "../lib/nn/group_sum.ts";
import { sum } from "../lib/ops/reduce.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { cosineSchedule, stepSchedule } from "../lib/optim/schedule.ts";
import { relu } from "../lib/ops/activation.ts";
import { fromFloat32, shapeString, type Tensor } from "../lib/tensor.ts";
import { assertClose, assertThrows, randomArray } from "./_nn_reference.ts";
import { gradcheck } from "./_gradcheck.ts";

// ------------------------------------------------------------------------------ LayerNorm ----

/** Float64 LayerNorm over the last n elements of each row. */
function layerNormRef(
  x: ArrayLike<number>,
  n: number,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  eps = 1e-5,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / n; r++) {
    let mu = 0, v = 0;
    for (let j = 0; j < n; j++) mu += x[r * n + j];
    mu /= n;
    for (let j = 0; j < n; j++) v += (x[r * n + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / n + eps);
    for (let j = 0; j < n; j++) {
      out.push((x[r * n + j] - mu) * rs * (gamma?.[j] ?? 1) + (beta?.[j] ?? 0));
    }
  }
  return out;
}

Deno.test("layerNorm matches a float64 reference and finite differences", () => {
  for (
    const [shape, norm] of [[[1, 1], [1]], [[4, 6], [6]], [[2, 3, 5], [5]], [[2, 3, 4], [3, 4]]]
  ) {
    const n = norm.reduce((a, b) => a * b, 1);
    const size = shape.reduce((a, b) => a * b, 1);
    const x = fromFloat32(randomArray(size, size, -2, 3), shape, true);
    const g = fromFloat32(randomArray(n, n + 1, 0.5, 1.5), norm, true);
    const b = fromFloat32(randomArray(n, n + 2, -0.5, 0.5), norm, true);
    assert.deepEqual(layerNorm(x, norm, g, b).shape, shape);
    gradcheck((xx, gg, bb) => layerNorm(xx, norm, gg, bb), [x, g, b], {
      reference: ([xx, gg, bb]) => layerNormRef(xx, n, gg, bb),
      name: `layerNorm ${shapeString(shape)} over ${shapeString(norm)}`,
    });
  }
});

Deno.test("layerNorm with a fused ReLU is relu(layerNorm), bit for bit, forward and backward", () => {
  for (
    const [rows, n, affine] of [[3, 7, "both"], [4, 30000, "both"], [2, 50, "weight"], [
      5,
      9,
      "none",
    ]] as const
  ) {
    const xs = randomArray(rows * n, n, -2, 3);
    const make = () => {
      const x = fromFloat32(xs.slice(), [rows, n], true);
      const g = affine === "none" ? null : fromFloat32(randomArray(n, n + 1, -1, 1.5), [n], true);
      const b = affine === "both" ? fromFloat32(randomArray(n, n + 2, -0.5, 0.5), [n], true) : null;
      return [x, g, b] as const;
    };
    const w = fromFloat32(randomArray(rows * n, n + 3, -1, 1), [rows, n]);
    const [x1, g1, b1] = make();
    const fused = layerNorm(x1, n, g1, b1, 1e-5, "relu");
    fused.backward(w);
    const [x2, g2, b2] = make();
    const plain = relu(layerNorm(x2, n, g2, b2));
    plain.backward(w);
    const what = `${rows}x${n} affine ${affine}`;
    assert.ok(fused.data.some((v) => v === 0) && fused.data.some((v) => v > 0), what);
    assert.deepEqual(fused.data, plain.data, `output ${what}`);
    assert.deepEqual(x1.grad!.data, x2.grad!.data, `dx ${what}`);
    if (g1) assert.deepEqual(g1.grad!.data, g2!.grad!.data, `dweight ${what}`);
    if (b1) assert.deepEqual(b1.grad!.data, b2!.grad!.data, `dbias ${what}`);
  }
  // Against finite differences of a float64 relu(LayerNorm) (inputs away from the kink).
  const x = fromFloat32(randomArray(24, 7, -2, 3), [4, 6], true);
  const g = fromFloat32(randomArray(6, 8, 0.5, 1.5), [6], true);
  const b = fromFloat32(randomArray(6, 9, -0.5, 0.5), [6], true);
  gradcheck((xx, gg, bb) => layerNorm(xx, 6, gg, bb, 1e-5, "relu"), [x, g, b], {
    reference: ([xx, gg, bb]) => layerNormRef(xx, 6, gg, bb).map((v) => Math.max(v, 0)),
    name: "layerNorm + relu [4, 6]",
  });
  // Non-finite values: relu(NaN) is NaN (as PyTorch) and its gradient passes, -inf is cut.
  const n = 6;
  const xs = randomArray(3 * n, 10, -2, 3);
  xs[2] = NaN; // row 0 normalises to NaN throughout
  const make = () => {
    const xx = fromFloat32(xs.slice(), [3, n], true);
    const gg = fromFloat32(Float32Array.from([1, NaN, 1, 1, 1, 1]), [n], true);
    const bb = fromFloat32(Float32Array.from([0, 0, 0, -Infinity, Infinity, 0]), [n], true);
    return [xx, gg, bb] as const;
  };
  const dy = fromFloat32(randomArray(3 * n, 11, -1, 1), [3, n]);
  const [x1, g1, b1] = make();
  const fused = layerNorm(x1, n, g1, b1, 1e-5, "relu");
  fused.backward(dy);
  const [x2, g2, b2] = make();
  const plain = relu(layerNorm(x2, n, g2, b2));
  plain.backward(dy);
  assert.ok(Number.isNaN(fused.data[0]) && Number.isNaN(fused.data[n + 1]), "NaN propagates");
  assert.equal(fused.data[n + 3], 0, "-inf is cut");
  assert.equal(fused.data[n + 4], Infinity, "+inf passes");
  assert.deepEqual(fused.data, plain.data, "non-finite output");
  assert.deepEqual(x1.grad!.data, x2.grad!.data, "non-finite dx");
  assert.deepEqual(g1.grad!.data, g2.grad!.data, "non-finite dweight");
  assert.deepEqual(b1.grad!.data, b2.grad!.data, "non-finite dbias");

  const ln = new LayerNorm(6, { activation: "relu" });
  assert.equal(
    ln.toString(),
    "LayerNorm([6], eps=0.00001, elementwiseAffine=true, activation=relu)",
  );
  assert.deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
  assert.ok(ln.forward(x).data.every((v) => v >= 0));
});

Deno.test("LayerNorm module: PyTorch names, no-affine mode, eval without saved statistics", () => {
  const ln = new LayerNorm(6);
  assert.deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
  assert.deepEqual(Array.from(ln.weight!.data), [1, 1, 1, 1, 1, 1]);
  const xs = randomArray(12, 3, -1, 1);
  const x = fromFloat32(xs.slice(), [2, 6], true);
  const y = ln.forward(x);
  assertClose(y.data, layerNormRef(xs, 6, null, null), "identity affine");
  y.backward(ones([2, 6]));
  // sum(y) is constant in x (zero mean rows): its gradient vanishes.
  assertClose(x.grad!.data, new Float32Array(12), "dx of sum", { atol: 1e-5 });
  assertClose(ln.bias!.grad!.data, [2, 2, 2, 2, 2, 2], "dbias");

  const plain = new LayerNorm([6], { elementwiseAffine: false, eps: 1e-3 });
  assert.deepEqual(plain.parameters(), []);
  assertClose(plain.forward(x).data, layerNormRef(xs, 6, null, null, 1e-3), "no affine");
  const noBias = new LayerNorm(6, { bias: false });
  assert.deepEqual(Object.keys(noBias.stateDict()), ["weight"]);

  const out = noGrad(() => ln.forward(x));
  assert.equal(out.requiresGrad, false);
});

Deno.test("layerNorm rejects bad shapes and options", () => {
  assertThrows(
    () => layerNorm(zeros([2, 5]), [4], null, null),
    ShapeError,
    /input has shape \[2, 5\], but its trailing dimensions must be the normalized shape \[4\]/,
  );
  assertThrows(
    () => layerNorm(zeros([2, 4]), 4, zeros([3]), null),
    ShapeError,
    /weight has shape \[3\], expected \[4\]/,
  );
  assertThrows(() => new LayerNorm(0), RangeError, /normalizedShape must hold positive integers/);
  assertThrows(() => new LayerNorm(4, { eps: -1 }), RangeError, /eps must be a finite number/);
  assertThrows(() => new LayerNorm(10).forward(zeros([3, 4])), ShapeError, /normalized shape/);
  assertThrows(
    () => layerNorm(zeros([2, 4]), 4, null, null, 1e-5, "gelu" as "relu"),
    TypeError,
    /layerNorm\(\) activation must be "none" or "relu", got "gelu"/,
  );
  assertThrows(
    () => new LayerNorm(4, { activation: "tanh" as "relu" }),
    TypeError,
    /LayerNorm activation must be "none" or "relu", got "tanh"/,
  );
});

// -------------------------------------------------------------------------------- Linear ----

/** Float64 x · Wᵀ + b. */
function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  nIn: number,
  nOut: number,
): number[] {
  const rows = x.length / nIn;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < nOut; o++) {
      let s = b?.[o] ?? 0;
      for (let i = 0; i < nIn; i++) s += x[r * nIn + i] * w[o * nIn + i];
      out.push(s);
    }
  }
  return out;
}

Deno.test("linear matches a float64 reference and finite differences", () => {
  const cases = [[[1, 3], 2, true], [[5, 4], 3, false], [[2, 3, 6], 5, true]] as const;
  for (const [xShape, nOut, withBias] of cases) {
    const nIn = xShape[xShape.length - 1];
    const size = xShape.reduce((a: number, b: number) => a * b, 1);
    const x = fromFloat32(randomArray(size, 1), xShape, true);
    const w = fromFloat32(randomArray(nOut * nIn, 2), [nOut, nIn], true);
    const b = fromFloat32(randomArray(nOut, 3), [nOut], true);
    assert.deepEqual(linear(x, w, b).shape, [...xShape.slice(0, -1), nOut]);
    const name = `linear ${shapeString(xShape)} -> ${nOut}`;
    if (withBias) {
      gradcheck((xx, ww, bb) => linear(xx, ww, bb), [x, w, b], {
        reference: ([xx, ww, bb]) => linearRef(xx, ww, bb, nIn, nOut),
        name,
      });
    } else {
      gradcheck((xx, ww) => linear(xx, ww), [x, w], {
        reference: ([xx, ww]) => linearRef(xx, ww, null, nIn, nOut),
        name,
      });
    }
  }
});

Deno.test("linear writes every entry of its outputs: reused memory full of NaN does not leak in", () => {
  // Its outputs and gradients come from the CPU pool without zeroing (sl_gemm with beta 0
  // overwrites): shapes that run as GEMM, as GEMV (one row, one input) and with no terms.
  for (const [rows, nIn, nOut] of [[4, 5, 3], [1, 6, 4], [3, 1, 2], [2, 0, 3]]) {
    const run = (poisoned: boolean) => {
      releasePooledMemory();
      if (poisoned) {
        for (const length of [rows * nOut, rows * nIn, nOut * nIn, nOut]) {
          if (length > 0) {
            cpuBackend.recycle(fromFloat32(new Float32Array(length).fill(NaN), [length]).storage);
          }
        }
      }
      const x = fromFloat32(randomArray(rows * nIn, 4), [rows, nIn], true);
      const w = fromFloat32(randomArray(nOut * nIn, 5), [nOut, nIn], true);
      const y = linear(x, w, null);
      const out = Array.from(y.toArray());
      sum(y).backward();
      const grads = [...x.grad?.toArray() ?? [], ...w.grad?.toArray() ?? []];
      releasePooledMemory();
      return [...out, ...grads];
    };
    const clean = run(false);
    assert.ok(clean.every(Number.isFinite), `${rows}x${nIn} -> ${nOut}`);
    assert.deepEqual(run(true), clean, `${rows}x${nIn} -> ${nOut} from NaN-filled memory`);
  }
});

Deno.test("Linear: PyTorch init bound, names, seeding and shape errors", () => {
  const fc = new Linear(100, 30, { seed: 5 });
  assert.deepEqual(Object.keys(fc.stateDict()), ["weight", "bias"]);
  assert.deepEqual(fc.weight.shape, [30, 100]);
  const bound = 1 / Math.sqrt(100);
  assert.ok(fc.weight.data.every((v) => Math.abs(v) <= bound));
  assert.ok(fc.bias!.data.every((v) => Math.abs(v) <= bound));
  // Spread over the interval, not a constant.
  assert.ok(
    Math.max(...fc.weight.data) > 0.9 * bound && Math.min(...fc.weight.data) < -0.9 * bound,
  );
  assert.deepEqual(new Linear(100, 30, { seed: 5 }).weight.data, fc.weight.data);
  assert.equal(new Linear(3, 2, { bias: false }).bias, null);
  assertThrows(
    () => fc.forward(zeros([4, 99])),
    ShapeError,
    /input has shape \[4, 99\], but its last dimension must be the number of input features, 100/,
  );
  assertThrows(() => new Linear(-1, 3), RangeError, /inFeatures must be an integer/);
});

// ------------------------------------------------------------------- activations, flatten ----

Deno.test("activations: forward and gradient vs references", () => {
  const xs = new Float32Array([-2, -0.5, 0, 0.5, 3]);
  const x = fromFloat32(xs.slice(), [5], true);
  const y = new ReLU().forward(x);
  assert.deepEqual(Array.from(y.data), [0, 0, 0, 0.5, 3]);
  y.backward(ones([5]));
  assert.deepEqual(Array.from(x.grad!.data), [0, 0, 0, 1, 1]);
  for (
    const [Cls, f] of [[Sigmoid, (v: number) => 1 / (1 + Math.exp(-v))], [Tanh, Math.tanh]] as const
  ) {
    const xi = fromFloat32(xs.slice(), [5], true);
    gradcheck((v) => new Cls().forward(v), [xi], {
      reference: ([v]) => v.map(f),
      name: Cls.name,
    });
  }
  assert.equal(String(new ReLU()), "ReLU()");
});

Deno.test("flatten merges dimensions without copying and routes the gradient back", () => {
  const x = fromFloat32(randomArray(2 * 3 * 4 * 5, 1), [2, 3, 4, 5], true);
  assert.deepEqual(new Flatten().forward(x).shape, [2, 60]);
  assert.deepEqual(flatten(x, 0).shape, [120]);
  assert.deepEqual(flatten(x, 1, 2).shape, [2, 12, 5]);
  assert.deepEqual(flatten(x, -2).shape, [2, 3, 20]);
  const y = flatten(x);
  assert.equal(y.storage, x.storage);
  const w = randomArray(120, 2);
  y.backward(fromFloat32(w, [2, 60]));
  assert.deepEqual(x.grad!.shape, [2, 3, 4, 5]);
  assert.deepEqual(x.grad!.data, w);
  assertThrows(() => flatten(x, 4), RangeError, /startDim 4 is outside \[-4, 3\]/);
  assertThrows(() => flatten(x, 2, 1), RangeError, /startDim 2 comes after endDim 1/);
});

// ------------------------------------------------------------------------------- Dropout ----

Deno.test("dropout: inverted scaling, seeded masks, gradient through the same mask", () => {
  const n = 20000, p = 0.3;
  const x = fromFloat32(new Float32Array(n).fill(2), [n], true);
  const y = dropout(x, p, { seed: 11 });
  const kept = y.data.filter((v) => v !== 0);
  assert.ok(Math.abs(1 - kept.length / n - p) < 0.02, `dropped fraction ${1 - kept.length / n}`);
  assertClose(kept, new Float32Array(kept.length).fill(2 / (1 - p)), "kept values");
  assert.deepEqual(dropout(x, p, { seed: 11 }).data, y.data);
  assert.notDeepEqual(dropout(x, p, { seed: 12 }).data, y.data);
  y.backward(ones([n]));
  assert.deepEqual(Array.from(x.grad!.data), Array.from(y.data, (v) => v / 2));
  assert.equal(dropout(x, p, { training: false }), x);
  assert.equal(dropout(x, 0), x);
  assert.ok(dropout(x, 1, { seed: 1 }).data.every((v) => v === 0));
  // A dropped NaN or inf is NaN (PyTorch multiplies by the 0/1 mask), a kept one is scaled.
  const odd = tensor([NaN, Infinity, -Infinity, NaN, Infinity, -Infinity], [6]);
  assert.ok(dropout(odd, 1, { seed: 1 }).data.every((v) => Number.isNaN(v)));
  const half = dropout(odd, 0.5, { seed: 3 }).data;
  for (let i = 0; i < 6; i++) {
    assert.ok(Number.isNaN(half[i]) || half[i] === odd.data[i], `element ${i}: ${half[i]}`);
  }
  assertThrows(() => dropout(x, 1.5), RangeError, /p must be a probability in \[0, 1\], got 1.5/);
});

Deno.test("Dropout module: identity in eval mode, reproducible from its seed", () => {
  const a = new Dropout(0.5, { seed: 3 }), b = new Dropout(0.5, { seed: 3 });
  const x = ones([8, 16]);
  const first = a.forward(x);
  assert.deepEqual(first.data, b.forward(x).data);
  assert.notDeepEqual(a.forward(x).data, first.data); // a fresh mask each call
  a.eval();
  assert.equal(a.forward(x), x);
  assertThrows(() => new Dropout(-0.1), RangeError, /Dropout p must be a probability/);
  // Not numbers: TypeErrors that show the value as what it is.
  assertThrows(() => new Dropout("0.5" as unknown as number), TypeError, /got the string "0\.5"/);
  assertThrows(
    () => new Dropout({ p: 0.5 } as unknown as number),
    TypeError,
    /Dropout p must be a number in \[0, 1\], got Object/,
  );
});

// ---------------------------------------------------------------------------- ScaleShift ----

Deno.test("scaleShift matches a reference and finite differences", () => {
  const rows = 3, n = 5;
  const xs = randomArray(rows * n, 1), ss = randomArray(n, 2), ts = randomArray(n, 3);
  const ref = (x: ArrayLike<number>, s: ArrayLike<number>, t: ArrayLike<number>) =>
    Array.from(x, (v, i) => v * s[i % n] + t[i % n]);
  const x = fromFloat32(xs.slice(), [rows, n], true);
  const s = fromFloat32(ss.slice(), [n], true), t = fromFloat32(ts.slice(), [n], true);
  gradcheck((a, b, c) => scaleShift(a, b, c), [x, s, t], {
    reference: ([a, b, c]) => ref(a, b, c),
    name: "scaleShift",
  });
  const layer = new ScaleShift(n);
  assert.deepEqual(Object.keys(layer.stateDict()), ["scale", "shift"]);
  assert.deepEqual(layer.forward(x).data, x.data);
  assertThrows(() => scaleShift(x, zeros([4]), null), ShapeError, /scale has shape \[4\]/);
});

// ------------------------------------------------------- repeatInterleave, groupSum ----

/** Float64 torch.repeat_interleave(x, r, dim) for a contiguous x of `shape`. */
function repeatRef(x: ArrayLike<number>, shape: number[], r: number, dim: number): number[] {
  const outer = shape.slice(0, dim).reduce((a, b) => a * b, 1);
  const inner = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < shape[dim]; i++) {
      for (let k = 0; k < r; k++) {
        for (let j = 0; j < inner; j++) out.push(x[(o * shape[dim] + i) * inner + j]);
      }
    }
  }
  return out;
}

Deno.test("repeatInterleave matches torch.repeat_interleave and finite differences", () => {
  const shape = [2, 3, 4];
  const xs = randomArray(24, 1);
  for (const dim of [0, 1, 2, -1]) {
    for (const r of [1, 3]) {
      const d = (dim + 3) % 3;
      const x = fromFloat32(xs.slice(), shape, true);
      const y = repeatInterleave(x, r, dim);
      assert.deepEqual(y.shape, shape.map((s, i) => (i === d ? s * r : s)));
      assert.deepEqual(Array.from(y.data), repeatRef(xs, shape, r, d).map(Math.fround));
      gradcheck((v) => repeatInterleave(v, r, dim), [x], {
        reference: ([v]) => repeatRef(v, shape, r, d),
        name: `repeatInterleave dim ${dim} repeats ${r}`,
      });
    }
  }
  assert.deepEqual(new RepeatInterleave(10).forward(zeros([64, 784])).shape, [64, 7840]);
  assert.deepEqual(repeatInterleave(zeros([2, 3]), 0, 1).shape, [2, 0]);
  assertThrows(() => repeatInterleave(zeros([2]), -1, 0), RangeError, /repeats must be an integer/);
  assertThrows(() => repeatInterleave(zeros([2]), 2, 1), RangeError, /dim 1 is outside/);
});

Deno.test("groupSum matches view(B, -1, size).sum(1) and finite differences", () => {
  const rows = 3, m = 12, size = 4;
  const xs = randomArray(rows * m, 5);
  const ref = (v: ArrayLike<number>) => {
    const out = new Array(rows * size).fill(0);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) out[r * size + (j % size)] += v[r * m + j];
    }
    return out;
  };
  const x = fromFloat32(xs.slice(), [rows, m], true);
  assert.deepEqual(new GroupSum(size).forward(x).shape, [rows, size]);
  gradcheck((v) => groupSum(v, size), [x], { reference: ([v]) => ref(v), name: "groupSum" });
  assertThrows(() => groupSum(zeros([2, 10]), 3), ShapeError, /multiple of the group size 3/);
  assertThrows(() => new GroupSum(0), RangeError, /size must be an integer >= 1/);
});

Deno.test("the seed's wide model, scaled down, trains end to end", () => {
  // Flatten -> repeat each pixel 3x -> per-feature scale/shift -> sparse -> LayerNorm -> ReLU
  // -> sparse -> sum the outputs of each class (the notebook's Net at 1/1000 of its width).
  const model = new Sequential(
    new Flatten(),
    new RepeatInterleave(3),
    new ScaleShift(3 * 16),
    new SparseLinear(3 * 16, 60, { sparsity: 0.8, seed: 1 }),
    new LayerNorm(60),
    new ReLU(),
    new SparseLinear(60, 30, { sparsity: 0.8, seed: 2 }),
    new GroupSum(3),
  );
  const x = randn([12, 4, 4], { seed: 3 });
  const labels = Int32Array.from({ length: 12 }, (_, i) => i % 3);
  const opt = new SGD(model, { lr: 0.05, momentum: 0.9, nesterov: true });
  const losses: number[] = [];
  for (let step = 0; step < 40; step++) {
    opt.zeroGrad();
    const loss = crossEntropy(model.forward(x), labels);
    losses.push(loss.item());
    loss.backward();
    opt.step();
  }
  assert.ok(losses[39] < 0.3 * losses[0], `loss ${losses[0]} -> ${losses[39]}`);
  assert.ok(model.at(2).parameters().every((p) => p.grad !== null));
});

// ---------------------------------------------------------------------------- Sequential ----

Deno.test("Sequential names children by position, as PyTorch, and trains end to end", () => {
  const model = new Sequential(
    new Flatten(),
    new Linear(12, 16, { seed: 1 }),
    new LayerNorm(16),
    new ReLU(),
    new Dropout(0.1, { seed: 2 }),
    new Linear(16, 2, { seed: 3 }),
  );
  assert.deepEqual(Object.keys(model.stateDict()), [
    "1.weight",
    "1.bias",
    "2.weight",
    "2.bias",
    "5.weight",
    "5.bias",
  ]);
  assert.equal(model.length, 6);
  assert.ok(model.at(-1) instanceof Linear);
  assertThrows(() => model.at(6), RangeError, /index 6 is outside \[-6, 6\)/);
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new Sequential(new ReLU(), {} as any), TypeError, /item 1/);

  const x = randn([8, 3, 4], { seed: 4 });
  const target = randn([8, 2], { seed: 5 });
  const opt = new SGD(model, { lr: 0.05, momentum: 0.9 });
  let first = 0, last = 0;
  for (let step = 0; step < 30; step++) {
    opt.zeroGrad();
    const loss = mseLoss(model.forward(x), target);
    if (step === 0) first = loss.item();
    last = loss.item();
    loss.backward();
    opt.step();
  }
  assert.ok(last < 0.5 * first, `loss went from ${first} to ${last}`);
  model.eval();
  assert.deepEqual(model.forward(x).data, model.forward(x).data);
  assert.match(String(model), /\(3\): ReLU\(\)/);
});

Deno.test("a module used twice: its parameters once, its state under every name (PyTorch)", () => {
  const shared = new SparseLinear(6, 6, { sparsity: 0.5, seed: 1 });
  const model = new Sequential(shared, new ReLU(), shared);
  assert.deepEqual(model.namedParameters().map(([name]) => name), ["0.weights", "0.bias"]);
  assert.deepEqual(
    model.namedParameters("", { removeDuplicate: false }).map(([name]) => name),
    ["0.weights", "0.bias", "2.weights", "2.bias"],
  );
  assert.deepEqual(model.namedModules().map(([name]) => name), ["", "0", "1"]);
  // Its computed buffer (indices, a fresh copy per call) is listed once too.
  assert.deepEqual(model.namedBuffers().map(([name]) => name), ["0.indices"]);
  assert.deepEqual(Object.keys(model.stateDict()).sort(), [
    "0.bias",
    "0.indices",
    "0.weights",
    "2.bias",
    "2.indices",
    "2.weights",
  ]);
  model.loadStateDict(model.stateDict()); // strict: every name is expected
  const opt = new SGD(model, { lr: 0.1 });
  assert.equal(opt.params.length, 2);
  const x = randn([4, 6], { seed: 2 });
  const before = Float32Array.from(shared.weights.data);
  mseLoss(model.forward(x), zeros([4, 6])).backward();
  opt.step();
  assert.notDeepEqual(shared.weights.data, before);
});

Deno.test("nn ops reject non-tensors with a TypeError", () => {
  // deno-lint-ignore no-explicit-any
  const bad = [1, 2] as any;
  assertThrows(() => dropout(bad, 0.5), TypeError, /dropout\(\) input must be a Tensor/);
  assertThrows(() => flatten(bad), TypeError, /flatten\(\) input must be a Tensor/);
  assertThrows(() => linear(bad, tensor([[1, 2]])), TypeError, /linear\(\) input/);
});

Deno.test("Linear with 0 inputs: the output is the bias for every row (PyTorch)", () => {
  const layer = new Linear(0, 3, { seed: 1 });
  const x = zeros([2, 0], { requiresGrad: true });
  const y = layer.forward(x);
  assert.deepEqual(y.shape, [2, 3]);
  assert.deepEqual(Array.from(y.data), [0, 0, 0, 0, 0, 0]); // bound 1/sqrt(0) → 0, as torch
  sum(y).backward();
  assert.deepEqual(Array.from(layer.bias!.grad!.data), [2, 2, 2]);
  assert.deepEqual(x.grad!.shape, [2, 0]);
});

Deno.test("PyTorch edges: nested Sequential repr, Flatten of a 0-d tensor, groupSum of nothing", () => {
  const nested = new Sequential(new Sequential(new Linear(2, 2, { seed: 1 }), new ReLU()));
  assert.equal(
    String(nested),
    "Sequential(\n  (0): Sequential(\n    (0): Linear(inFeatures=2, outFeatures=2, bias=true)\n" +
      "    (1): ReLU()\n  )\n)",
  );
  assert.equal(String(new Sequential()), "Sequential()"); // torch's repr of an empty one
  assertThrows(
    () => new Flatten().forward(tensor(2)),
    RangeError,
    /startDim 1 is outside \[-1, 0\]/,
  );
  assert.deepEqual(new Flatten({ startDim: 0 }).forward(tensor(2)).shape, [1]);
  assertThrows(
    () => groupSum(zeros([2, 0]), 3),
    ShapeError,
    /positive multiple of the group size 3/,
  );
});

Deno.test("Module API as PyTorch: name prefixes, strict: false reports keys, boolean train()", () => {
  const model = new Sequential(new Linear(2, 3, { seed: 1 }), new Sequential(new LayerNorm(3)));
  assert.deepEqual(model.namedParameters("model").map(([n]) => n), [
    "model.0.weight",
    "model.0.bias",
    "model.1.0.weight",
    "model.1.0.bias",
  ]);
  assert.deepEqual(model.namedModules("model").map(([n]) => n), [
    "model",
    "model.0",
    "model.1",
    "model.1.0",
  ]);
  assert.deepEqual(new Linear(1, 1).namedBuffers("fc"), []);
  assertThrows(() => model.namedParameters(3 as never), TypeError, /prefix must be a string/);

  const state: StateDict = { ...model.stateDict(), extra: zeros([1]) };
  delete state["1.0.bias"];
  assert.deepEqual(model.loadStateDict(state, { strict: false }), {
    missingKeys: ["1.0.bias"],
    unexpectedKeys: ["extra"],
  });
  assert.deepEqual(model.loadStateDict(model.stateDict()), { missingKeys: [], unexpectedKeys: [] });
  assertThrows(
    () => model.loadStateDict(state),
    Error,
    /missing key "1.0.bias".*unexpected key "extra"/,
  );

  assertThrows(
    () => model.train("no" as never),
    TypeError,
    /train\(\) mode must be true or false, got/,
  );
  assert.equal(model.training, true);
  assert.equal(model.train(false).training, false);
});

Deno.test("misspelled or snake_case options are TypeErrors, not silently ignored", () => {
  const x = zeros([2, 3]);
  assertThrows(
    () => new Flatten({ start_dim: 0 } as never),
    TypeError,
    /no option "start_dim" \(did you mean "startDim"\?\)/,
  );
  assertThrows(
    () => new RepeatInterleave(2, { axis: 0 } as never),
    TypeError,
    /RepeatInterleave has no option "axis"/,
  );
  assertThrows(() => new ScaleShift(3, { shfit: false } as never), TypeError, /no option "shfit"/);
  assertThrows(
    () => new ScaleShift(3, { scale: "no" } as never),
    TypeError,
    /ScaleShift scale must be true or false/,
  );
  assertThrows(
    () => crossEntropy(x, new Int32Array(2), { labelSmoothing: 0.1 } as never),
    TypeError,
    /crossEntropy\(\) has no option "labelSmoothing"/,
  );
  assertThrows(
    () => mseLoss(x, x, { reduce: "sum" } as never),
    TypeError,
    /did you mean "reduction"|no option "reduce"/,
  );
  const opt = new SGD([zeros([1], { requiresGrad: true })], { lr: 0.1 });
  assertThrows(
    () => cosineSchedule(opt, { totalSteps: 4, eta_min: 0.05 } as never),
    TypeError,
    /no option "eta_min"/,
  );
  assertThrows(
    () => stepSchedule(opt, { stepSize: 1, gama: 0.5 } as never),
    TypeError,
    /no option "gama"/,
  );
  assertThrows(
    () => new Dropout(0.5, { sed: 1 } as never),
    TypeError,
    /Dropout has no option "sed"/,
  );
  assertThrows(
    () => dropout(x, 0.5, { train: false } as never),
    TypeError,
    /dropout\(\) has no option "train"/,
  );
  assert.equal(new ScaleShift(3, { shift: false }).shift, null);
});

Deno.test("LayerNorm accepts eps = 0 (documented ≥ 0, as PyTorch)", () => {
  assert.equal(new LayerNorm([4], { eps: 0 }).eps, 0);
});

Deno.test("train()/eval() reach each child through its own train(), as PyTorch", () => {
  // PyTorch's train() calls children's train(mode): an override (here one keeping a part
  // frozen) runs when a parent switches mode. It used to be bypassed: the parent set every
  // module's flag itself.
  class FrozenDropout extends Module {
    readonly inner = new Dropout(0.5);
    constructor() {
      super();
      this.registerModule("inner", this.inner);
    }
    override train(mode = true): this {
      super.train(mode);
      this.inner.eval();
      return this;
    }
    forward(x: Tensor): Tensor {
      return this.inner.forward(x);
    }
  }
  const block = new FrozenDropout();
  const model = new Sequential(new Linear(2, 2, { seed: 0 }), block);
  assert.equal(model.train(), model);
  assert.deepEqual(model.namedModules().map(([n, m]) => [n, m.training]), [
    ["", true],
    ["0", true],
    ["1", true],
    ["1.inner", false],
  ]);
  assert.equal(model.eval(), model);
  assert.ok(model.namedModules().every(([, m]) => !m.training));
});

Deno.test("stateDict lists each module's parameters, then its buffers, then its children's (PyTorch)", () => {
  // torch's state_dict(): per module in pre-order, parameters then buffers; it used to list
  // every module's parameters before any buffer.
  const model = new Sequential(
    new SparseLinear(4, 6, { seed: 1 }),
    new Linear(6, 6, { seed: 2 }),
    new Sequential(new SparseLinear(6, 3, { seed: 3 })),
  );
  assert.deepEqual(Object.keys(model.stateDict()), [
    "0.weights",
    "0.bias",
    "0.indices",
    "1.weight",
    "1.bias",
    "2.0.weights",
    "2.0.bias",
    "2.0.indices",
  ]);
});

Deno.test("namedChildren lists a child registered under two names once, as PyTorch", () => {
  class Twice extends Module {
    constructor(child: Module) {
      super();
      this.registerModule("a", child);
      this.registerModule("b", child);
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const model = new Twice(new ReLU());
  assert.deepEqual(model.namedChildren().map(([n]) => n), ["a"]);
  assert.deepEqual(model.namedModules().map(([n]) => n), ["", "a"]);
});

Deno.test("Module.to refuses an unknown device even without parameters (as torch.device)", () => {
  for (const model of [new Sequential(new ReLU()), new Sequential(new Linear(2, 2, { seed: 0 }))]) {
    assertThrows(() => model.to("gpu" as never), TypeError, /Unknown device "gpu"/);
  }
  const relu = new Sequential(new ReLU());
  assert.equal(relu.to("cpu"), relu);
});
