/**
 * The bad-input corpus of issue 7: one test per row. Each asserts the error class and that the
 * message names the offending argument (or file) and what is allowed; calls on an existing
 * model check that a rejected call changed no state (weights, bias, connectivity, optimizer
 * state compared bit for bit before and after).
 *
 * NaN / Inf policy (documented here and in README): the forward pass propagates IEEE values
 * (a NaN input gives NaN in the outputs it reaches, nothing else); the training loop `fit`
 * stops with `NonFiniteLossError` at the first non-finite loss, naming the step, before that
 * step's backward and update.
 *
 * "Missing native library" and "ABI mismatch" run in a subprocess (they need a fresh loader);
 * the ABI test compiles a stub library with `cc` and is skipped, saying so, when `cc` or the
 * run permission is missing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  EXPECTED_ABI_VERSION,
  getNumThreads,
  libraryFileName,
  setNumThreads,
} from "../ffi/library.ts";
import { noGrad } from "../lib/autograd.ts";
import { full, tensor, zeros } from "../lib/creation.ts";
import { decodeIdx, encodeIdx } from "../lib/data/idx.ts";
import { batches } from "../lib/data/batches.ts";
import { LibraryError, NonFiniteLossError, ShapeError } from "../lib/errors.ts";
import { FormatError } from "../lib/io/format_error.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  MAX_HEADER_BYTES,
} from "../lib/io/safetensors.ts";
import { loadStateDict, safetensorsToStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { ActivationSparsity } from "../lib/nn/activation_sparsity.ts";
import { Dropout, dropout } from "../lib/nn/dropout.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { Adam, AdamW } from "../lib/optim/adam.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { fromFloat32, IndexTensor, type Tensor } from "../lib/tensor.ts";
import { matmul } from "../lib/ops/matmul.ts";
import { csrDropGrow, denseGradTopk, sampleAbsent, topk } from "../lib/sparsity/topk.ts";
import { SparsePattern } from "../lib/sparsity/pattern.ts";
import { randomConnectionCount } from "../lib/sparsity/random.ts";
import { Generator } from "../lib/random.ts";
import { broadcastShapes } from "../lib/ops/broadcast.ts";
import { erkSparsities } from "../lib/sparsity/erk.ts";
import { Linear } from "../lib/nn/linear.ts";
import { countCorrect } from "../lib/train/metrics.ts";
import { stepSchedule } from "../lib/optim/schedule.ts";
import { fit } from "../lib/train/fit.ts";
import { sum } from "../lib/ops/reduce.ts";
import { reshape } from "../lib/ops/shape.ts";
import { symbols } from "../ffi/symbols.ts";
import { parseTrainArgs, UsageError } from "../examples/train_mnist.ts";
import { type ErrorClass, rejects, rejectsAsync } from "./_rejects.ts";

// ------------------------------------------------------------------------------ helpers ----

/** Everything a call could change on a layer, as comparable plain data. */
function layerState(layer: SparseLinear): unknown {
  return {
    nnz: layer.nnz,
    weights: Array.from(layer.weights.toArray()),
    bias: layer.bias === null ? null : Array.from(layer.bias.toArray()),
    indices: Array.from(layer.indices.data),
    grad: layer.weights.grad === null ? null : Array.from(layer.weights.grad.toArray()),
  };
}

/** Runs a rejected call on `layer` and checks that it changed nothing. */
function unchanged(layer: SparseLinear, fn: () => void): void {
  const before = layerState(layer);
  fn();
  assert.deepEqual(layerState(layer), before, "a rejected call changed the layer");
}

function smallLayer(options: Record<string, unknown> = {}): SparseLinear {
  return new SparseLinear(6, 4, { sparsity: 0.5, seed: 3, ...options });
}

/** Registers one row of the corpus. */
function row(name: string, fn: () => void | Promise<void>): void {
  Deno.test(`bad input: ${name}`, fn);
}

// ------------------------------------------------------------------- layer inputs ----

row("wrong input width", () => {
  const layer = smallLayer();
  unchanged(
    layer,
    () =>
      rejects(() => layer.forward(zeros([2, 5])), ShapeError, /\[2, 5\]/, /expected \(N, \*, 6\)/),
  );
});

row("wrong input rank (scalar)", () => {
  const layer = smallLayer();
  rejects(() => layer.forward(tensor(1)), ShapeError, /shape \[\]/, /expected \(N, \*, 6\)/);
});

row("input that is not a tensor", () => {
  const layer = smallLayer();
  rejects(() => layer.forward([1, 2] as unknown as Tensor), TypeError, /needs a Tensor/);
});

row("empty batch", () => {
  const layer = smallLayer();
  unchanged(
    layer,
    () => rejects(() => layer.forward(zeros([0, 6])), ShapeError, /empty batch/, /at least 1/),
  );
});

row("NaN / Inf in the input propagate through the forward (policy)", () => {
  const layer = new SparseLinear(3, 2, { connectivity: [[0, 1], [0, 2]], bias: false });
  const x = tensor([[NaN, 1, 2], [1, 1, Infinity]]);
  const y = noGrad(() => layer.forward(x)).toArray();
  // Output 0 reads input 0 only; output 1 reads input 2 only.
  assert.ok(Number.isNaN(y[0]) && Number.isFinite(y[1]), `row 0: ${y.slice(0, 2)}`);
  assert.ok(Number.isFinite(y[2]) && !Number.isFinite(y[3]), `row 1: ${y.slice(2)}`);
});

