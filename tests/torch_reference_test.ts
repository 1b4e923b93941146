// Against PyTorch itself: files written by PyTorch 2.11 and safetensors 0.8.0 (on the GPU machine
// lent to the eleventh session; tests/fixtures/torch/make_reference.py regenerates them) load
// here, and what this library computes from them matches what PyTorch computed: logits, losses,
// every gradient, parameters after three optimizer steps, LayerNorm, losses, schedules, and the
// logits PyTorch got from a checkpoint this library wrote.
//
// Each quantity was computed by PyTorch in float64 (the yardstick) and float32 (what a PyTorch
// user gets). Ours must be within 4x PyTorch float32's own error, plus 4 float32 roundings of the
// largest magnitude (for quantities where float32 PyTorch happens to land almost exactly): a
// wrong index, layout or formula is off by orders of magnitude more.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  Adam,
  AdamW,
  cosineSchedule,
  crossEntropy,
  Flatten,
  LayerNorm,
  layerNorm,
  Linear,
  loadStateDict,
  type Module,
  mseLoss,
  type Optimizer,
  ReLU,
  Sequential,
  SGD,
  SparseLinear,
  stepSchedule,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { loadSafetensorsSync, type SafeTensor } from "../lib/io/safetensors.ts";
import { WideMnistNet } from "../examples/models.ts";

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/torch/${name}`, import.meta.url));
const reference = loadSafetensorsSync(fixture("reference.safetensors"));
const ref = reference.tensors;

function entry(key: string): SafeTensor {
  const t = ref[key];
  if (t === undefined) throw new Error(`reference.safetensors has no "${key}"`);
  return t;
}
const values = (key: string) => Float64Array.from(entry(key).data as ArrayLike<number>);
const floats = (key: string) => entry(key).data as Float32Array;
const labels = (key: string) => Int32Array.from(entry(key).data as BigInt64Array, Number);

/** Asserts `ours` is as close to PyTorch's float64 `key` ("@" = dtype) as float32 PyTorch is. */
function expectTorch(what: string, ours: ArrayLike<number>, key: string): void {
  const exact = values(key.replace("@", "f64"));
  const torch32 = values(key.replace("@", "f32"));
  assert.equal(
    ours.length,
    exact.length,
    `${what}: ${ours.length} values, PyTorch has ${exact.length}`,
  );
  let err = 0, torchErr = 0, scale = 0;
  for (let i = 0; i < exact.length; i++) {
    err = Math.max(err, Math.abs(ours[i] - exact[i]));
    torchErr = Math.max(torchErr, Math.abs(torch32[i] - exact[i]));
    scale = Math.max(scale, Math.abs(exact[i]));
  }
  const allowed = 4 * torchErr + 4 * 2 ** -24 * scale;
  assert.ok(
    err <= allowed,
    `${what}: max |ours - PyTorch float64| = ${err.toExponential(2)} > ${
      allowed.toExponential(2)
    } ` +
      `(PyTorch float32: ${torchErr.toExponential(2)})`,
  );
}

function expectGradients(prefix: string, model: Module, input: Tensor): void {
  expectTorch(`${prefix} input gradient`, input.grad!.data, `${prefix}.@.grad.input`);
  for (const [name, p] of model.namedParameters()) {
    expectTorch(`${prefix} gradient of ${name}`, p.grad!.data, `${prefix}.@.grad.${name}`);
  }
}

/** Logits, cross-entropy and every gradient of `model` on `input`, against PyTorch's `prefix`. */
function expectForwardBackward(prefix: string, model: Module, input: Tensor): void {
  const logits = model.forward(input);
  const loss = crossEntropy(logits, labels(`${prefix}.labels`));
  loss.backward();
  expectTorch(`${prefix} logits`, logits.data, `${prefix}.@.logits`);
  expectTorch(`${prefix} loss`, loss.data, `${prefix}.@.loss`);
  expectGradients(prefix, model, input);
}

/** Three steps of `opt` on one batch, then the losses and parameters against PyTorch's `key`. */
function expectThreeSteps(
  prefix: string,
  name: string,
  model: Module,
  opt: Optimizer,
  input: () => Tensor,
): void {
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    opt.zeroGrad();
    const loss = crossEntropy(model.forward(input()), labels(`${prefix}.labels`));
    loss.backward();
    opt.step();
    losses.push(loss.data[0]);
  }
  expectTorch(`${name} losses`, losses, `${prefix}.@.${name}.losses`);
  for (const [param, p] of model.namedParameters()) {
    expectTorch(`${name}: ${param} after 3 steps`, p.data, `${prefix}.@.${name}.param.${param}`);
  }
}

/** The PyTorch package's two-layer model, loaded from the file `safetensors.torch.save_file` wrote. */
async function seqModel(file = "seq.safetensors"): Promise<Sequential> {
  const model = new Sequential(
    new Flatten(),
    new SparseLinear(64, 200),
    new LayerNorm(200),
    new ReLU(),
    new SparseLinear(200, 10),
  );
  await loadStateDict(model, fixture(file));
  return model;
}
const seqInput = () => tensor(floats("seq.x"), [16, 1, 8, 8], { requiresGrad: true });

Deno.test("the fixtures were written by PyTorch and the safetensors package", () => {
  const notes = JSON.parse(reference.metadata?.notes ?? "{}");
  assert.match(notes.torch, /^2\./);
  assert.match(notes.writer, /^safetensors /);
  assert.equal(
    notes["seq.sparse_mm_max_diff"] < 1e-12,
    true,
    "the PyTorch layer is torch.sparse.mm's",
  );
});

Deno.test("a PyTorch SparseLinear checkpoint loads and gives PyTorch's logits, loss and gradients", async () => {
  const model = await seqModel();
  const layers = [model.at(1), model.at(4)] as SparseLinear[];
  // The second layer's connections were drawn with repeats and coalesced, as the seed's `user`
  // connectivity: 187 of 200 draws remain, so the checkpoint sets nnz as well as the pattern.
  assert.deepEqual(layers.map((l) => l.nnz), [1280, 187]);
  expectForwardBackward("seq", model, seqInput());
});

Deno.test("three optimizer steps match torch.optim: SGD (momentum, Nesterov, dampening, weight decay), Adam, AMSGrad, AdamW", async () => {
  const optimizers: Record<string, (model: Module) => Optimizer> = {
    sgd: (m) => new SGD(m.parameters(), { lr: 0.1, momentum: 0.9 }),
    sgd_nesterov_wd: (m) =>
      new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
    sgd_dampening_wd: (m) =>
      new SGD(m.parameters(), { lr: 0.1, momentum: 0.8, dampening: 0.3, weightDecay: 1e-3 }),
    adam: (m) => new Adam(m.parameters(), { lr: 1e-2 }),
    adam_amsgrad_wd: (m) =>
      new Adam(m.parameters(), { lr: 1e-2, weightDecay: 1e-2, amsgrad: true }),
    adamw: (m) => new AdamW(m.parameters(), { lr: 1e-2, weightDecay: 0.1 }),
  };
  for (const [name, make] of Object.entries(optimizers)) {
    const model = await seqModel();
    expectThreeSteps("seq", name, model, make(model), seqInput);
  }
});

Deno.test("a layer saved with its connections in any order: 3-D and 1-D input, gradients in PyTorch's order", async () => {
  const layer = new SparseLinear(37, 23);
  await loadStateDict(layer, fixture("layer3d.safetensors"));
  const x = tensor(floats("layer3d.x"), [3, 5, 37], { requiresGrad: true });
  const y = layer.forward(x);
  y.mul(tensor(floats("layer3d.gy"), [3, 5, 23])).sum().backward();
  expectTorch("y", y.data, "layer3d.@.y");
  expectTorch("input gradient", x.grad!.data, "layer3d.@.grad.input");
  const [weights, bias] = layer.parameters();
  expectTorch("bias gradient", bias.grad!.data, "layer3d.@.grad.bias");
  // The layer keeps its connections in row-major order; PyTorch's file has them shuffled.
  const file = loadSafetensorsSync(fixture("layer3d.safetensors")).tensors.indices;
  const torchOrder = file.data as BigInt64Array;
  const nnz = torchOrder.length / 2;
  const ours = layer.indices.data;
  const position = new Map<number, number>();
  for (let k = 0; k < nnz; k++) position.set(ours[k] * 37 + ours[nnz + k], k);
  const grad = Float64Array.from({ length: nnz }, (_, k) => {
    const p = position.get(Number(torchOrder[k]) * 37 + Number(torchOrder[nnz + k]));
    assert.ok(p !== undefined, `connection ${k} of the file is missing from the layer`);
    return weights.grad!.data[p];
  });
  expectTorch("weight gradient", grad, "layer3d.@.grad.weights");
  const y1 = layer.forward(tensor(floats("layer3d.x1"), [37]));
  assert.deepEqual(y1.shape, [23]);
  expectTorch("1-D input", y1.data, "layer3d.@.y1");
});

Deno.test("the notebook's wide model (repeat, scale/shift, 4 x relu(LayerNorm), per-class sums) matches PyTorch", async () => {
  const build = async () => {
    // sc5 has 800 connections for 10 x 40 collapsed weights: the CPU's collapsed class-sum path.
    const net = new WideMnistNet({ width: 40, repeat: 2, sparsity: 0.5 });
    await loadStateDict(net, fixture("wide.safetensors"));
    return net;
  };
  const x = () => tensor(floats("wide.x"), [16, 784], { requiresGrad: true });
  const net = await build();
  const sc5 = net.stateDict()["sc5.weights"].shape[0];
  assert.ok(sc5 >= 2 * 10 * 40, `sc5 has ${sc5} connections: too few for the collapsed path`);
  expectForwardBackward("wide", net, x());
  const trained = await build();
  const opt = new SGD(trained.parameters(), { lr: 0.01, momentum: 0.9, nesterov: true });
  expectThreeSteps("wide", "sgd_nesterov", trained, opt, x);
});

Deno.test("nn.Linear checkpoints: (out, in) weights and the notebook's dense model", async () => {
  const model = new Sequential(
    new Flatten(),
    new Linear(64, 50),
    new LayerNorm(50),
    new ReLU(),
    new Linear(50, 10),
  );
  await loadStateDict(model, fixture("dense.safetensors"));
  expectForwardBackward(
    "dense",
    model,
    tensor(floats("dense.x"), [8, 1, 8, 8], { requiresGrad: true }),
  );
});

Deno.test("LayerNorm over two dimensions, cross-entropy and MSE with both reductions, as PyTorch", () => {
  const x = tensor(floats("ln.x"), [3, 4, 6], { requiresGrad: true });
  const w = tensor(floats("ln.weight"), [4, 6], { requiresGrad: true });
  const b = tensor(floats("ln.bias"), [4, 6], { requiresGrad: true });
  const y = layerNorm(x, [4, 6], w, b, 1e-5);
  y.mul(tensor(floats("ln.gy"), [3, 4, 6])).sum().backward();
  expectTorch("layer_norm", y.data, "ln.@.y");
  expectTorch("layer_norm input gradient", x.grad!.data, "ln.@.grad.input");
  expectTorch("layer_norm weight gradient", w.grad!.data, "ln.@.grad.weight");
  expectTorch("layer_norm bias gradient", b.grad!.data, "ln.@.grad.bias");
  for (const reduction of ["mean", "sum"] as const) {
    const a = tensor(floats("loss.logits"), [8, 5], { requiresGrad: true });
    const ce = crossEntropy(a, labels("loss.labels"), { reduction });
    ce.backward();
    expectTorch(`cross_entropy ${reduction}`, ce.data, `loss.@.ce_${reduction}`);
    expectTorch(`cross_entropy ${reduction} gradient`, a.grad!.data, `loss.@.ce_${reduction}.grad`);
    const p = tensor(floats("loss.logits"), [8, 5], { requiresGrad: true });
    const mse = mseLoss(p, tensor(floats("loss.target"), [8, 5]), { reduction });
    mse.backward();
    expectTorch(`mse_loss ${reduction}`, mse.data, `loss.@.mse_${reduction}`);
    expectTorch(`mse_loss ${reduction} gradient`, p.grad!.data, `loss.@.mse_${reduction}.grad`);
  }
});

Deno.test("cosineSchedule and stepSchedule give CosineAnnealingLR's and StepLR's rates", () => {
  const param = () => [zeros([1], { requiresGrad: true })];
  const cosine = cosineSchedule(new SGD(param(), { lr: 0.1 }), { totalSteps: 10, minLr: 0.01 });
  const step = stepSchedule(new SGD(param(), { lr: 0.1 }), { stepSize: 3, gamma: 0.5 });
  const torchCosine = values("schedule.cosine");
  const torchStep = values("schedule.step");
  for (let t = 0; t < 10; t++) {
    assert.ok(Math.abs(cosine.step() - torchCosine[t]) < 1e-12, `cosine lr at step ${t + 1}`);
    assert.ok(Math.abs(step.step() - torchStep[t]) < 1e-12, `step lr at step ${t + 1}`);
  }
});

Deno.test("a checkpoint this library wrote gives the same logits in PyTorch", async () => {
  // ours_seq.safetensors was written by saveStateDict; PyTorch read it with
  // safetensors.torch.load_file into the same model (load_state_dict strict) and ran seq.x.
  const model = await seqModel("ours_seq.safetensors");
  expectTorch("logits", model.forward(seqInput()).data, "ours.@.logits");
});
