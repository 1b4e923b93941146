/**
 * Tensor ops: forward against plain float64 references, gradients against finite differences
 * (float64 on the reference, and float32 on the op itself), broadcasting, batch 1 and odd
 * sizes, bad inputs, and the tape's accumulation / noGrad / backward-twice behaviour.
 */
import assert from "node:assert/strict";
import { setMemoryCheck } from "../lib/memory_check.ts";
import {
  abs,
  add,
  broadcastShapes,
  div,
  exp,
  expand,
  full,
  Generator,
  isGradEnabled,
  log,
  logSoftmax,
  matmul,
  mean,
  mul,
  mulScalar,
  neg,
  noGrad,
  permute,
  pow,
  rand,
  randn,
  relu,
  reshape,
  ShapeError,
  sigmoid,
  sqrt,
  square,
  squeeze,
  sub,
  sum,
  tanh,
  Tensor,
  tensor,
  transpose,
  unsqueeze,
  view,
  zeros,
} from "../mod.ts";
import type { Storage } from "../lib/backend/backend.ts";
import { assertAllClose, gradcheck } from "./_gradcheck.ts";
import {
  refBinary,
  refExpand,
  refLogSoftmax,
  refMatmul,
  refPermute,
  refSum,
  size,
} from "./_reference.ts";