row("NaN in the weights propagate through the forward (policy)", () => {
  const layer = new SparseLinear(2, 2, { connectivity: [[0, 1], [0, 1]], bias: false });
  layer.weights.data[0] = NaN;
  const y = noGrad(() => layer.forward(tensor([[1, 1]]))).toArray();
  assert.ok(Number.isNaN(y[0]) && Number.isFinite(y[1]), `${y}`);
});

row("a non-finite loss stops training before the update (NonFiniteLossError)", async () => {
  const layer = smallLayer();
  const optimizer = new SGD(layer.parameters(), { lr: 0.1, momentum: 0.9 });
  const x = zeros([4, 6]);
  x.data[7] = NaN; // second example of the first (only) batch
  const before = layerState(layer);
  await rejectsAsync(
    () =>
      fit(layer, {
        optimizer,
        loss: crossEntropy,
        train: batches(x, new Int32Array([0, 1, 2, 3]), { batchSize: 4 }),
        epochs: 1,
        progress: false,
        log: null,
      }),
    NonFiniteLossError,
    /Loss is NaN at step 1/,
    /before this step's update/,
  );
  const after = layerState(layer) as { grad: unknown };
  assert.deepEqual({ ...after, grad: null }, { ...(before as object), grad: null });
});

// -------------------------------------------------------------------- connectivity ----

row("connectivity index out of range", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, 3], [1, 1]] }),
    RangeError,
    /connectivity\[0\]\[1\]/,
    /= 3 is outside \[0, 3\)/,
    /outFeatures = 3/,
  );
});

row("connectivity index negative", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, 1], [1, -1]] }),
    RangeError,
    /connectivity\[1\]\[1\]/,
    /= -1 is outside \[0, 4\)/,
  );
});

row("connectivity index not an integer", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, 1.5], [1, 1]] }),
    RangeError,
    /connectivity\[0\]\[1\]/,
    /1\.5 is not an integer/,
    /integers in \[0, 3\)/,
  );
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, "1"], [1, 1]] as never }),
    TypeError,
    /connectivity\[0\]\[1\]/,
    /must be an integer/,
  );
});

row("connectivity with a duplicated connection", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, 2, 0], [1, 1, 1]] }),
    RangeError,
    /connection 2 \(output 0, input 1\) repeats connection 0/,
    /may appear once/,
  );
});

row("connectivity of the wrong shape", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0], [1], [2]] as never }),
    ShapeError,
    /connectivity must have shape \(2, nnz\)/,
    /3 rows/,
  );
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[0, 1], [1]] }),
    ShapeError,
    /equal lengths/,
    /2 outputs and 1 inputs/,
  );
  rejects(
    () => new SparseLinear(4, 3, { connectivity: new IndexTensor(new Int32Array(6), [3, 2]) }),
    ShapeError,
    /shape \[2, nnz\], got \[3, 2\]/,
  );
  rejects(
    () => new SparseLinear(4, 3, { connectivity: new Int32Array(3) }),
    ShapeError,
    /2 · nnz entries/,
    /got 3/,
  );
});

row("connectivity with nnz = 0", () => {
  rejects(
    () => new SparseLinear(4, 3, { connectivity: [[], []] }),
    ShapeError,
    /connectivity holds no connections/,
    /at least one/,
  );
});

row("nnz >= 2^31", () => {
  // Random connectivity of 65536 x 65536 at sparsity 0 asks for 2^32 connections: rejected
  // before any allocation (by the int32 limit or the memory check, both naming the sizes).
  const err = rejects(() => new SparseLinear(65536, 65536, { sparsity: 0 }), RangeError);
  assert.match(err.message, /2\^31|4294967296|memory|GiB/i, err.message);
  // A count past 2^53 is shown to 4 digits, not as a double's rounding noise (99999999999999980).
  rejects(
    () => new SparseLinear(1e9, 1e9, { sparsity: 0.9 }),
    RangeError,
    /is 1\.000e\+17, but the int32 sparse kernels need it below 2\^31/,
  );
});

row("features >= 2^31", () => {
  rejects(
    () => new SparseLinear(2 ** 31, 4),
    RangeError,
    /inFeatures is 2147483648/,
    /below 2\^31/,
  );
  rejects(() => new SparseLinear(4, 2 ** 31), RangeError, /outFeatures/, /below 2\^31/);
});

row("features not positive integers", () => {
  rejects(() => new SparseLinear(0, 4), RangeError, /inFeatures must be a positive integer, got 0/);
  rejects(() => new SparseLinear(4, 2.5), RangeError, /outFeatures must be a positive integer/);
  rejects(() => new SparseLinear("4" as never, 4), TypeError, /inFeatures must be a positive/);
});

row("sparsity NaN, negative or >= 1", () => {
  for (const s of [NaN, -0.1, 1, 1.5]) {
    rejects(
      () => new SparseLinear(4, 4, { sparsity: s }),
      RangeError,
      /sparsity must be in \[0, 1\)/,
      new RegExp(`got ${s}`),
    );
  }
  rejects(() => new SparseLinear(4, 4, { sparsity: "0.5" as never }), TypeError, /sparsity/);
});

