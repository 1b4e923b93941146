import assert from "node:assert/strict";
import { Adam, AdamW } from "../lib/optim/adam.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { cosineSchedule, stepSchedule } from "../lib/optim/schedule.ts";
import { remapParameterState } from "../lib/optim/param_state.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { mseLoss } from "../lib/nn/losses.ts";
import { randn } from "../lib/creation.ts";
import { tensor, zeros } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { fromFloat32, type Tensor } from "../lib/tensor.ts";
import { assertClose, assertThrows, randomArray } from "./_nn_reference.ts";

const STEPS = 6;

/** Gradients for each step, deterministic. */
function gradients(n: number, seed: number): Float32Array[] {
  return Array.from({ length: STEPS }, (_, s) => randomArray(n, seed * 100 + s, -1, 1));
}

interface SgdRef {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** torch.optim.SGD, transcribed in float64. */
function sgdReference(p0: Float32Array, grads: Float32Array[], o: SgdRef): Float64Array {
  const p = Float64Array.from(p0);
  let buf: Float64Array | null = null;
  for (const g of grads) {
    const d = Float64Array.from(g, (v, i) => v + o.weightDecay * p[i]);
    if (o.momentum !== 0) {
      if (buf === null) buf = Float64Array.from(d);
      else {for (let i = 0; i < d.length; i++) {
          buf[i] = o.momentum * buf[i] + (1 - o.dampening) * d[i];
        }}
      for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * buf[i] : buf[i];
    }
    for (let i = 0; i < p.length; i++) p[i] -= o.lr * d[i];
  }
  return p;
}

Deno.test("SGD matches PyTorch's algorithm over several steps", () => {
  const cases: SgdRef[] = [
    { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0.05, nesterov: false },
    { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false },
    { lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 0.01, nesterov: false },
    { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: true },
    { lr: 0.2, momentum: 0.5, dampening: 1, weightDecay: 0, nesterov: false },
  ];
  cases.forEach((o, c) => {
    const n = 37;
    const p0 = randomArray(n, c, -1, 1);
    const grads = gradients(n, c);
    const w = fromFloat32(p0.slice(), [n], true);
    const opt = new SGD([w], o);
    for (const g of grads) {
      w.grad = fromFloat32(g, [n]);
      opt.step();
    }
    assertClose(w.data, sgdReference(p0, grads, o), `SGD case ${c}`, { rtol: 1e-5, atol: 1e-6 });
  });
});

interface AdamRef {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/** torch.optim.Adam (decoupled = false) / AdamW (true), transcribed in float64. */
function adamReference(
  p0: Float32Array,
  grads: Float32Array[],
  o: AdamRef,
  decoupled: boolean,
): Float64Array {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length), v = new Float64Array(p.length);
  const vmax = new Float64Array(p.length);
  grads.forEach((grad, s) => {
    const step = s + 1;
    const [b1, b2] = o.betas;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (decoupled) p[i] *= 1 - o.lr * o.weightDecay;
      else g += o.weightDecay * p[i];
      m[i] += (1 - b1) * (g - m[i]);
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      let vv = v[i];
      if (o.amsgrad) vv = vmax[i] = Math.max(vmax[i], v[i]);
      const denom = Math.sqrt(vv) / Math.sqrt(1 - b2 ** step) + o.eps;
      p[i] -= o.lr / (1 - b1 ** step) * m[i] / denom;
    }
  });
  return p;
}

Deno.test("Adam and AdamW match PyTorch's algorithm over several steps", () => {
  const cases: AdamRef[] = [
    { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false },
    { lr: 5e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1, amsgrad: false },
    { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05, amsgrad: true },
    { lr: 1e-1, betas: [0, 0.5], eps: 1e-8, weightDecay: 0, amsgrad: true },
  ];
  cases.forEach((o, c) => {
    for (const Cls of [Adam, AdamW]) {
      const n = 41;
      const p0 = randomArray(n, 10 + c, -1, 1);
      const grads = gradients(n, 10 + c);
      const w = fromFloat32(p0.slice(), [n], true);
      const opt = new Cls([w], o);
      for (const g of grads) {
        w.grad = fromFloat32(g, [n]);
        opt.step();
      }
      const want = adamReference(p0, grads, o, Cls === AdamW);
      assertClose(w.data, want, `${Cls.name} case ${c}`, { rtol: 1e-4, atol: 1e-6 });
    }
  });
});

