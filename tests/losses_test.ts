import assert from "node:assert/strict";
import { crossEntropy, mseLoss } from "../lib/nn/losses.ts";
import { tensor } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { fromFloat32, IndexTensor } from "../lib/tensor.ts";
import { assertClose, assertThrows, dot, numericGrad, randomArray } from "./_nn_reference.ts";

/** Float64 reference of cross-entropy: per-sample -log softmax(z)[label]. */
function crossEntropyRef(z: ArrayLike<number>, labels: Int32Array, classes: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < labels.length; b++) {
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, z[b * classes + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(z[b * classes + c] - mx);
    out.push(mx + Math.log(s) - z[b * classes + labels[b]]);
  }
  return out;
}

function reduce(values: number[], reduction: "mean" | "sum"): number {
  const s = values.reduce((a, b) => a + b, 0);
  return reduction === "mean" ? s / values.length : s;
}

Deno.test("crossEntropy matches a float64 reference and finite differences", () => {
  for (const [batch, classes] of [[1, 1], [1, 10], [7, 3], [64, 10]]) {
    const z = randomArray(batch * classes, batch + classes, -4, 4);
    const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7 + 3) % classes);
    for (const reduction of ["mean", "sum"] as const) {
      const logits = fromFloat32(z.slice(), [batch, classes], true);
      const loss = crossEntropy(logits, labels, { reduction });
      assert.deepEqual(loss.shape, []);
      const want = reduce(crossEntropyRef(z, labels, classes), reduction);
      assertClose([loss.item()], [want], `${reduction} loss ${batch}x${classes}`);
      loss.backward();
      const [g] = numericGrad(
        ([zz]) => reduce(crossEntropyRef(zz, labels, classes), reduction),
        [z],
      );
      assertClose(logits.grad!.data, g, `${reduction} grad ${batch}x${classes}`, {
        atol: 1e-5,
        rtol: 1e-3,
      });
    }
  }
});

Deno.test("crossEntropy reduction none gives per-sample losses and gradients", () => {
  const batch = 5, classes = 4;
  const z = randomArray(batch * classes, 3, -3, 3);
  const labels = new IndexTensor(new Int32Array([0, 3, 1, 1, 2]), [batch]);
  const logits = fromFloat32(z.slice(), [batch, classes], true);
  const loss = crossEntropy(logits, labels, { reduction: "none" });
  assert.deepEqual(loss.shape, [batch]);
  assertClose(loss.data, crossEntropyRef(z, labels.data, classes), "per-sample loss");
  const w = randomArray(batch, 4, 0.5, 2);
  loss.backward(fromFloat32(w, [batch]));
  const [g] = numericGrad(([zz]) => dot(crossEntropyRef(zz, labels.data, classes), w), [z]);
  assertClose(logits.grad!.data, g, "per-sample grad", { rtol: 1e-3 });
});

Deno.test("reduction none over an empty batch is an empty loss, as PyTorch", () => {
  const logits = fromFloat32(new Float32Array(0), [0, 3], true);
  const ce = crossEntropy(logits, new Int32Array(0), { reduction: "none" });
  assert.deepEqual(ce.shape, [0]);
  ce.backward(fromFloat32(new Float32Array(0), [0]));
  assert.deepEqual(logits.grad!.shape, [0, 3]);
  const pred = fromFloat32(new Float32Array(0), [0, 4], true);
  const mse = mseLoss(pred, fromFloat32(new Float32Array(0), [0, 4]), { reduction: "none" });
  assert.deepEqual(mse.shape, [0, 4]);
  mse.backward(fromFloat32(new Float32Array(0), [0, 4]));
  assert.deepEqual(pred.grad!.shape, [0, 4]);
});