row("dynamic sparsity options out of range", () => {
  const cases: [Record<string, unknown>, ErrorClass, RegExp][] = [
    [{ dynamic: true, deltaT: 0 }, RangeError, /deltaT must be a positive integer.*got 0/],
    [{ dynamic: true, tEnd: -1 }, RangeError, /tEnd must be a non-negative integer.*got -1/],
    [{ dynamic: true, alpha: 1.5 }, RangeError, /alpha must be in \[0, 1\].*got 1\.5/],
    [{ dynamic: true, alpha: NaN }, RangeError, /alpha must be in \[0, 1\]/],
    [{ dynamic: true, growth: "grow" }, RangeError, /growth must be "rigl" or "set", got "grow"/],
    [{ dynamic: true, maxSize: 3 }, RangeError, /maxSize = 3 .* must be >= 6/],
    [{ dynamic: true, maxSize: 0 }, RangeError, /maxSize must be a positive integer, got 0/],
    [{ deltaT: 10 }, RangeError, /deltaT only applies to dynamic layers/],
    [{ dynamic: "yes" }, TypeError, /dynamic must be a boolean/],
  ];
  for (const [options, cls, pattern] of cases) {
    rejects(() => new SparseLinear(6, 4, { sparsity: 0.5, ...options }), cls, pattern);
  }
});

row("setPattern with bad connections changes nothing", () => {
  const layer = smallLayer();
  unchanged(layer, () =>
    rejects(
      () => layer.setPattern(new Int32Array([0, 9]), new Int32Array([0, 1]), new Float32Array(2)),
      RangeError,
      /= 9 is outside \[0, 4\)/,
    ));
  unchanged(layer, () =>
    rejects(
      () => layer.setPattern(new Int32Array([0, 1]), new Int32Array([0, 1]), new Float32Array(3)),
      ShapeError,
      /one value per connection \(2\)/,
    ));
});

// --------------------------------------------------------------- numeric options ----

row("optimizer options out of range", () => {
  const params = smallLayer().parameters();
  rejects(() => new SGD(params, { lr: -1 }), RangeError, /lr: -1/, /\[0, inf\)/);
  rejects(() => new SGD(params, { lr: NaN }), RangeError, /lr/);
  rejects(
    () => new SGD(params, { lr: 0.1, momentum: -1 }),
    RangeError,
    /momentum: -1/,
    /\[0, inf\)/,
  );
  rejects(
    () => new SGD(params, { lr: 0.1, nesterov: true }),
    RangeError,
    /nesterov/,
    /momentum > 0 and dampening 0/,
  );
  rejects(() => new Adam(params, { betas: [1, 0.999] }), RangeError, /beta1/, /\[0, 1\)/);
  rejects(() => new Adam(params, { eps: -1 }), RangeError, /eps: -1/, /\[0, inf\)/);
  rejects(() => new Adam(params, { lr: -0.5 }), RangeError, /lr: -0\.5/);
});

row("module options out of range", () => {
  rejects(() => new LayerNorm(4, { eps: -1 }), RangeError, /LayerNorm eps/, />= 0, got -1/);
  rejects(() => new Dropout(1.5), RangeError, /Dropout p/, /\[0, 1\], got 1\.5/);
  rejects(
    () => new ActivationSparsity({ actSparsity: 1 }),
    RangeError,
    /actSparsity must be in \[0, 1\), got 1/,
  );
  rejects(
    () => new ActivationSparsity({ beta: -1 }),
    RangeError,
    /beta must be a finite number >= 0, got -1$/,
  );
  rejects(
    () => new ActivationSparsity({ features: 0 }),
    RangeError,
    /features must be an integer in \[1, 2\^31 - 1\], got 0/,
  );
  rejects(
    () => batches(zeros([4, 2]), new Int32Array(4), { batchSize: 0 }),
    RangeError,
    /batchSize must be a positive integer, got 0/,
  );
});

row("labels out of range in the loss", () => {
  rejects(
    () => crossEntropy(zeros([2, 3]), new Int32Array([0, 3])),
    RangeError,
    /label 3 at index 1 is outside \[0, 3\)/,
  );
});

row("training script flags out of range", () => {
  const cases: [string[], RegExp][] = [
    [["--epochs", "0"], /--epochs must be a positive integer, got "0"/],
    [["--batch-size=0"], /--batch-size must be a positive integer, got "0"/],
    [["--batch-size=-3"], /--batch-size must be a positive integer/],
    [["--lr", "nan"], /--lr must be a positive number, got "nan"/],
    [["--seed=-1"], /--seed must be a non-negative integer, got "-1"/],
    [["--threads", "0"], /--threads must be a positive integer, got "0"/],
    [["--limit-train=0"], /--limit-train must be a positive integer/],
    [["--model", "nope"], /Unknown --model "nope"; choose one of dense/],
    [["--device", "tpu"], /--device must be "cpu" or "cuda", got "tpu"/],
    [["--precision", "high"], /--precision must be highest or medium, got "high"/],
    [["--epoch", "3"], /Unknown option '--epoch' \(did you mean --epochs\?\)/],
  ];
  for (const [args, pattern] of cases) rejects(() => parseTrainArgs(args), UsageError, pattern);
  assert.equal(parseTrainArgs([]).precision, "highest");
  assert.equal(parseTrainArgs(["--precision", "medium"]).precision, "medium");
  // The wide model defaults to medium (its model spec); --precision still decides.
  assert.equal(parseTrainArgs(["--model", "wide"]).precision, "medium");
  assert.equal(parseTrainArgs(["--model", "wide", "--precision", "highest"]).precision, "highest");
  assert.equal(parseTrainArgs(["--model", "dense"]).precision, "highest");
});