Deno.test("AdamW defaults to weight decay 1e-2, Adam to 0", () => {
  const p = [zeros([1], { requiresGrad: true })];
  assert.equal(new AdamW(p).weightDecay, 1e-2);
  assert.equal(new Adam(p).weightDecay, 0);
  assert.equal(new AdamW(p).decoupledWeightDecay, true);
  assert.equal(new Adam(p).decoupledWeightDecay, false);
});

Deno.test("optimizers skip parameters without a gradient and zeroGrad clears them", () => {
  const a = tensor([1, 2], [2], { requiresGrad: true });
  const b = tensor([3], [1], { requiresGrad: true });
  for (const opt of [new SGD([a, b], { lr: 0.5, momentum: 0.9 }), new Adam([a, b], { lr: 0.1 })]) {
    a.data.set([1, 2]);
    b.data.set([3]);
    a.grad = tensor([1, 1], [2]);
    b.grad = null;
    opt.step();
    assert.notDeepEqual(Array.from(a.data), [1, 2]);
    assert.deepEqual(Array.from(b.data), [3]);
    // b gets no state until it has a gradient
    assert.equal(Object.keys(opt.stateDict()).filter((k) => k.startsWith("state.1.")).length, 0);
    opt.zeroGrad();
    assert.equal(a.grad, null);
  }
});

Deno.test("SGD with momentum starts its buffer from the first gradient it sees", () => {
  // b has no gradient on step 1: its buffer must be initialised on step 2, not zero-started.
  const a = tensor([0], [1], { requiresGrad: true });
  const b = tensor([0], [1], { requiresGrad: true });
  const opt = new SGD([a, b], { lr: 1, momentum: 0.5, dampening: 0.5 });
  a.grad = tensor([1], [1]);
  opt.step();
  b.grad = tensor([1], [1]);
  a.grad = tensor([1], [1]);
  opt.step();
  // a: buf 1, then 0.5 + 0.5 = 1 -> p = -2; b: buf = 1 (init, no dampening) -> p = -1
  assert.deepEqual([a.data[0], b.data[0]], [-2, -1]);
});

Deno.test("optimizer state follows remapParameterState (topology changes)", () => {
  const n = 5;
  const w = fromFloat32(new Float32Array(n), [n], true);
  const opt = new SGD([w], { lr: 1, momentum: 0.5 });
  w.grad = fromFloat32(new Float32Array([1, 2, 3, 4, 5]), [n]);
  opt.step(); // buf = grad
  // Connection k now holds old connection oldIndexOf[k]; -1 is a new connection.
  remapParameterState(w, new Int32Array([4, -1, 0, 2, -1]));
  assert.deepEqual(Array.from(opt.stateDict()["state.0.momentum_buffer"].data), [5, 0, 1, 3, 0]);
  w.data.fill(0);
  w.grad = fromFloat32(new Float32Array(n), [n]);
  opt.step(); // buf = 0.5 * buf; p = -buf
  assert.deepEqual(Array.from(w.data), [-2.5, 0, -0.5, -1.5, 0]);

  const adam = new Adam([w], { lr: 0.1 });
  w.grad = fromFloat32(new Float32Array([1, 2, 3, 4, 5]), [n]);
  adam.step();
  const before = adam.stateDict();
  remapParameterState(w, new Int32Array([1, 0, -1, 3, 4]));
  const after = adam.stateDict();
  for (const name of ["exp_avg", "exp_avg_sq"]) {
    const b = before[`state.0.${name}`].data, a = after[`state.0.${name}`].data;
    assert.deepEqual(Array.from(a), [b[1], b[0], 0, b[3], b[4]], name);
  }
});