Deno.test("crossEntropy is stable for large logits and keeps its labels", () => {
  const labels = new Int32Array([0, 1]);
  const logits = tensor([[1000, 0], [0, -1000]], undefined, { requiresGrad: true });
  const loss = crossEntropy(logits, labels, { reduction: "sum" });
  labels[0] = 1; // changing the caller's array after the forward must not change backward
  assert.ok(Number.isFinite(loss.item()));
  assertClose([loss.item()], [Math.log1p(Math.exp(-1000)) + 1000], "loss");
  loss.backward();
  assertClose(logits.grad!.data, [0, 0, 1, -1], "grad", { atol: 1e-6 });

  // Logits far from 0 (float32 spacing 1 at 1e7): the softmax of the gradient is still exact,
  // as PyTorch's exp((z - max) - log(sum)), not exp(z - lse) with lse rounded to 1e7's ulp.
  const far = tensor([[1e7, 1e7], [1e4, 1e4 + 1]], undefined, { requiresGrad: true });
  crossEntropy(far, new Int32Array([0, 0]), { reduction: "sum" }).backward();
  const p = 1 / (1 + Math.E); // softmax([0, 1])[0]
  assertClose(far.grad!.data, [-0.5, 0.5, p - 1, 1 - p], "grad far from 0", { atol: 2e-7 });
});

Deno.test("crossEntropy rejects bad labels and shapes with clear errors", () => {
  const logits = tensor([[0, 1, 2], [3, 4, 5]]);
  assertThrows(
    () => crossEntropy(logits, new Int32Array([1, 3])),
    RangeError,
    /label 3 at index 1 is outside \[0, 3\)/,
  );
  assertThrows(
    () => crossEntropy(logits, new Int32Array([-1, 0])),
    RangeError,
    /label -1 at index 0/,
  );
  assertThrows(() => crossEntropy(logits, new Int32Array([1])), ShapeError, /1 labels.*batch of 2/);
  assertThrows(
    () => crossEntropy(tensor([1, 2, 3]), new Int32Array([0])),
    ShapeError,
    /\[batch, classes\]/,
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => crossEntropy(logits, [0, 1] as any),
    TypeError,
    /Int32Array or an IndexTensor/,
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => crossEntropy(logits, new Int32Array([0, 1]), { reduction: "avg" as any }),
    RangeError,
    /reduction must be "mean", "sum" or "none", got "avg"/,
  );
  assertThrows(
    () => crossEntropy(logits, new IndexTensor(new Int32Array([0, 1]), [1, 2])),
    ShapeError,
    /one-dimensional/,
  );
});

/** Float64 reference of the squared errors. */
function squaredErrors(p: ArrayLike<number>, t: ArrayLike<number>): number[] {
  return Array.from(p, (v, i) => (v - t[i]) ** 2);
}

Deno.test("mseLoss matches a reference and finite differences for pred and target", () => {
  for (const shape of [[1], [3, 4], [2, 3, 5]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const p = randomArray(n, n, -2, 2), t = randomArray(n, n + 1, -2, 2);
    for (const reduction of ["mean", "sum"] as const) {
      const pred = fromFloat32(p.slice(), shape, true);
      const target = fromFloat32(t.slice(), shape, true);
      const loss = mseLoss(pred, target, { reduction });
      assertClose([loss.item()], [reduce(squaredErrors(p, t), reduction)], `${reduction} loss`);
      loss.backward();
      const [gp, gt] = numericGrad(
        ([pp, tt]) => reduce(squaredErrors(pp, tt), reduction),
        [p, t],
      );
      assertClose(pred.grad!.data, gp, `${reduction} dpred`, { rtol: 1e-3 });
      assertClose(target.grad!.data, gt, `${reduction} dtarget`, { rtol: 1e-3 });
    }
  }
  // Reduction none keeps the shape; only pred requires a gradient here.
  const pred = fromFloat32(new Float32Array([1, 2, 3, 4]), [2, 2], true);
  const target = tensor([[0, 2], [5, 4]]);
  const loss = mseLoss(pred, target, { reduction: "none" });
  assert.deepEqual(loss.shape, [2, 2]);
  assert.deepEqual(Array.from(loss.data), [1, 0, 4, 0]);
  loss.backward(tensor([[1, 1], [2, 1]]));
  assert.deepEqual(Array.from(pred.grad!.data), [2, 0, -8, 0]);
  assert.equal(target.grad, null);
});

Deno.test("mseLoss rejects mismatched shapes and bad reductions", () => {
  assertThrows(
    () => mseLoss(tensor([1, 2]), tensor([[1, 2]])),
    ShapeError,
    /pred has shape \[2\] but target has shape \[1, 2\]/,
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => mseLoss(tensor([1]), tensor([1]), { reduction: "max" as any }),
    RangeError,
    /reduction/,
  );
  // deno-lint-ignore no-explicit-any
  assertThrows(() => mseLoss([1] as any, tensor([1])), TypeError, /pred must be a Tensor/);
});