row("bench, soak and results script flags: --help, unknown and bad values", async () => {
  const scripts: [string, string[]][] = [
    ["bench/compare.ts", ["--runs", "0"]],
    ["bench/wide_profile.ts", ["--width", "55"]],
    ["examples/soak.ts", ["--seed", "x"]],
    // Checked before any model trains (each run failed, and the table was overwritten).
    ["examples/run_all.ts", ["--seed", "-1"]],
    ["examples/wide.ts", ["--seed", "-1"]],
  ];
  const run = async (script: string, args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", join(import.meta.dirname!, "..", script), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  };
  for (const [script, badValue] of scripts) {
    const help = await run(script, ["--help"]);
    assert.equal(help.code, 0, `${script} --help: ${help.stderr}`);
    assert.match(help.stdout, /^Usage: /, script);
    for (const args of [["--bogus"], badValue]) {
      const bad = await run(script, args);
      assert.equal(bad.code, 2, `${script} ${args.join(" ")}`);
      assert.match(bad.stderr, /^error: /, `${script} ${args.join(" ")}`);
      assert.match(bad.stderr, /\nUsage: /, script);
      assert.doesNotMatch(bad.stderr, /Uncaught|\n\s+at /, `${script}: a stack trace`);
    }
  }
  // The default its --help names is accepted when given (seed 0 was refused as not positive).
  const seed0 = await run("examples/wide.ts", [
    "--seed",
    "0",
    "--skip",
    "wide,rigl",
    "--width",
    "100",
  ]);
  assert.equal(seed0.code, 0, seed0.stderr);
});

row(
  "deno task regression: flag errors exit 2 with the usage, a failure while running exits 1",
  async () => {
    const script = join(import.meta.dirname!, "..", "examples", "random_regression.ts");
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", script, ...args],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const bad = await run(["--steps", "0"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^error: --steps must be an integer ≥ 1, got "0"\nUsage: /);
    // A missing native library printed the usage too and exited 2, as if a flag were wrong.
    const noLibrary = await run(["--steps", "1"], { SPARSELINEAR_LIB: "/nonexistent/lib.so" });
    assert.equal(noLibrary.code, 1, noLibrary.stderr);
    assert.match(noLibrary.stderr, /^error: The native library libsparselinear was not found/);
    assert.doesNotMatch(noLibrary.stderr, /Usage: /);
  },
);

// ------------------------------------------------------------- devices and graphs ----

row("tensors on an unknown or unavailable device", () => {
  rejects(
    () => tensor([1, 2]).to("tpu" as never),
    TypeError,
    /Unknown device "tpu"/,
    /"cpu" or "cuda"/,
  );
  let cuda: Tensor | null = null;
  try {
    cuda = tensor([1, 2, 3, 4, 5, 6]).to("cuda");
  } catch (err) {
    // No GPU here: a LibraryError that says which device and what to use instead.
    assert.ok(err instanceof LibraryError, `${err}`);
    assert.match((err as Error).message, /Device "cuda" is not available/);
    assert.match((err as Error).message, /Use device "cpu"/);
    return;
  }
  // With a GPU: mixing devices in one op is rejected, naming both. The input has the layer's
  // 6 features, so the device check (not the shape check) is what rejects it.
  const layer = smallLayer();
  const x = reshape(cuda, [1, 6]);
  rejects(() => layer.forward(x), TypeError, /input is on cuda but weights is on cpu/);
});

row("backward twice through a freed graph", () => {
  const layer = smallLayer();
  const loss = sum(layer.forward(full([2, 6], 0.5)));
  loss.backward();
  const grad = Array.from(layer.weights.grad!.toArray());
  rejects(() => loss.backward(), Error, /second time/, /retainGraph: true/);
  assert.deepEqual(Array.from(layer.weights.grad!.toArray()), grad, "the failed backward wrote");
});

row("a tensor's array detached, resized or lying about its length (native reads)", () => {
  // tensor() shares the caller's array: a buffer resized or transferred afterwards made the
  // kernels read the shape's element count from a shorter array (a segfault in matmul) or
  // compute on the new length (sum of a grown [2, 2] gave 36).
  const resizable = new ArrayBuffer(16, { maxByteLength: 64 });
  const grown = new Float32Array(resizable); // length-tracking
  grown.set([1, 2, 3, 4]);
  const t = fromFloat32(grown, [2, 2]);
  resizable.resize(36);
  rejects(() => sum(t), Error, /array now has 9 elements, not the 4 it was made with/);
  resizable.resize(16);
  assert.equal(sum(t).item(), 10); // the same elements again: usable
  const moved = new Float32Array([1, 2, 3, 4]);
  const u = fromFloat32(moved, [4]);
  moved.buffer.transfer();
  rejects(() => matmul(u, u), Error, /now has 0 elements.*detached \(transferred\) or resized/);
  // A subclass whose length is not its element count.
  class Lying extends Float32Array {
    override get length(): number {
      return 1 << 30;
    }
  }
  rejects(() => fromFloat32(new Lying(16), [16]), TypeError, /Lying whose length/);
  rejects(
    () => topk(new Lying(16), 2),
    TypeError,
    /length \(1073741824\) is not its element count/,
  );
});

// ------------------------------------------------------------------- state dicts ----

row("loadStateDict with wrong names", () => {
  const layer = smallLayer();
  const state = { ...layer.stateDict() };
  state["weight"] = state["weights"];
  delete state["weights"];
  unchanged(layer, () =>
    rejects(
      () => layer.loadStateDict(state),
      Error,
      /the model is unchanged/,
      /missing key "weights"/,
      /unexpected key "weight"/,
    ));
});

row("loadStateDict with wrong shapes", () => {
  const layer = smallLayer();
  const state = { ...layer.stateDict(), bias: zeros([5]) };
  unchanged(layer, () =>
    rejects(
      () => layer.loadStateDict(state),
      Error,
      /the model is unchanged/,
      /"bias" has shape \[5\], expected \[4\]/,
    ));
  // A checkpoint of a wider layer: its connections do not fit this one.
  const other = new SparseLinear(6, 5, { sparsity: 0.5, seed: 4 });
  unchanged(layer, () =>
    rejects(
      () => layer.loadStateDict(other.stateDict()),
      Error,
      /the model is unchanged/,
      /"indices"\[0\]\[\d+\] \(output index of connection \d+\) = 4 is outside \[0, 4\)/,
    ));
});

row("loadStateDict with wrong dtypes", () => {
  const layer = smallLayer();
  const state = { ...layer.stateDict() };
  state["bias"] = new IndexTensor(new Int32Array(4), [4]);
  unchanged(layer, () =>
    rejects(
      () => layer.loadStateDict(state),
      Error,
      /the model is unchanged/,
      /"bias" must be a float32 Tensor/,
    ));
  // From a file: an F32 tensor where the model keeps integer indices.
  const tensors = {
    indices: { dtype: "F32" as const, shape: [2], data: new Float32Array([0.5, 1]) },
  };
  rejects(
    () => safetensorsToStateDict(tensors, { indices: new IndexTensor(new Int32Array(2), [2]) }),
    Error,
    /"indices"/,
    /unchanged/,
  );
});

// ------------------------------------------------------------------- safetensors ----

function validSafetensors(): Uint8Array {
  return encodeSafetensors({
    w: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
  });
}

row("safetensors truncated", () => {
  const bytes = validSafetensors();
  rejects(
    () => decodeSafetensors(bytes.subarray(0, 5), "t.safetensors"),
    FormatError,
    /t\.safetensors/,
  );
  rejects(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 3), "t.safetensors"),
    FormatError,
    /t\.safetensors/,
  );
});