/** Asserts that `fn` throws an instance of `cls` whose message matches `pattern`. */
function throws(fn: () => unknown, cls: abstract new (...args: never[]) => Error, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected a ${cls.name}, got ${err}`);
    assert.match(err.message, pattern);
    return true;
  });
}

let seed = 100;
/** A random tensor that requires a gradient; values in [lo, hi) (default normal). */
function input(shape: number[], range?: [number, number]): Tensor {
  seed++;
  if (range === undefined) return randn(shape, { seed, requiresGrad: true });
  const x = rand(shape, { seed, requiresGrad: true });
  const [lo, hi] = range;
  x.data.forEach((v, i) => (x.data[i] = lo + (hi - lo) * v));
  return x;
}

/** Values in ±[lo, hi): away from 0 (kinks of relu/abs, poles of div). */
function awayFromZero(shape: number[], lo = 0.2, hi = 2): Tensor {
  const x = input(shape, [lo, hi]);
  x.data.forEach((v, i) => (x.data[i] = i % 3 === 1 ? -v : v));
  return x;
}

// ------------------------------------------------------------------ binary ops

const binaryCases: [number[], number[]][] = [
  [[3, 4], [3, 4]], // same shape
  [[3, 4], [4]], // bias-style row broadcast
  [[4], [3, 4]], // left operand broadcast
  [[2, 1, 3], [4, 1]], // both broadcast -> [2, 4, 3]
  [[1, 5], [1, 5]], // batch 1
  [[], [2, 3]], // 0-d tensor operand
  [[5, 1], [1]], // odd sizes, one-element operand
  [[2, 3, 1, 2], [3, 4, 1]], // 4-d
];

const binaryOps = [
  { name: "add", fn: add, f: (x: number, y: number) => x + y },
  { name: "sub", fn: sub, f: (x: number, y: number) => x - y },
  { name: "mul", fn: mul, f: (x: number, y: number) => x * y },
  { name: "div", fn: div, f: (x: number, y: number) => x / y },
] as const;

for (const op of binaryOps) {
  Deno.test(`${op.name}: forward and gradients with broadcasting`, () => {
    for (const [aShape, bShape] of binaryCases) {
      const a = input(aShape);
      const b = op.name === "div" ? awayFromZero(bShape, 0.5, 2) : input(bShape);
      const y = op.fn(a, b);
      assert.deepEqual(y.shape, broadcastShapes(aShape, bShape));
      gradcheck((p, q) => op.fn(p, q), [a, b], {
        name: `${op.name} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`,
        reference: ([p, q]) => refBinary(p, aShape, q, bShape, op.f),
      });
      assert.deepEqual(a.grad?.shape, aShape, "gradient of a broadcast input keeps its shape");
      assert.deepEqual(b.grad?.shape, bShape);
    }
  });
}

Deno.test("binary ops: gradients on the float32 op itself (no reference)", () => {
  const a = input([3, 4]), b = awayFromZero([4], 0.5, 2);
  gradcheck((p, q) => div(mul(add(p, q), sub(p, q)), q), [a, b]);
});

Deno.test("binary ops: a gradient flows only to inputs that require one", () => {
  const a = input([2, 3]);
  const b = tensor([1, 2, 3], [3]);
  mul(a, b).sum().backward();
  assert.equal(b.grad, null);
  assertAllClose(a.grad!.data, [1, 2, 3, 1, 2, 3]);
});

Deno.test("scalar operands: add, sub, mul, div with numbers on either side", () => {
  const x = awayFromZero([2, 3], 0.5, 2);
  const cases: [string, (t: Tensor) => Tensor, (v: number) => number][] = [
    ["x + 2", (t) => add(t, 2), (v) => v + 2],
    ["2 + x", (t) => add(2, t), (v) => 2 + v],
    ["x - 2", (t) => sub(t, 2), (v) => v - 2],
    ["2 - x", (t) => sub(2, t), (v) => 2 - v],
    ["x * 3", (t) => mul(t, 3), (v) => v * 3],
    ["3 * x", (t) => mul(3, t), (v) => 3 * v],
    ["x / 4", (t) => div(t, 4), (v) => v / 4],
    ["2 / x", (t) => div(2, t), (v) => 2 / v],
    ["mulScalar(x, -1.5)", (t) => mulScalar(t, -1.5), (v) => -1.5 * v],
  ];
  for (const [name, fn, f] of cases) {
    gradcheck(fn, [x], { name, reference: ([p]) => p.map(f) });
  }
  throws(() => add(1 as unknown as Tensor, 2), TypeError, /at least one Tensor/);
  throws(() => add(x, "2" as unknown as number), TypeError, /b must be a Tensor or a number/);
});

// ------------------------------------------------------------------- unary ops

Deno.test("unary ops: forward and gradients against float64 references", () => {
  const cases: [string, (t: Tensor) => Tensor, (v: number) => number, Tensor][] = [
    ["neg", neg, (v) => -v, input([3, 5])],
    ["exp", exp, Math.exp, input([3, 5])],
    ["log", log, Math.log, input([3, 5], [0.5, 3])],
    ["abs", abs, Math.abs, awayFromZero([3, 5])],
    ["sqrt", sqrt, Math.sqrt, input([3, 5], [0.5, 3])],
    ["square", square, (v) => v * v, input([3, 5])],
    ["pow 3", (t) => pow(t, 3), (v) => v ** 3, input([3, 5])],
    ["pow 0.5", (t) => pow(t, 0.5), Math.sqrt, input([3, 5], [0.5, 3])],
    ["relu", relu, (v) => Math.max(v, 0), awayFromZero([3, 5])],
    ["sigmoid", sigmoid, (v) => 1 / (1 + Math.exp(-v)), input([3, 5])],
    ["tanh", tanh, Math.tanh, input([3, 5])],
    ["relu 1 element", relu, (v) => Math.max(v, 0), awayFromZero([1])],
    ["tanh odd 0-d", tanh, Math.tanh, input([])],
  ];
  for (const [name, fn, f, x] of cases) {
    gradcheck(fn, [x], { name, reference: ([p]) => p.map(f) });
  }
});

Deno.test("unary ops: finite differences on the float32 ops", () => {
  const x = input([4, 3], [0.5, 2]);
  gradcheck((t) => sqrt(exp(tanh(t))), [x]);
  gradcheck((t) => log(sigmoid(t)), [x]);
});

Deno.test("unary ops on an empty tensor", () => {
  const x = zeros([0, 3], { requiresGrad: true });
  const y = exp(x);
  assert.deepEqual(y.shape, [0, 3]);
  y.backward(zeros([0, 3]));
  assert.deepEqual(x.grad?.shape, [0, 3]);
});

// ------------------------------------------------------------------ logSoftmax

Deno.test("logSoftmax: forward and gradients over the last axis", () => {
  for (const shape of [[3, 5], [1, 7], [2, 3, 4], [6]]) {
    const x = input(shape);
    const cols = shape[shape.length - 1];
    gradcheck((t) => logSoftmax(t), [x], {
      name: `logSoftmax ${JSON.stringify(shape)}`,
      reference: ([p]) => refLogSoftmax(p, cols),
    });
  }
  const big = tensor([[1000, 0, -1000]]);
  assertAllClose(logSoftmax(big, 1).data, [0, -1000, -2000], { rtol: 1e-6 });
  // (x - max) - log(sum), as PyTorch: max + log(sum) first would round to 1e7's ulp (1.0).
  const far = tensor([[1e7, 1e7], [1e4, 1e4]], undefined, { requiresGrad: true });
  assertAllClose(logSoftmax(far).data, new Array(4).fill(-Math.LN2), { rtol: 1e-6 });
  logSoftmax(far).backward(tensor([[1, 0], [1, 0]]));
  assertAllClose(far.grad!.data, [0.5, -0.5, 0.5, -0.5], { atol: 1e-6 });
  throws(() => logSoftmax(zeros([2, 3]), 0), RangeError, /only the last axis/);
  throws(() => logSoftmax(zeros([2, 3]), 2), RangeError, /outside \[-2, 1\]/);
  // A 0-d tensor is a row of one (PyTorch views it as shape [1]): 0, gradient 0.
  const scalar = tensor(3, undefined, { requiresGrad: true });
  const ls = logSoftmax(scalar);
  assert.deepEqual([ls.shape, ls.item()], [[], 0]);
  ls.backward();
  assert.equal(scalar.grad!.item(), 0);
  throws(() => logSoftmax(tensor(1), 1), RangeError, /outside \[-1, 0\]/);
});

// ---------------------------------------------------------------------- matmul

const matmulCases: [number[], number[], number[]][] = [
  [[3, 4], [4, 5], [3, 5]],
  [[1, 4], [4, 1], [1, 1]], // batch 1, one output
  [[7, 13], [13, 5], [7, 5]], // odd sizes
  [[2, 3, 4], [4, 5], [2, 3, 5]], // N-D @ 2-D
  [[4], [4, 5], [5]], // vector @ matrix
  [[3, 4], [4], [3]], // matrix @ vector
  [[2, 3, 4], [2, 4, 5], [2, 3, 5]], // batched
  [[3, 4], [2, 4, 5], [2, 3, 5]], // matrix @ batch (A broadcast)
  [[4], [2, 4, 3], [2, 3]], // vector @ batch
  [[3, 0], [0, 2], [3, 2]], // empty inner dimension
];

Deno.test("matmul: forward and gradients, 2-D, N-D, batched, vectors", () => {
  for (const [aShape, bShape, outShape] of matmulCases) {
    const a = input(aShape), b = input(bShape);
    const y = matmul(a, b);
    assert.deepEqual(y.shape, outShape);
    gradcheck((p, q) => matmul(p, q), [a, b], {
      name: `matmul ${JSON.stringify(aShape)} @ ${JSON.stringify(bShape)}`,
      reference: ([p, q]) => {
        // The reference broadcasts a batched right operand over a plain left one by tiling.
        if (aShape.length <= 2 && bShape.length > 2) {
          const batch = bShape[0];
          const as2 = aShape.length === 1 ? [1, aShape[0]] : aShape;
          const tiled = new Float64Array(batch * size(as2));
          for (let t = 0; t < batch; t++) tiled.set(p, t * size(as2));
          return refMatmul(tiled, [batch, ...as2], q, bShape);
        }
        return refMatmul(p, aShape, q, bShape);
      },
    });
  }
});

Deno.test("matmul: float32 finite differences and a larger product against the reference", () => {
  const a = input([5, 6]), b = input([6, 3]);
  gradcheck((p, q) => matmul(p, q), [a, b]);
  const big = randn([33, 70], { seed: 3 }), w = randn([70, 65], { seed: 4 });
  assertAllClose(matmul(big, w).data, refMatmul(big.data, [33, 70], w.data, [70, 65]), {
    atol: 1e-4,
    rtol: 1e-4,
  });
});

Deno.test("matmul: bad shapes", () => {
  throws(
    () => matmul(zeros([2, 3]), zeros([4, 5])),
    ShapeError,
    /shapes \[2, 3\] and \[4, 5\] do not match: a has 3 columns but b has 4 rows/,
  );
  throws(
    () => matmul(zeros([2, 2, 3]), zeros([3, 3, 4])),
    ShapeError,
    /batch dimensions .* differ: \[2\] vs \[3\]/,
  );
  throws(() => matmul(tensor(1), zeros([2])), ShapeError, /at least 1 dimension/);
  throws(() => matmul(zeros([2]), [1, 2] as unknown as Tensor), TypeError, /b must be a Tensor/);
});

// -------------------------------------------------------------------- sum, mean

Deno.test("sum and mean: all elements or one axis, keepDim, gradients", () => {
  const shape = [2, 3, 4];
  const cases: [number | undefined, boolean][] = [
    [undefined, false],
    [undefined, true],
    [0, false],
    [1, true],
    [-1, false],
    [2, true],
  ];
  for (const [axis, keepDim] of cases) {
    for (const isMean of [false, true]) {
      const x = input(shape);
      const fn = isMean ? mean : sum;
      const y = fn(x, axis, { keepDim });
      const expectedShape = axis === undefined
        ? (keepDim ? [1, 1, 1] : [])
        : shape.map((d, i) => (i === (axis + 3) % 3 ? (keepDim ? 1 : -1) : d)).filter((d) =>
          d !== -1
        );
      assert.deepEqual(y.shape, expectedShape);
      const count = axis === undefined ? size(shape) : shape[(axis + 3) % 3];
      gradcheck((t) => fn(t, axis, { keepDim }), [x], {
        name: `${isMean ? "mean" : "sum"} axis ${axis} keepDim ${keepDim}`,
        reference: ([p]) => refSum(p, shape, axis).map((v) => (isMean ? v / count : v)),
      });
    }
  }
});

Deno.test("sum and mean: batch 1, 0-d, empty", () => {
  const x = input([1, 5]);
  gradcheck((t) => sum(t, 0), [x], { reference: ([p]) => p });
  const s = tensor(3, undefined, { requiresGrad: true });
  assert.equal(sum(s).item(), 3);
  assert.equal(sum(s, 0).item(), 3);
  assert.equal(sum(zeros([0, 3])).item(), 0);
  assert.deepEqual(Array.from(sum(zeros([0, 3]), 0).data), [0, 0, 0]);
  assert.ok(Number.isNaN(mean(zeros([0])).item()));
  assert.ok(Number.isNaN(mean(zeros([2, 0]), 1).data[0]));
  throws(() => sum(zeros([2, 3]), 2), RangeError, /axis 2 is outside \[-2, 1\]/);
  throws(() => sum(zeros([2, 3]), 0.5), TypeError, /must be an integer/);
});

// ------------------------------------------------------------------ shape ops

Deno.test("reshape/view: -1 inference, shared memory, gradients, errors", () => {
  const x = input([2, 6]);
  const y = reshape(x, [3, -1]);
  assert.deepEqual(y.shape, [3, 4]);
  assert.equal(y.storage, x.storage, "a reshape is a view");
  assert.deepEqual(view(x, [-1]).shape, [12]);
  gradcheck((t) => mul(reshape(t, [4, 3]), reshape(t, [4, 3])), [x], {
    reference: ([p]) => p.map((v) => v * v),
  });
  throws(() => reshape(x, [5, -1]), ShapeError, /\[2, 6\] .* to \[5, -1\]/);
  throws(() => reshape(x, [5, 2]), ShapeError, /\[2, 6\] \(12 elements\) to \[5, 2\]/);
  throws(() => reshape(x, [-1, -1]), ShapeError, /more than one -1/);
  throws(() => reshape(x, [2.5, 4]), ShapeError, /non-negative integers/);
  assert.deepEqual(reshape(zeros([0, 4]), [-1, 2]).shape, [0, 2]);
  // With zero elements a -1 beside a 0 could be anything (PyTorch refuses it too).
  throws(() => reshape(zeros([0, 4]), [2, 0, -1]), ShapeError, /-1 cannot be inferred/);
});

Deno.test("flatten, unsqueeze, squeeze as views", () => {
  const x = input([2, 1, 3]);
  assert.deepEqual(x.flatten().shape, [6]);
  assert.deepEqual(x.flatten(1).shape, [2, 3]);
  assert.deepEqual(unsqueeze(x, 0).shape, [1, 2, 1, 3]);
  assert.deepEqual(unsqueeze(x, -1).shape, [2, 1, 3, 1]);
  assert.deepEqual(squeeze(x).shape, [2, 3]);
  assert.deepEqual(squeeze(x, 1).shape, [2, 3]);
  assert.deepEqual(squeeze(x, 0).shape, [2, 1, 3]);
  gradcheck((t) => squeeze(unsqueeze(t, 0)).flatten(), [x], { reference: ([p]) => p });
  throws(() => unsqueeze(x, 4), RangeError, /outside \[-4, 3\]/);
});

Deno.test("transpose and permute: forward against the reference and gradients", () => {
  const x = input([2, 3, 4]);
  for (const perm of [[2, 0, 1], [1, 0, 2], [0, 1, 2], [2, 1, 0]]) {
    const y = permute(x, perm);
    assert.deepEqual(y.shape, perm.map((d) => x.shape[d]));
    gradcheck((t) => permute(t, perm), [x], {
      name: `permute ${perm}`,
      reference: ([p]) => refPermute(p, [2, 3, 4], perm),
    });
  }
  const m = input([3, 5]);
  gradcheck((t) => transpose(t), [m], { reference: ([p]) => refPermute(p, [3, 5], [1, 0]) });
  assert.deepEqual(transpose(x, 0, 2).shape, [4, 3, 2]);
  throws(() => permute(x, [0, 1]), RangeError, /each of the 3 dimensions/);
  throws(() => permute(x, [0, 1, 1]), RangeError, /repeat a dimension/);
  throws(() => transpose(zeros([3])), RangeError, /dim0 -2 is outside/);
});

Deno.test("expand: forward and the summed gradient", () => {
  const x = input([3, 1]);
  const y = expand(x, [2, 3, 4]);
  assert.deepEqual(y.shape, [2, 3, 4]);
  gradcheck((t) => expand(t, [2, 3, -1]), [x], {
    reference: ([p]) => refExpand(p, [3, 1], [2, 3, 1]),
  });
  gradcheck((t) => expand(t, [2, 3, 4]), [x], {
    reference: ([p]) => refExpand(p, [3, 1], [2, 3, 4]),
  });
  throws(() => expand(x, [2, 2]), ShapeError, /cannot broadcast shape \[3, 1\]/);
  throws(() => expand(x, [4]), ShapeError, /cannot broadcast/);
});

// ----------------------------------------------------------------- bad inputs

Deno.test("bad inputs: shape mismatch names both shapes", () => {
  throws(
    () => add(zeros([2, 3]), zeros([4])),
    ShapeError,
    /add\(\) cannot broadcast shapes \[2, 3\] and \[4\]: dimension -1 has sizes 3 and 4/,
  );
  throws(() => mul(zeros([2, 3]), zeros([3, 3])), ShapeError, /\[2, 3\] and \[3, 3\]/);
  throws(
    () => add(zeros([1, 1, 1, 1, 1, 1, 1, 1, 1]), zeros([1])),
    ShapeError,
    /at most 8 dimensions/,
  );
});

/** A stand-in for CUDA memory, for checks that must fire before anything touches it. */
function fakeDeviceStorage(length: number): Storage {
  return {
    device: "cuda",
    dtype: "float32",
    length,
    host: undefined,
    ptr: () => null,
    toHost: () => new Float32Array(length),
    write: () => {},
    dispose: () => {},
  };
}

Deno.test("bad inputs: tensors on different devices, unknown device names, non-tensors", () => {
  const fake = fakeDeviceStorage(3);
  const onCuda = new Tensor(fake, [3]);
  const onCpu = zeros([3]);
  throws(
    () => add(onCpu, onCuda),
    TypeError,
    /add\(\) got tensors on different devices: a is on cpu, b is on cuda/,
  );
  throws(() => matmul(zeros([3, 3]), onCuda), TypeError, /different devices/);
  throws(
    () => zeros([2], { device: "gpu" as "cpu" }),
    TypeError,
    /Unknown device "gpu": expected "cpu" or "cuda"/,
  );
  throws(() => onCpu.to("tpu" as "cpu"), TypeError, /Unknown device "tpu"/);
  throws(() => relu(null as unknown as Tensor), TypeError, /relu\(\) x must be a Tensor/);
  throws(() => sum([1, 2] as unknown as Tensor), TypeError, /got an array/);
});

// ---------------------------------------------------------------- the tape

Deno.test("gradients accumulate across two backward calls", () => {
  const w = input([3, 2]);
  const x = randn([4, 3], { seed: 9 });
  matmul(x, w).tanh().sum().backward();
  const first = Float32Array.from(w.grad!.data);
  matmul(x, w).tanh().sum().backward();
  assertAllClose(w.grad!.data, first.map((v) => 2 * v), { rtol: 1e-6 });
});

Deno.test("a tensor used twice gets both contributions", () => {
  const x = input([3]);
  add(mul(x, x), x).sum().backward();
  assertAllClose(x.grad!.data, x.data.map((v) => 2 * v + 1), { rtol: 1e-6 });
});

Deno.test("noGrad records nothing", () => {
  const x = input([2, 2]);
  const y = noGrad(() => matmul(x, x).relu().sum());
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
  throws(() => y.backward(), Error, /does not require grad/);
});

Deno.test("backward twice through the same graph is an error unless retainGraph", () => {
  const x = input([3]);
  const loss = exp(x).sum();
  loss.backward();
  throws(() => loss.backward(), Error, /second time/);
  const kept = exp(x).sum();
  x.grad = null;
  kept.backward(undefined, { retainGraph: true });
  kept.backward();
  assertAllClose(x.grad!.data, x.data.map((v) => 2 * Math.exp(v)), { rtol: 1e-5 });
  // The options alone, as the "second time" error suggests them.
  const again = exp(x).sum();
  x.grad = null;
  again.backward({ retainGraph: true });
  again.backward();
  assertAllClose(x.grad!.data, x.data.map((v) => 2 * Math.exp(v)), { rtol: 1e-5 });
  throws(() => again.backward(3 as never), TypeError, /gradient Tensor and\/or options/);
  throws(() => again.backward(null as never), TypeError, /got null/);
  // retainGraph is true or false: the string "false" kept the graph, 0 freed it.
  const strict = exp(x).sum();
  throws(
    () => strict.backward({ retainGraph: "false" as never }),
    TypeError,
    /backward\(\) retainGraph must be true or false, got "false"/,
  );
  throws(() => strict.backward({ retainGraph: 0 as never }), TypeError, /got 0/);
  strict.backward(); // the rejected calls freed nothing
});

Deno.test("backward(grad) needs the tensor's own shape, not just its element count", () => {
  const a = input([3, 1]);
  const y = add(a, input([3, 4]));
  throws(
    () => y.backward(zeros([12])),
    ShapeError,
    /Gradient shape \[12\] does not match tensor shape \[3, 4\]/,
  );
  throws(() => y.backward(zeros([4, 3])), ShapeError, /does not match/);
  assert.equal(a.grad, null, "a rejected call accumulates nothing");
  y.backward(tensor(new Array(12).fill(1), [3, 4]));
  assert.deepEqual(Array.from(a.grad!.data), [4, 4, 4]);
});

Deno.test("backward(grad) needs a gradient on the tensor's own device", () => {
  // The gradient used to reach the ops' backwards, which ran this tensor's (CPU) kernels on
  // it: on a GPU machine, a CPU kernel reading a device pointer.
  const fake = fakeDeviceStorage(3);
  const x = input([2, 3]);
  throws(
    () => sum(x, 0).backward(new Tensor(fake, [3])),
    TypeError,
    /backward\(\) got a gradient on cuda for a tensor on cpu; move it with \.to\("cpu"\)/,
  );
  assert.equal(x.grad, null, "a rejected call accumulates nothing");
});

Deno.test("creators: wrong kinds of value are TypeErrors, impossible sizes name the shape", () => {
  throws(() => zeros(["2"] as never), TypeError, /shape must hold numbers, got string "2"/);
  throws(() => full([2], "x" as never), TypeError, /full\(\) value must be a number/);
  // Refused before allocating when the memory available is known (the memory check), else
  // when V8 refuses the array.
  throws(
    () => zeros([2 ** 20, 2 ** 20]),
    RangeError,
    /(A float32 tensor of shape \[1048576, 1048576\] needs about 4 TiB, but only .* is available|Cannot allocate .* shape \[1048576, 1048576\])/,
  );
  // Without the check, 2^51 elements is past the longest Float32Array V8 makes: refused on
  // every host (4 TiB above may be granted where memory is overcommitted).
  const previous = setMemoryCheck(false);
  try {
    throws(
      () => zeros([2 ** 26, 2 ** 25]),
      RangeError,
      /Cannot allocate a float32 tensor of shape \[67108864, 33554432\] \(2251799813685248 elements, .*Invalid typed array length/,
    );
  } finally {
    setMemoryCheck(previous);
  }
  throws(() => unsqueeze(zeros([2, 3]), 3), RangeError, /outside \[-3, 2\] for a tensor of 2 dim/);
});

Deno.test("tensor(): a bad element or ragged row is named by its position and value", () => {
  // These said only "Tensor data must be numbers" / "expected length 2 at depth 1".
  throws(
    () => tensor([[1, 2], [3, true]] as never),
    TypeError,
    /data\[1\]\[1\] .*got boolean true/,
  );
  throws(() => tensor([1n, 2n] as never), TypeError, /tensor\(\) data\[0\] .*got bigint 1/);
  throws(() => tensor(["1"] as never), TypeError, /data\[0\] must be a number, got the string "1"/);
  throws(() => tensor([new Float32Array(2)] as never), TypeError, /data\[0\] .*Float32Array/);
  throws(() => tensor(true as never), TypeError, /nested arrays of numbers, got boolean true/);
  throws(
    () => tensor([[1, 2], [3]] as never),
    ShapeError,
    /Ragged nested array: tensor\(\) data\[1\] should be an array of length 2 \(as data\[0\]\), got length 1/,
  );
  throws(() => tensor([[[1]], [[1, 2]]] as never), ShapeError, /data\[1\]\[0\] .* got length 2/);
  throws(() => tensor([[1, 2], 3] as never), ShapeError, /data\[1\] .* got number 3/);
});

Deno.test("rand is in [0, 1): a draw that float32 rounds up to 1 is the float below", () => {
  // Seed 0's draw 4,433,008 (0-based) is a double within half an ulp of 1 (~3 in 10^8 draws are).
  const r = rand([5_000_000], { seed: 0 }).data;
  let max = 0;
  for (const v of r) max = v > max ? v : max;
  assert.ok(max < 1, `max ${max}`);
  assert.equal(r[4_433_008], 1 - 2 ** -24);
});

Deno.test("generators made without a seed draw different streams, even in the same millisecond", () => {
  // The default seed was Date.now(): generators made in one loop all drew the same numbers.
  const firsts = Array.from({ length: 8 }, () => new Generator().nextUint32());
  assert.equal(new Set(firsts).size, 8, `first draws ${firsts.join(", ")}`);
});

Deno.test("Generator.int(n) refuses an n that is not a positive safe integer", () => {
  const g = new Generator(3);
  // Before: int(0) was NaN, int(1.5) 0.5 and int(-1) 0.
  for (const n of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => g.int(n), /Generator\.int\(n\) needs a positive safe integer n/, String(n));
  }
  assert.equal(g.int(1), 0);
  const draws = Array.from({ length: 200 }, () => g.int(6));
  assert.ok(draws.every((v) => Number.isInteger(v) && v >= 0 && v < 6));
  assert.equal(new Set(draws).size, 6);
});

// ------------------------------------------------------------- Tensor methods

Deno.test("Tensor methods call the ops", () => {
  const x = input([4, 3]), w = input([3, 2]), b = input([2]);
  const viaMethods = x.matmul(w).add(b).relu().mul(2).sub(1).div(3).mean();
  const viaFunctions = mean(div(sub(mul(relu(add(matmul(x, w), b)), 2), 1), 3));
  assert.equal(viaMethods.item(), viaFunctions.item());
  assert.deepEqual(x.reshape([-1]).shape, [12]);
  assert.deepEqual(x.transpose().shape, [3, 4]);
  assert.deepEqual(x.sum(0, { keepDim: true }).shape, [1, 3]);
  assert.deepEqual(x.unsqueeze(1).squeeze().shape, [4, 3]);
  assert.equal(Object.keys(x).includes("add"), false, "methods are not enumerable");
  for (const name of ["neg", "exp", "tanh", "sigmoid", "square", "logSoftmax"] as const) {
    assert.equal(typeof x[name], "function");
  }
});

Deno.test("a small MLP loss: gradients of every parameter by finite differences", () => {
  const x = randn([5, 4], { seed: 21 });
  const labels = [0, 2, 1, 1, 0];
  const onehot = zeros([5, 3]);
  labels.forEach((c, r) => (onehot.data[r * 3 + c] = 1));
  const w1 = input([4, 6]), b1 = input([6]), w2 = input([6, 3]), b2 = input([3]);
  const loss = (p: Tensor, q: Tensor, r: Tensor, s: Tensor) =>
    neg(mean(sum(mul(logSoftmax(add(matmul(tanh(add(matmul(x, p), q)), r), s)), onehot), 1)));
  gradcheck(loss, [w1, b1, w2, b2], { name: "mlp", atol: 2e-3 });
});

Deno.test("relu propagates NaN (non-finite values are not hidden before the loss check)", () => {
  const y = relu(tensor([NaN, -1, 2], [3])).toArray();
  assert.ok(Number.isNaN(y[0]));
  assert.deepEqual(Array.from(y.subarray(1)), [0, 2]);
});

Deno.test("IEEE edge cases as PyTorch: pow's special exponents, signed zeros, NaN gradients", () => {
  const same = (got: ArrayLike<number>, want: number[], what: string) =>
    want.forEach((w, i) => assert.ok(Object.is(got[i], w), `${what}[${i}]: ${got[i]} vs ${w}`));
  const x = tensor([-Infinity, -0, 0, 4, -4, 2]);
  // ATen: 0.5 → sqrt, -0.5 → 1/sqrt, 2 → x·x, 3 → x·x·x, -1 → 1/x, -2 → 1/(x·x).
  same(pow(x, 0.5).data, [NaN, -0, 0, 2, NaN, Math.fround(Math.SQRT2)], "pow 0.5");
  same(pow(x, -0.5).data, [NaN, -Infinity, Infinity, 0.5, NaN, Math.fround(Math.SQRT1_2)], "-0.5");
  same(pow(x, 3).data, [-Infinity, -0, 0, 64, -64, 8], "pow 3");
  same(pow(x, -1).data, [-0, -Infinity, Infinity, 0.25, -0.25, 0.5], "pow -1");
  same(pow(x, -2).data, [0, Infinity, Infinity, 0.0625, 0.0625, 0.25], "pow -2");
  // A product keeps the sign of zero (it was computed as alpha·x + 0).
  same(mul(tensor([-0, -1, 1]), 2).data, [-0, -2, 2], "mul by 2");
  same(mul(tensor([-1, 1]), 0).data, [-0, 0], "mul by 0");
  same(mulScalar(tensor([-0]), 1).data, [-0], "mulScalar 1");
  // relu passes the gradient of a NaN input on (threshold_backward: result <= 0 ? 0 : grad).
  const r = tensor([NaN, -1, 0, 2], [4], { requiresGrad: true });
  relu(r).backward(tensor([1, 1, 1, 1]));
  same(r.grad!.data, [1, 0, 0, 1], "relu grad");
  // abs's gradient is g·sign(x), and sign(±0) = sign(NaN) = 0 in PyTorch.
  const v = tensor([NaN, -0, 0, -2, 3], [5], { requiresGrad: true });
  abs(v).backward(tensor([1, 1, 1, 1, 1]));
  same(v.grad!.data, [0, 0, 0, -1, 1], "abs grad");
  // div's gradient for b is -g·(a/b)/b: b·b overflows or underflows float32 at these sizes.
  const a = tensor([1e-24, 1e20], [2], { requiresGrad: true });
  const b = tensor([1e-24, 1e20], [2], { requiresGrad: true });
  div(a, b).backward(tensor([1, 1]));
  assertAllClose(b.grad!.data, [-1e24, -1e-20], { rtol: 1e-6, what: "div grad b" });
});

Deno.test("empty batches in matmul and 0-d dimensions, as PyTorch", () => {
  assert.deepEqual(matmul(zeros([0, 2, 3]), zeros([0, 3, 4])).shape, [0, 2, 4]);
  assert.deepEqual(matmul(zeros([2, 3]), zeros([0, 3, 4])).shape, [0, 2, 4]);
  assert.deepEqual(matmul(zeros([3]), zeros([0, 3, 4])).shape, [0, 4]);
  const s = tensor(3);
  assert.deepEqual(transpose(s, 0, 0).shape, []);
  assert.equal(transpose(s, -1, -1).item(), 3);
  assert.throws(
    () => transpose(s, 1, 0),
    /dim0 1 is outside \[-1, 0\] for a tensor of 0 dimensions/,
  );
  assert.throws(() => sum(s, 1), /axis 1 is outside \[-1, 0\] for a tensor of 0 dimensions/);
});

Deno.test("PyTorch edges: division by a tiny scalar, requiresGrad of computed tensors, async noGrad, broadcastShapes of three", () => {
  // 1/s overflows float32 for |s| below ~2.9e-38: the result must still be x / s (0 / s = 0).
  const x = tensor([1e-10, 0, -3], [3], { requiresGrad: true });
  const tiny = Math.fround(1e-40);
  assert.deepEqual(Array.from(div(x, 1e-40).data), [Math.fround(1e-10 / tiny), 0, -Infinity]);
  assert.deepEqual(
    Array.from(div(x, 3e38).data),
    Array.from(x.data, (v) => Math.fround(v / Math.fround(3e38))),
  );
  sum(div(x, 1e-40)).backward();
  assert.deepEqual(Array.from(x.grad!.data), [Infinity, Infinity, Infinity]);

  // Switching off requiresGrad of a computed tensor would silently cut the graph (PyTorch refuses).
  const w = tensor([3], [1], { requiresGrad: true });
  const y = mul(w, 2);
  throws(() => (y.requiresGrad = false), TypeError, /only be switched off on a leaf.*detach/);
  throws(() => (w.requiresGrad = "no" as never), TypeError, /requiresGrad must be true or false/);
  w.requiresGrad = false;
  assert.equal(mul(w, 2).requiresGrad, false);

  // An async body would record again after its first await.
  const later = async () => {
    await null;
    return 1;
  };
  throws(() => noGrad(later as never), TypeError, /synchronous function/);
  throws(() => noGrad(1 as never), TypeError, /needs a function/);

  assert.deepEqual(broadcastShapes([1, 2], [3, 1], [4, 1, 1]), [4, 3, 2]);
  assert.deepEqual(broadcastShapes(), []);
  throws(() => broadcastShapes([2, 3], "x" as never), TypeError, /shape 1 must be an array/);
});

Deno.test("IEEE zeros as PyTorch: scalar add/sub give +0 for -0 + 0, products keep -0; pow's gradient uses pow's special exponents", () => {
  const sign = (v: number) => Object.is(v, -0) ? "-0" : String(v);
  const signs = (t: Tensor) => Array.from(t.data, sign);
  assert.deepEqual(signs(add(tensor([-0, 0]), 0)), ["0", "0"]); // -0 + 0 = +0
  assert.deepEqual(signs(add(tensor([-0]), -0)), ["-0"]);
  assert.deepEqual(signs(sub(tensor([-0]), 0)), ["-0"]); // -0 - 0 = -0
  assert.deepEqual(signs(sub(0, tensor([0, -0]))), ["0", "0"]); // 0 - 0 = 0 - (-0) = +0
  assert.deepEqual(signs(mul(tensor([-0, 0]), 2)), ["-0", "0"]);
  assert.deepEqual(signs(div(tensor([-0]), 4)), ["-0"]);
  assert.deepEqual(signs(mulScalar(tensor([0]), -3)), ["-0"]);
  // ATen's pow backward is grad * (e * x.pow(e - 1)) with pow's sqrt / rsqrt cases: at -0 and
  // -inf, x^0.5 gives -inf, NaN (1 / sqrt) and x^1.5 gives -0, NaN (sqrt), as sqrt's own.
  const grads = (e: number) => {
    const x = tensor([-0, -Infinity], undefined, { requiresGrad: true });
    pow(x, e).backward(tensor([1, 1]));
    return signs(x.grad!);
  };
  assert.deepEqual(grads(0.5), ["-Infinity", "NaN"]);
  assert.deepEqual(grads(1.5), ["-0", "NaN"]);
  const s = tensor([-0, -Infinity], undefined, { requiresGrad: true });
  sqrt(s).backward(tensor([1, 1]));
  assert.deepEqual(signs(s.grad!), grads(0.5));
});

Deno.test("nested noGrad leaves gradients off until the outer call returns", () => {
  noGrad(() => {
    noGrad(() => {});
    assert.equal(isGradEnabled(), false);
  });
  assert.equal(isGradEnabled(), true);
});

Deno.test("abs's gradient is g·sign(x) as PyTorch's: a NaN or infinite g at x = 0 or NaN is NaN", () => {
  // ATen: abs backward = grad * self.sgn(), and sgn(±0) = sgn(NaN) = 0, so these are IEEE
  // products: NaN·0 = ±inf·0 = NaN, and -1·0 = -0. A select returned 0 for all of them.
  const x = tensor([0, -0, NaN, 0, 2, -2], undefined, { requiresGrad: true });
  abs(x).backward(tensor([NaN, Infinity, -Infinity, -1, NaN, -3]));
  const got = Array.from(x.grad!.data);
  [NaN, NaN, NaN, -0, NaN, 3].forEach((want, i) =>
    assert.ok(Object.is(got[i], want), `grad[${i}]: ${got[i]} vs ${want}`)
  );
});

Deno.test("full keeps the sign of a -0 fill value, as torch.full", () => {
  // A new Float32Array is +0 throughout: skipping the fill for -0 gave +0 (1 / x was +inf).
  const x = full([3], -0);
  assert.ok(Array.from(x.data).every((v) => Object.is(v, -0)), `${Array.from(x.data)}`);
  assert.ok(Object.is(full([], -0).item(), -0));
  assert.ok(Object.is(full([2], 0).data[1], 0));
});