Deno.test("SGD momentum follows a SparseLinear prune-and-regrow (setPattern)", () => {
  const layer = new SparseLinear(6, 4, { sparsity: 0.5, seed: 1 });
  const opt = new SGD(layer, { lr: 0.1, momentum: 0.9 });
  const loss = mseLoss(layer.forward(randn([3, 6], { seed: 2 })), randn([3, 4], { seed: 3 }));
  loss.backward();
  opt.step();
  const before = opt.stateDict()["state.0.momentum_buffer"].data.slice();
  assert.ok(new Set(before).size > 2, "distinct buffer entries, so a wrong order shows");
  const [outs, ins] = [layer.indices.data.slice(0, layer.nnz), layer.indices.data.slice(layer.nnz)];
  // Drop the first connection, keep the rest, grow one that did not exist.
  const taken = new Set(Array.from(outs, (o, k) => o * 6 + ins[k]));
  let grown = 0;
  while (taken.has(grown)) grown++;
  const rows = Int32Array.from([...outs.slice(1), Math.floor(grown / 6)]);
  const cols = Int32Array.from([...ins.slice(1), grown % 6]);
  const values = Float32Array.from([...layer.weights.data.slice(1), 0]);
  layer.setPattern(rows, cols, values);
  const after = opt.stateDict()["state.0.momentum_buffer"].data;
  // Every kept connection keeps its buffer entry (wherever it lands in the new CSR order).
  const newOuts = layer.indices.data.slice(0, layer.nnz);
  const newIns = layer.indices.data.slice(layer.nnz);
  for (let k = 0; k < layer.nnz; k++) {
    const old = Array.from(outs).findIndex((o, j) => o === newOuts[k] && ins[j] === newIns[k]);
    assert.equal(after[k], old === -1 ? 0 : before[old], `connection ${k}`);
  }
  assert.equal(after.filter((_, k) => newOuts[k] * 6 + newIns[k] === grown)[0], 0);
});

Deno.test("optimizer stateDict round-trips and loadStateDict validates first", () => {
  const n = 4;
  const grads = gradients(n, 99);
  const p0 = randomArray(n, 98);
  const run = (opt: Adam, w: Tensor, from: number, to: number) => {
    for (let s = from; s < to; s++) {
      w.grad = fromFloat32(grads[s], [n]);
      opt.step();
    }
  };
  const w1 = fromFloat32(p0.slice(), [n], true);
  const full = new Adam([w1], { lr: 0.05, amsgrad: true });
  run(full, w1, 0, STEPS);

  const w2 = fromFloat32(p0.slice(), [n], true);
  const first = new Adam([w2], { lr: 0.05, amsgrad: true });
  run(first, w2, 0, 3);
  const saved = first.stateDict();
  assert.deepEqual(Object.keys(saved).sort(), [
    "state.0.exp_avg",
    "state.0.exp_avg_sq",
    "state.0.max_exp_avg_sq",
    "state.0.step",
  ]);
  const resumed = new Adam([w2], { lr: 0.05, amsgrad: true });
  resumed.loadStateDict(saved);
  run(resumed, w2, 3, STEPS);
  assert.deepEqual(Array.from(w2.data), Array.from(w1.data));

  const fresh = new Adam([w2], { lr: 0.05 });
  assertThrows(
    () => fresh.loadStateDict({ ...saved, "state.0.exp_avg": zeros([3]) }),
    Error,
    /optimizer is unchanged: "state.0.exp_avg" has 3 elements, but parameter 0 has 4/,
  );
  assertThrows(
    () => fresh.loadStateDict({ "state.7.exp_avg": zeros([4]) }),
    Error,
    /unexpected key "state.7.exp_avg"/,
  );
  assert.deepEqual(fresh.stateDict(), {});
  // Loading replaces the whole state, as PyTorch: an empty state dict means step 1 next.
  first.loadStateDict(fresh.stateDict());
  assert.deepEqual(first.stateDict(), {});
  const w3 = fromFloat32(p0.slice(), [n], true);
  const restart = new Adam([w3], { lr: 0.05, amsgrad: true });
  run(restart, w3, 0, 1);
  w2.storage.write(p0);
  run(first, w2, 0, 1);
  assert.deepEqual(Array.from(w2.data), Array.from(w3.data));
});