row("safetensors corrupt header", () => {
  const bytes = validSafetensors();
  bytes[9] = 0x7b + 1; // break the JSON
  rejects(() => decodeSafetensors(bytes, "c.safetensors"), FormatError, /c\.safetensors/);
});

row("safetensors oversized header", () => {
  const bytes = validSafetensors();
  new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
  rejects(() => decodeSafetensors(bytes, "big.safetensors"), FormatError, /big\.safetensors/);
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
  rejects(() => decodeSafetensors(bytes, "big.safetensors"), FormatError, /big\.safetensors/);
});

row("safetensors wrong dtype", () => {
  const header = new TextEncoder().encode(
    JSON.stringify({ w: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }),
  );
  const bytes = new Uint8Array(8 + header.length + 4);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  rejects(() => decodeSafetensors(bytes, "d.safetensors"), FormatError, /d\.safetensors/, /F33/);
});

row("safetensors files: truncated on disk, and loading into a model changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layer = smallLayer();
    const path = join(dir, "model.safetensors");
    await saveStateDict(layer, path);
    const full = await Deno.readFile(path);
    await Deno.writeFile(path, full.subarray(0, full.length - 8));
    await rejectsAsync(() => loadSafetensors(path), FormatError, /model\.safetensors/);
    const before = layerState(layer);
    await rejectsAsync(() => loadStateDict(layer, path), FormatError, /model\.safetensors/);
    assert.deepEqual(layerState(layer), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --------------------------------------------------------------------------- IDX ----

row("malformed IDX files", () => {
  const good = encodeIdx({ dtype: "uint8", shape: [2, 2], data: new Uint8Array([1, 2, 3, 4]) });
  const badMagic = good.slice();
  badMagic[0] = 1;
  rejects(() => decodeIdx(badMagic, "m.idx"), FormatError, /m\.idx/);
  const badType = good.slice();
  badType[2] = 0x0a;
  rejects(() => decodeIdx(badType, "m.idx"), FormatError, /m\.idx/, /0x08 \(uint8\)/);
  rejects(() => decodeIdx(good.subarray(0, good.length - 1), "m.idx"), FormatError, /m\.idx/);
  const extra = new Uint8Array(good.length + 2);
  extra.set(good);
  rejects(() => decodeIdx(extra, "m.idx"), FormatError, /m\.idx/);
  rejects(() => decodeIdx(good.subarray(0, 3), "m.idx"), FormatError, /m\.idx/);
});

// ------------------------------------------------------ native library: subprocess ----

const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";
const libraryModule = new URL("../ffi/library.ts", import.meta.url).href;

/** Runs a fresh Deno with `args` and `env` (plus NO_COLOR); returns its stdout + stderr. */
async function runDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ok: boolean; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, output: text };
}

/** Runs `code` in a fresh Deno with SPARSELINEAR_LIB set; returns its stderr + stdout. */
function runWithLibrary(libPath: string, code: string): Promise<{ ok: boolean; output: string }> {
  return runDeno(["eval", "--quiet", code], { SPARSELINEAR_LIB: libPath });
}

/** Loads the library in the child and prints the error class and message. */
const LOAD_AND_REPORT = `
  import { native } from "${libraryModule}";
  try { native(); console.log("LOADED"); }
  catch (e) { console.log("ERROR " + e.constructor.name + ": " + e.message); }`;

/** Copies the library loader (ffi/ and the error classes it imports) into `dir`. */
async function copyLoader(dir: string): Promise<void> {
  for (const rel of ["ffi/symbols", "lib"]) await Deno.mkdir(join(dir, rel), { recursive: true });
  const root = new URL("../", import.meta.url);
  for await (const e of Deno.readDir(new URL("ffi/symbols/", root))) {
    await Deno.copyFile(new URL(`ffi/symbols/${e.name}`, root), join(dir, "ffi/symbols", e.name));
  }
  for (const f of ["ffi/library.ts", "ffi/symbols.ts", "lib/errors.ts", "lib/options.ts"]) {
    await Deno.copyFile(new URL(f, root), join(dir, f));
  }
}

