/**
 * Numerical conventions the kernels share with PyTorch, through the public API, on the CPU and
 * (when a GPU is available) on CUDA:
 *
 * - crossEntropy of a row whose log-softmax is NaN throughout in PyTorch (it subtracts the
 *   row's max: a +inf logit gives inf - inf, a row of -inf only -inf - -inf) is NaN, loss and
 *   every gradient entry; rows with -inf entries but a finite max, and huge finite logits, stay
 *   exact;
 * - dropout scales kept values by 1 / (1 - p) computed in double and rounded to float once
 *   (p = 0.9: exactly 10, not 9.999998), and drops element i when the top 32 bits of the i-th
 *   splitmix64 output for the seed are below fround(p) * 2^32 (sparselinear.h).
 */
import assert from "node:assert/strict";
import { crossEntropy, cudaAvailable, type Device, dropout, tensor } from "../mod.ts";

const devices: Device[] = cudaAvailable() ? ["cpu", "cuda"] : ["cpu"];

/** crossEntropy (sum) of one row and its gradient, as plain numbers. */
function crossEntropyRow(
  row: number[],
  label: number,
  device: Device,
): { loss: number; grad: number[] } {
  const logits = tensor([row], undefined, { device, requiresGrad: true });
  const loss = crossEntropy(logits, new Int32Array([label]), { reduction: "sum" });
  loss.backward();
  return { loss: loss.item(), grad: Array.from(logits.grad!.toArray()) };
}

/** Equal as floats, NaN equal to NaN (assert.deepEqual would also tell -0 from 0). */
function assertSame(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.ok(Number.isNaN(e) ? Number.isNaN(a) : a === e, `${what}: [${actual}] vs [${expected}]`);
  });
}

const LN2 = Math.fround(Math.LN2);

for (const device of devices) {
  Deno.test(`${device}: crossEntropy with +inf, -inf, NaN and huge logits, as PyTorch`, () => {
    const nan = [NaN, NaN, NaN];
    const cases: [number[], number, number, number[]][] = [
      // [logits, label, loss, gradient]: PyTorch 2.x's values.
      [[Infinity, 0, 0], 1, NaN, nan],
      [[Infinity, 0, 0], 0, NaN, nan],
      [[Infinity, -Infinity, 0], 2, NaN, nan],
      [[-Infinity, -Infinity, -Infinity], 0, NaN, nan],
      [[NaN, 0, 0], 1, NaN, nan],
      [[0, NaN, 0], 2, NaN, nan],
      [[-Infinity, 0, 0], 1, LN2, [0, -0.5, 0.5]],
      [[-Infinity, 0, 0], 0, Infinity, [-1, 0.5, 0.5]],
      [[1e30, -1e30, 0], 0, 0, [0, 0, 0]],
      [[1e30, -1e30, 0], 1, Math.fround(2e30), [1, -1, 0]],
      [[3e38, 3e38, -3e38], 0, LN2, [-0.5, 0.5, 0]],
    ];
    for (const [row, label, loss, grad] of cases) {
      const got = crossEntropyRow(row, label, device);
      const what = `crossEntropy([${row}], label ${label})`;
      assertSame([got.loss], [loss], `${what} loss`);
      assertSame(got.grad, grad, `${what} gradient`);
    }
  });

  Deno.test(`${device}: a NaN row makes the mean NaN but leaves the other rows' gradients`, () => {
    const logits = tensor([[Infinity, 0, 0], [0, 0, 0]], undefined, {
      device,
      requiresGrad: true,
    });
    const loss = crossEntropy(logits, new Int32Array([1, 2]));
    loss.backward();
    assert.ok(Number.isNaN(loss.item()));
    const g = Array.from(logits.grad!.toArray());
    const third = Math.fround(Math.fround(1 / 3) * 0.5); // softmax 1/3, times the mean's 1/2
    assertSame(g.slice(0, 3), [NaN, NaN, NaN], "the +inf row");
    assert.ok(Math.abs(g[3] - third) < 1e-7 && Math.abs(g[5] + 2 * third) < 1e-7, `${g}`);
  });

  Deno.test(`${device}: dropout keeps x * fround(1 / (1 - p)) exactly`, () => {
    const n = 4096;
    const x = Float32Array.from({ length: n }, (_, i) => Math.fround(0.25 + (i % 13) * 0.37));
    for (const p of [0.1, 0.5, 0.9, 0.999]) {
      const scale = Math.fround(1 / (1 - p));
      const xt = tensor(x, [n], { device, requiresGrad: true });
      const y = dropout(xt, p, { seed: 7n });
      y.backward(tensor(new Float32Array(n).fill(1), [n], { device }));
      const out = y.toArray(), grad = xt.grad!.toArray();
      let kept = 0;
      for (let i = 0; i < n; i++) {
        if (out[i] === 0) {
          assert.equal(grad[i], 0, `p ${p}: element ${i} dropped, its gradient not`);
          continue;
        }
        kept++;
        assert.equal(out[i], Math.fround(scale * x[i]), `p ${p}: kept value ${i}`);
        assert.equal(grad[i], scale, `p ${p}: gradient of kept element ${i}`);
      }
      assert.ok(kept > 0, `p ${p}: nothing kept`);
    }
  });

  Deno.test(`${device}: dropout's mask is the documented splitmix64 draw against fround(p)`, () => {
    const n = 2000;
    const seed = 0x0123456789abcdefn;
    const mask64 = (1n << 64n) - 1n;
    for (const p of [0.1, 0.3, 0.5, 0.9, 0.999]) {
      const threshold = BigInt(Math.floor(Math.fround(p) * 2 ** 32));
      const y = dropout(tensor(new Float32Array(n).fill(1), [n], { device }), p, { seed });
      const out = y.toArray();
      for (let i = 0; i < n; i++) {
        let z = (seed + BigInt(i + 1) * 0x9e3779b97f4a7c15n) & mask64;
        z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64;
        z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask64;
        z ^= z >> 31n;
        const dropped = z >> 32n < threshold;
        assert.equal(out[i] === 0, dropped, `p ${p}: element ${i}`);
      }
    }
  });
}