Deno.test("a resumed SparseLinear and its optimizer load in either order (PyTorch)", () => {
  // The model's loadStateDict leaves optimizer state alone, as torch's load_state_dict: it
  // used to move the state along with the connections, scrambling an optimizer state dict
  // loaded first (already laid out for the checkpoint's pattern).
  const a = new SparseLinear(6, 4, { sparsity: 0.5, seed: 1 });
  const optA = new Adam(a, { lr: 0.1 });
  for (let step = 0; step < 2; step++) {
    optA.zeroGrad();
    mseLoss(a.forward(randn([3, 6], { seed: step })), zeros([3, 4])).backward();
    optA.step();
  }
  const model = a.stateDict();
  const optimizer = optA.stateDict();
  for (const optimizerFirst of [false, true]) {
    const b = new SparseLinear(6, 4, { sparsity: 0.5, seed: 2 }); // another pattern, same nnz
    const optB = new Adam(b, { lr: 0.1 });
    if (optimizerFirst) optB.loadStateDict(optimizer);
    b.loadStateDict(model);
    if (!optimizerFirst) optB.loadStateDict(optimizer);
    const state = optB.stateDict();
    for (const key of ["state.0.exp_avg", "state.0.exp_avg_sq"]) {
      assert.deepEqual(
        (state[key] as Tensor).toArray(),
        (optimizer[key] as Tensor).toArray(),
        `${key}, optimizer loaded ${optimizerFirst ? "first" : "second"}`,
      );
    }
  }
});

Deno.test("optimizer options are validated with errors naming the option", () => {
  const p = [zeros([2], { requiresGrad: true })];
  assertThrows(() => new SGD(p, { lr: -1 }), RangeError, /Invalid lr: -1/);
  assertThrows(() => new SGD(p, { lr: NaN }), RangeError, /Invalid lr: NaN/);
  assertThrows(
    () => new SGD(p, { lr: 0.1, momentum: -0.1 }),
    RangeError,
    /Invalid momentum: -0.1;.*\[0, inf\)/,
  );
  assertThrows(() => new SGD(p, { lr: 0.1, momentum: Infinity }), RangeError, /Invalid momentum/);
  assertThrows(() => new SGD(p, { lr: 0.1, dampening: NaN }), RangeError, /Invalid dampening/);
  // torch.optim.SGD accepts these (momentum only needs to be >= 0; dampening is not checked).
  new SGD(p, { lr: 0.1, momentum: 1, dampening: 2 });
  assertThrows(() => new SGD(p, { lr: 0.1, weightDecay: -1 }), RangeError, /Invalid weightDecay/);
  assertThrows(() => new SGD(p, { lr: 0.1, nesterov: true }), RangeError, /Invalid nesterov/);
  assertThrows(
    () => new SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    RangeError,
    /Invalid nesterov.*dampening 0/,
  );
  assertThrows(() => new Adam(p, { betas: [1, 0.999] }), RangeError, /Invalid beta1/);
  assertThrows(() => new Adam(p, { betas: [0.9, -0.1] }), RangeError, /Invalid beta2/);
  assertThrows(() => new AdamW(p, { eps: -1 }), RangeError, /Invalid eps/);
  assertThrows(() => new SGD([], { lr: 0.1 }), RangeError, /empty parameter list/);
  assertThrows(() => new SGD([p[0], p[0]], { lr: 0.1 }), RangeError, /appears more than once/);
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new SGD([1 as any], { lr: 0.1 }), TypeError, /parameter 0 must be a Tensor/);
  const opt = new SGD(p, { lr: 0.1 });
  assertThrows(() => (opt.lr = -0.5), RangeError, /Invalid lr: -0.5/);
  // A gradient must have its tensor's shape (PyTorch: "assigned grad has data of a different
  // size"); an equal element count in another shape is refused too.
  assertThrows(
    () => (p[0].grad = zeros([3])),
    ShapeError,
    /Cannot assign a gradient of shape \[3\] to a tensor of shape \[2\]/,
  );
  assertThrows(() => (p[0].grad = zeros([2, 1])), ShapeError, /shape \[2, 1\]/);
  assert.equal(p[0].grad, null);
  opt.step(); // no gradient: skipped
});