Deno.test({
  name: "bad input: missing native library",
  ignore: !canRun,
  fn: async () => {
    // A copy of the loader outside the repository: no build/ directory to fall back on.
    const dir = await Deno.makeTempDir();
    try {
      await copyLoader(dir);
      const missing = join(dir, "no-such-lib.so");
      const code = LOAD_AND_REPORT.replace(libraryModule, `file://${join(dir, "ffi/library.ts")}`);
      const { output } = await runWithLibrary(missing, code);
      assert.match(output, /ERROR LibraryError: The native library libsparselinear was not found/);
      assert.ok(output.includes(missing), `the message should name ${missing}: ${output}`);
      assert.match(output, /deno task build/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bad input: a checkout whose path has a space or a non-ASCII letter finds its build/",
  ignore: !canRun,
  fn: async () => {
    // The loader looked for "dir%20with%20space/build/…": a URL's pathname, not a file path.
    const root = new URL("../", import.meta.url);
    const built = new URL(`build/${libraryFileName("sparselinear")}`, root);
    if (!(await Deno.stat(built).then(() => true, () => false))) return;
    const tmp = await Deno.makeTempDir();
    const dir = join(tmp, "my checkout é");
    try {
      await copyLoader(dir);
      await Deno.mkdir(join(dir, "build"));
      await Deno.copyFile(built, join(dir, "build", libraryFileName("sparselinear")));
      const module = pathToFileURL(join(dir, "ffi/library.ts")).href;
      // An empty SPARSELINEAR_LIB counts as unset: the copy's own build/ is the candidate.
      const { output } = await runWithLibrary("", LOAD_AND_REPORT.replace(libraryModule, module));
      assert.equal(output.trim(), "LOADED");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  // With build/ present, an explicit SPARSELINEAR_LIB naming a missing file must not fall back.
  name: "bad input: SPARSELINEAR_LIB naming a missing file is an error, not a fallback",
  ignore: !canRun,
  fn: async () => {
    const { output } = await runWithLibrary("/nonexistent/libsparselinear.so", LOAD_AND_REPORT);
    assert.match(output, /ERROR LibraryError: .*\/nonexistent\/libsparselinear\.so/);
    assert.match(
      output,
      /SPARSELINEAR_LIB names \/nonexistent\/libsparselinear\.so, which does not/,
    );
  },
});

async function haveCc(): Promise<boolean> {
  if (!canRun) return false;
  try {
    return (await new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "bad input: ABI mismatch (a library reporting ABI version 999)",
  ignore: !canRun,
  fn: async (t) => {
    if (!(await haveCc())) {
      console.log("skipped: no C compiler (cc) to build the stub library");
      return;
    }
    const dir = await Deno.makeTempDir();
    try {
      // Every symbol the loader binds, as a stub, and sl_abi_version() returning 999.
      const names = Object.keys(symbols).filter((n) => n !== "sl_abi_version");
      const source = names.map((n) => `void ${n}(void) {}`).join("\n") +
        "\nint sl_abi_version(void) { return 999; }\n";
      await Deno.writeTextFile(join(dir, "stub.c"), source);
      const lib = join(dir, "libstub.so");
      const cc = await new Deno.Command("cc", {
        args: ["-shared", "-fPIC", "-o", lib, join(dir, "stub.c")],
        stderr: "piped",
      }).output();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      await t.step("version 999 is refused, saying how to rebuild", async () => {
        const { output } = await runWithLibrary(lib, LOAD_AND_REPORT);
        assert.match(
          output,
          /ERROR LibraryError: The native library at .*libstub\.so has ABI version 999/,
        );
        assert.match(output, new RegExp(`needs version ${EXPECTED_ABI_VERSION}\\.`));
        assert.match(output, /deno task build/);
      });
      await t.step("a library missing symbols is refused, naming it", async () => {
        const partial = join(dir, "libpartial.so");
        await Deno.writeTextFile(
          join(dir, "partial.c"),
          "int sl_abi_version(void) { return 1; }\n",
        );
        const cc2 = await new Deno.Command("cc", {
          args: ["-shared", "-fPIC", "-o", partial, join(dir, "partial.c")],
        }).output();
        assert.ok(cc2.success);
        const { output } = await runWithLibrary(partial, LOAD_AND_REPORT);
        assert.match(
          output,
          /ERROR LibraryError: Could not load the native library at .*libpartial\.so/,
        );
        assert.match(output, /rebuild it with `deno task build`/);
        assert.doesNotMatch(output, /Could not open library: /, "Deno's repeated prefix is cut");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bad input: loading the library without FFI permission names the flag",
  ignore: !canRun,
  fn: async () => {
    const output = await loadFromScript(() => ["--allow-read", "--allow-env"]);
    assert.match(output, /ERROR LibraryError: .*needs FFI permission: run Deno with --allow-ffi/);
    assert.doesNotMatch(output, /stale/);
  },
});

Deno.test({
  name: "bad input: finding the library without read permission names the flag",
  ignore: !canRun,
  fn: async () => {
    // The library is there (build/, or SPARSELINEAR_LIB), but without --allow-read its stat
    // fails: that was reported as "not found ... Build it with `deno task build`".
    const output = await loadFromScript(
      (dir) => [`--allow-read=${dir}`, "--allow-ffi", "--allow-env"],
      { SPARSELINEAR_LIB: "/tmp/some/libsparselinear.so" },
    );
    assert.match(output, /ERROR LibraryError: .*read permission.*--allow-read/);
    assert.ok(output.includes("/tmp/some/libsparselinear.so"), output);
    assert.doesNotMatch(output, /not found|deno task build/);
  },
});

/** Output of LOAD_AND_REPORT run as a script file in a temporary directory with `flags(dir)`. */
async function loadFromScript(
  flags: (dir: string) => string[],
  env: Record<string, string> = {},
): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "load.ts");
    await Deno.writeTextFile(script, LOAD_AND_REPORT);
    return (await runDeno(["run", "--quiet", ...flags(dir), script], env)).output;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "bad input: SL_NUM_THREADS that is not a thread count; setNumThreads out of range",
  ignore: !canRun,
  fn: async () => {
    const load = async (value: string) =>
      (await runDeno(["eval", "--quiet", LOAD_AND_REPORT], { SL_NUM_THREADS: value })).output;
    // The C library would ignore these (a partial number is a guess): an error names them.
    // A Unicode space is no blank to C's isspace(): "\u00a03" would be ignored there too.
    for (const value of ["3abc", "1e3", "0", "-1", "5000", "4097", "+ 1", "\u00a03"]) {
      assert.match(
        await load(value),
        new RegExp(
          `ERROR RangeError: SL_NUM_THREADS must be an integer from 1 to 4096, ` +
            `got "${value.replace(/[+.]/g, "\\$&")}"`,
        ),
      );
    }
    assert.match(await load(" 1 "), /LOADED/);
    assert.match(await load("+1"), /LOADED/); // strtol reads a "+", so the library uses it
    assert.match(await load("4096"), /LOADED/);
    assert.match(await load(" \t"), /LOADED/); // blanks only are unset, as in C
    assert.match(await load(""), /LOADED/); // empty is unset
    const before = getNumThreads();
    rejects(() => setNumThreads(2 ** 31), RangeError, /at most 4096 \(or <= 0 for the default\)/);
    rejects(() => setNumThreads("2" as never), TypeError, /integer, got the string "2"/);
    assert.equal(getNumThreads(), before);
  },
});

row("sparsity helpers: wrong typed-array kinds and short row pointers (native reads)", () => {
  // Each of these crashed (a short rowPtr, a Uint8Array x) or misread the array's bytes.
  const csr = {
    nRows: 2,
    nCols: 3,
    rowPtr: new Int32Array([0, 1, 2]),
    colIdx: new Int32Array([0, 1]),
  };
  const x = new Float32Array([1, 1, 1]), dy = new Float32Array([3, 3]);
  assert.deepEqual(Array.from(denseGradTopk(csr, x, dy, 1, 1, 3).grad), [3]);
  rejects(
    () => denseGradTopk(csr, new Float64Array(3) as never, dy, 1, 1, 3),
    TypeError,
    /denseGradTopk\(\) x must be a Float32Array, got Float64Array/,
  );
  rejects(
    () => denseGradTopk(csr, new Uint8Array(3) as never, dy, 1, 1, 3),
    TypeError,
    /got Uint8Array/,
  );
  const short = { ...csr, rowPtr: new Int32Array([0, 1]) };
  rejects(
    () => denseGradTopk(short, x, dy, 1, 1, 3),
    RangeError,
    /rowPtr must hold nRows \+ 1 = 3/,
  );
  rejects(() => sampleAbsent(short, 1, 0), RangeError, /sampleAbsent\(\) pattern.rowPtr/);
  rejects(() => sampleAbsent(csr, 1, 1.5), RangeError, /seed must be an integer in \[0, 2\^64\)/);
  const none = { rows: new Int32Array(0), cols: new Int32Array(0) };
  rejects(() => csrDropGrow(short, null, new Int32Array(0), none), RangeError, /rowPtr/);
  rejects(
    () => csrDropGrow(csr, new Float64Array(2) as never, new Int32Array(0), none),
    TypeError,
    /csrDropGrow\(\) values must be a Float32Array/,
  );
  rejects(
    () => SparsePattern.fromCoo(3, 3, new Float64Array([0, 1]) as never, new Int32Array([0, 1])),
    TypeError,
    /rows must be an Int32Array, got Float64Array/,
  );
  rejects(() => new IndexTensor(new Uint8Array(4) as never, [4]), TypeError, /Int32Array/);
  rejects(() => randomConnectionCount(NaN, 4, 0.5), RangeError, /inFeatures must be a positive/);
  rejects(() => randomConnectionCount(4, 2.5, 0.5), RangeError, /outFeatures .* got 2.5/);
  rejects(
    () => broadcastShapes([-1, 3], [1, 3]),
    ShapeError,
    /non-negative integers, got \[-1, 3\]/,
  );
});

row("seeds that are not exact integers (they were rounded onto another seed)", () => {
  rejects(
    () => new Generator(1.5),
    RangeError,
    /Seed must be an integer with \|seed\| < 2\^53, got 1.5/,
  );
  rejects(() => smallLayer({ seed: 2 ** 64 }), RangeError, /got 18446744073709552000/);
  assert.equal(new Generator(-3).nextUint32(), new Generator(-3).nextUint32());
});

row("an optimizer whose parameter a state dict replaced (another nnz) says so", () => {
  const layer = smallLayer();
  const opt = new SGD(layer, { lr: 0.5 });
  const bigger = smallLayer({ sparsity: 0.25 });
  layer.loadStateDict(bigger.stateDict());
  sum(layer.forward(zeros([1, 6]))).backward();
  // It used to update the old weights tensor, which nothing reads: training silently stopped.
  rejects(() => opt.step(), Error, /Parameter 0 \(shape \[12\]\) is no longer its module's/);
  new SGD(layer, { lr: 0.5 }).step();
});

row("fit options are checked before the first step", async () => {
  const layer = smallLayer();
  const train = batches(new Float32Array(12), new Int32Array([0, 1]), { batchSize: 2 });
  const base = { optimizer: new SGD(layer, { lr: 0.5 }), loss: crossEntropy, train, epochs: 1 };
  const before = layerState(layer);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ log: "x" }, /fit\(\) log must be a function or null/],
    [{ onEpochEnd: 5 }, /fit\(\) onEpochEnd must be a function/],
    [{ test: 5 }, /fit\(\) test must be an iterable of batches/],
    [{ train: {} }, /fit\(\) train must be an iterable of batches with a length/],
    [{ progress: "yes" }, /fit\(\) progress must be a boolean or a ProgressOptions/],
  ];
  for (const [options, pattern] of bad) {
    await rejectsAsync(
      () => fit(layer, { ...base, progress: false, ...options } as never),
      TypeError,
      pattern,
    );
  }
  assert.deepEqual(layerState(layer), before, "a rejected fit trained the layer");
});

row("boolean options given as strings or numbers", () => {
  const x = zeros([2, 3]);
  rejects(
    () => dropout(x, 0.5, { training: "false" as never }),
    TypeError,
    /training must be true or false, got "false"/,
  );
  rejects(() => new Linear(3, 2, { bias: "false" as never }), TypeError, /Linear bias/);
  rejects(
    () => new LayerNorm(3, { elementwiseAffine: 0 as never }),
    TypeError,
    /elementwiseAffine.*got 0/,
  );
  rejects(() => sum(x, 0, { keepDim: "false" as never }), TypeError, /sum\(\) keepDim/);
  rejects(() => tensor([1], [1], { requiresGrad: "no" as never }), TypeError, /requiresGrad/);
  rejects(() => erkSparsities([[4, 4]], 0.5, { erk: "false" as never }), TypeError, /erk/);
});

row("accuracy labels and K-Winners duty cycles out of range; a rejected schedule step", () => {
  const logits = zeros([2, 3]);
  rejects(
    () => countCorrect(logits, new Int32Array([0, 3])),
    RangeError,
    /label 3 at index 1 is outside \[0, 3\)/,
  );
  rejects(() => countCorrect(logits, new Float32Array(2) as never), TypeError, /Int32Array/);
  const kw = new ActivationSparsity();
  kw.forward(zeros([2, 4]));
  const state = kw.stateDict();
  const before = Array.from((state.dutyCycle as Tensor).toArray());
  rejects(
    () => kw.loadStateDict({ ...state, dutyCycle: tensor([0, NaN, 0, 0]) }),
    Error,
    /"dutyCycle"\[1\] = NaN is not a duty cycle: each must be in \[0, 1\]/,
  );
  assert.deepEqual(Array.from(kw.dutyCycle!.toArray()), before);
  const opt = new SGD([zeros([1], { requiresGrad: true })], { lr: 1 });
  const schedule = stepSchedule(opt, { stepSize: 1, gamma: 1e300 });
  schedule.step();
  assert.throws(() => schedule.step(), RangeError);
  assert.equal(schedule.count, 1, "a rejected step is not counted");
});

row("no FFI callbacks: native code (and its OpenMP regions) never calls into JS", () => {
  for (const [name, def] of Object.entries(symbols)) {
    const types = [
      ...(def as Deno.ForeignFunction).parameters,
      (def as Deno.ForeignFunction).result,
    ];
    for (const type of types) {
      assert.ok(
        typeof type !== "object" || type === null || !("function" in type),
        `${name} takes or returns a function pointer`,
      );
      assert.notEqual(type, "function", `${name} takes or returns a function pointer`);
    }
  }
});

Deno.test("options with unknown names are TypeErrors naming the camelCase option", async () => {
  // The seed's snake_case names were silently ignored: small_world built random connectivity.
  const cases: [() => unknown, RegExp][] = [
    [
      () => new SparseLinear(8, 8, { small_world: true } as never),
      /SparseLinear has no option "small_world" \(did you mean "smallWorld"\?\); its options are bias, sparsity, connectivity, smallWorld, seed, dynamic, deltaT/,
    ],
    [
      () => new SparseLinear(8, 8, { dynamic: true, Tend: 10 } as never),
      /no option "Tend" \(did you mean "tEnd"\?\)/,
    ],
    [() => new SparseLinear(8, 8, { max_size: 5 } as never), /did you mean "maxSize"/],
    [() => new SparseLinear(8, 8, { sparsty: 0.5 } as never), /no option "sparsty"; its options/],
    [
      () => new ActivationSparsity({ act_sparsity: 0.5 } as never),
      /ActivationSparsity has no option "act_sparsity" \(did you mean "actSparsity"\?\)/,
    ],
    [() => new Linear(2, 2, { bais: false } as never), /Linear has no option "bais"/],
    [
      () => new LayerNorm(4, { elementwise_affine: false } as never),
      /did you mean "elementwiseAffine"/,
    ],
    [
      () => new SGD([], { lr: 0.1, weight_decay: 1e-4 } as never),
      /SGD has no option "weight_decay" \(did you mean "weightDecay"\?\)/,
    ],
    [() => new AdamW([], { beta: [0.9, 0.99] } as never), /AdamW has no option "beta"/],
    [() => new Adam([], null as never), /Adam options must be an object, got null/],
  ];
  for (const [make, message] of cases) rejects(make, TypeError, message);
  await assert.rejects(fit(new Linear(2, 2), { epoch: 1 } as never), {
    name: "TypeError",
    message: /fit\(\) has no option "epoch"; its options are optimizer, loss, train/,
  });
});