Deno.test("cosine and step schedules set the optimizer's lr", () => {
  const opt = new SGD([zeros([1], { requiresGrad: true })], { lr: 0.1 });
  const cosine = cosineSchedule(opt, { totalSteps: 4, minLr: 0.01 });
  const lrs = [1, 2, 3, 4, 5].map(() => cosine.step());
  const want = [1, 2, 3, 4, 4].map((t) => 0.01 + 0.09 * (1 + Math.cos(Math.PI * t / 4)) / 2);
  assertClose(lrs, want, "cosine lr", { rtol: 1e-12, atol: 0 });
  assert.equal(opt.lr, lrs[4]);
  assert.equal(cosine.count, 5);

  opt.lr = 1;
  const steps = stepSchedule(opt, { stepSize: 2, gamma: 0.5 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => steps.step()), [1, 0.5, 0.5, 0.25, 0.25]);
  assertThrows(() => stepSchedule(opt, { stepSize: 0 }), RangeError, /Invalid stepSize: 0/);
  assertThrows(() => cosineSchedule(opt, { totalSteps: 1.5 }), RangeError, /Invalid totalSteps/);
});

Deno.test("a dropped optimizer's state is collected (the topology registry holds it weakly)", async () => {
  const script = new URL("./fixtures/dropped_optimizer_state.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  assert.equal(out.code, 0, text.decode(out.stderr));
  const result = JSON.parse(text.decode(out.stdout).trim().split("\n").at(-1)!);
  assert.deepEqual(result, { kept: true, droppedAlive: 0 });
});

// ---------------------------------- cases planted bugs showed untested (mutation testing) ----

Deno.test("PyTorch's checks and defaults: Adam rejects beta2 = 1, StepLR's gamma is 0.1", () => {
  const p = tensor([1, 1]);
  assertThrows(() => new Adam([p], { betas: [0.9, 1] }), RangeError);
  const opt = new SGD([tensor([1])], { lr: 1 });
  assert.equal(stepSchedule(opt, { stepSize: 1 }).step(), 0.1);
});

Deno.test("optimizer state: a stateless SGD records its step; a parameter past the end is refused", () => {
  const p = tensor([1, 1], [2], { requiresGrad: true });
  const opt = new SGD([p], { lr: 0.1 });
  mseLoss(p, zeros([2])).backward();
  opt.step();
  assert.deepEqual(Object.keys(opt.stateDict()), ["state.0.step"]);
  const withMomentum = new SGD([tensor([1, 1])], { lr: 0.1, momentum: 0.9 });
  assertThrows(
    () => withMomentum.loadStateDict({ "state.1.step": tensor(1) }),
    Error,
    /unexpected key "state.1.step"/,
  );
});

Deno.test("without weight decay an infinite parameter stays infinite and its state finite (PyTorch)", () => {
  // torch.optim adds weight_decay * param to the gradient only when weight_decay != 0 (AdamW
  // never does): 0 · inf would turn the update, and the momentum or moments, into NaN.
  const make = [
    (p: Tensor[]) => new SGD(p, { lr: 0.1 }),
    (p: Tensor[]) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true }),
    (p: Tensor[]) => new Adam(p, { lr: 0.1, amsgrad: true }),
    (p: Tensor[]) => new AdamW(p, { lr: 0.1 }), // default weightDecay 1e-2: decoupled
  ];
  make.forEach((mk, c) => {
    const p = tensor([Infinity, -Infinity, 1], [3], { requiresGrad: true });
    const opt = mk([p]);
    for (let s = 0; s < 2; s++) {
      p.grad = tensor([1, -1, 1], [3]);
      opt.step();
    }
    const name = `case ${c} (${opt.constructor.name})`;
    assert.deepEqual(Array.from(p.data.slice(0, 2)), [Infinity, -Infinity], name);
    assert.ok(Number.isFinite(p.data[2]), name);
    for (const [key, t] of Object.entries(opt.stateDict())) {
      assert.ok(t.toArray().every(Number.isFinite), `${name}: ${key} = ${Array.from(t.toArray())}`);
    }
  });
});
