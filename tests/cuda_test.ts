/**
 * The CUDA backend against the CPU backend on the same inputs.
 *
 * With a GPU (the CUDA library loads and sl_device_count() > 0), every op and its gradients,
 * the layers, losses, optimizers, a whole training step and the native sparsity kernels run on
 * both backends and must agree (relative error <= 1e-4 for float results, exact equality for
 * indices and masks). Without one, those tests are skipped with a line saying why.
 *
 * Everywhere: asking for device "cuda" without the library or without a GPU gives a clear
 * LibraryError; and when the CUDA library is built, its argument checks (which run on the host,
 * before any GPU work) must give the CPU library's status and message for the same bad call,
 * and it must export every kernel of the CPU symbol table.
 */
import assert from "node:assert/strict";
import { CPU_LIBRARY_ONLY, cudaLibrary } from "../ffi/cuda_library.ts";
import { native, type NativeLibrary, ptr, readCString } from "../ffi/library.ts";
import { noGrad } from "../lib/autograd.ts";
import type { Device, Storage } from "../lib/backend/backend.ts";
import {
  cudaBackend,
  cudaCacheLimit,
  cudaMemoryStats,
  cudaSynchronize,
  reclaimDeviceMemory,
  releaseCudaCache,
  setCudaCacheLimit,
  setCudaSyncChecks,
} from "../lib/backend/cuda.ts";
import { getBackend } from "../lib/backend/mod.ts";
import { batches } from "../lib/data/batches.ts";
import { randn, tensor, zeros } from "../lib/creation.ts";
import { LibraryError, NativeError } from "../lib/errors.ts";
import { kWinners } from "../lib/nn/activation_sparsity.ts";
import { dropout } from "../lib/nn/dropout.ts";
import { groupSum } from "../lib/nn/group_sum.ts";
import { LayerNorm, layerNorm } from "../lib/nn/layer_norm.ts";
import { sparseLinearGroupSum } from "../lib/nn/sparse_group_sum.ts";
import { Linear, linear } from "../lib/nn/linear.ts";
import { crossEntropy, mseLoss, type Reduction } from "../lib/nn/losses.ts";
import { repeatInterleave } from "../lib/nn/repeat_interleave.ts";
import { scaleShift } from "../lib/nn/scale_shift.ts";
import { Module } from "../lib/nn/module.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { logSoftmax, relu, sigmoid, tanh } from "../lib/ops/activation.ts";
import {
  abs,
  add,
  div,
  exp,
  log,
  mul,
  mulScalar,
  neg,
  pow,
  sqrt,
  square,
  sub,
} from "../lib/ops/elementwise.ts";
import { matmul } from "../lib/ops/matmul.ts";
import { mean, sum } from "../lib/ops/reduce.ts";
import { expand, permute, transpose } from "../lib/ops/shape.ts";
import { Adam, AdamW } from "../lib/optim/adam.ts";
import type { Optimizer } from "../lib/optim/optimizer.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { numel, type Tensor } from "../lib/tensor.ts";

// ------------------------------------------------------------------------ availability ----

/** Why the GPU tests cannot run here, or null when they can. */
function gpuUnavailableReason(): string | null {
  try {
    cudaBackend();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The CUDA library when it is built (even on a machine without a GPU), else null. */
function cudaLibraryOrNull(): ReturnType<typeof cudaLibrary> | null {
  try {
    return cudaLibrary();
  } catch {
    return null;
  }
}

const noGpu = gpuUnavailableReason();
if (noGpu !== null) console.log(`cuda_test: GPU comparisons skipped: ${noGpu}`);
const cudaLib = cudaLibraryOrNull();
if (cudaLib === null) {
  console.log("cuda_test: CUDA library not built; its argument-check parity tests are skipped");
}

/** A test that needs a GPU (skipped, with the reason printed once above, when there is none). */
function gpuTest(name: string, fn: () => void): void {
  Deno.test({ name: `cuda: ${name}`, ignore: noGpu !== null, fn });
}

// ------------------------------------------------------------------------- comparison ----

/** cuda vs cpu: max |a - e| relative to max |e| must be <= tol (NaN and infinities match). */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol = 1e-4,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  }
  let worst = 0, at = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    const d = Math.abs(a - e);
    if (!Number.isFinite(d)) assert.fail(`${what}: element ${i} is ${a} on cuda, ${e} on cpu`);
    if (d > worst) [worst, at] = [d, i];
  }
  const rel = worst / Math.max(scale, 1e-30);
  if (rel > tol) {
    assert.fail(
      `${what}: relative error ${rel.toExponential(2)} > ${tol} at element ${at} ` +
        `(cuda ${actual[at]}, cpu ${expected[at]})`,
    );
  }
}

/** A leaf tensor of uniform values in [lo, hi) from `seed`, on `device`. */
function leaf(shape: number[], seed: number, device: Device, lo = -1, hi = 1): Tensor {
  const data = new Generator(seed).fillUniform(new Float32Array(numel(shape)), lo, hi);
  return tensor(data, shape, { device, requiresGrad: true });
}

/** Builds a computation on a device: its output and the leaves whose gradients to compare. */
type Build = (device: Device) => { out: Tensor; leaves: Tensor[] };

/** Runs `build` on both devices; compares outputs and, after backward, every leaf gradient. */
function compareOp(name: string, build: Build, tol = 1e-4): void {
  gpuTest(name, () => {
    const runs = (["cpu", "cuda"] as const).map((device) => {
      const { out, leaves } = build(device);
      const values = out.toArray();
      if (out.requiresGrad) out.backward(randn([...out.shape], { seed: 99, device }));
      return { values, grads: leaves.map((t) => t.grad?.toArray() ?? null) };
    });
    const [cpu, cuda] = runs;
    assertClose(cuda.values, cpu.values, `${name}: forward`, tol);
    cpu.grads.forEach((g, i) => {
      if (g === null) assert.equal(cuda.grads[i], null, `${name}: gradient ${i}`);
      else assertClose(cuda.grads[i]!, g, `${name}: gradient of input ${i}`, tol);
    });
  });
}

// ------------------------------------------------------------ tests that run everywhere ----

Deno.test('cuda: device "cuda" without a GPU or library gives a clear LibraryError', {
  ignore: noGpu === null,
}, () => {
  const expected = cudaLib === null
    ? /libsparselinear_cuda, which was not found/
    : /no CUDA device/;
  for (
    const make of [
      () => tensor([1, 2, 3]).to("cuda"),
      () => zeros([2, 2], { device: "cuda" }),
      () => getBackend("cuda"),
      () => new SparseLinear(8, 4, { seed: 0 }).to("cuda"),
    ]
  ) {
    assert.throws(make, (err: unknown) => {
      assert.ok(err instanceof LibraryError, `expected a LibraryError, got ${err}`);
      assert.match((err as Error).message, /Device "cuda"/);
      assert.match((err as Error).message, expected);
      return true;
    });
  }
});

Deno.test("cuda: the CUDA library exports every kernel of the CPU symbol table", {
  ignore: cudaLib === null,
}, () => {
  assert.deepEqual([...cudaLib!.missing], []);
});

/** A bad call made on both libraries: the CUDA library checks it on the host, like the CPU. */
type BadCall = [name: string, call: (k: NativeLibrary) => number];

const i32 = new Int32Array(16), f32 = new Float32Array(16), i64 = new BigInt64Array(16);
const badCalls: BadCall[] = [
  [
    "spmm_fwd negative batch",
    (k) => k.sl_spmm_fwd(-1, 4, 4, 0n, ptr(i32), null, null, null, null, null),
  ],
  [
    "spmm_fwd huge nnz",
    (k) =>
      k.sl_spmm_fwd(1, 4, 4, 1n << 31n, ptr(i32), ptr(i32), ptr(f32), null, ptr(f32), ptr(f32)),
  ],
  [
    "spmm_fwd null x",
    (k) => k.sl_spmm_fwd(2, 4, 4, 0n, ptr(i32), null, null, null, null, ptr(f32)),
  ],
  [
    "spmm_bwd_input null col_ptr",
    (k) => k.sl_spmm_bwd_input(1, 4, 4, 0n, null, null, null, null, ptr(f32), ptr(f32)),
  ],
  [
    "sddmm negative n_in",
    (k) => k.sl_sddmm(1, -3, 4, 0n, ptr(i32), null, ptr(f32), ptr(f32), null),
  ],
  [
    "group_collapse size 0",
    (k) => k.sl_group_collapse(4, 4, 0n, ptr(i32), null, null, 0, ptr(f32)),
  ],
  [
    "group_collapse_bwd null dw",
    (k) => k.sl_group_collapse_bwd(4, 4, 2n, ptr(i32), ptr(i32), ptr(f32), 2, null),
  ],
  ["bias_grad null db", (k) => k.sl_bias_grad(2, 3, ptr(f32), null)],
  ["gemm bad trans", (k) => k.sl_gemm(2, 0, 2, 2, 2, 1, ptr(f32), 2, ptr(f32), 2, 0, ptr(f32), 2)],
  ["gemm small lda", (k) => k.sl_gemm(0, 0, 2, 3, 4, 1, ptr(f32), 2, ptr(f32), 3, 0, ptr(f32), 3)],
  [
    "gemm_batched overlapping C",
    (k) =>
      k.sl_gemm_batched(0, 0, 2, 2, 2, 2, 1, ptr(f32), 2, 4n, ptr(f32), 2, 4n, 0, ptr(f32), 2, 1n),
  ],
  [
    "binary bad op",
    (k) => k.sl_binary(7, 1, ptr(i64), ptr(f32), 4n, ptr(i64), ptr(f32), 4n, ptr(i64), ptr(f32)),
  ],
  ["binary stride beyond a_len", (k) => {
    const shape = new BigInt64Array([4n]), strides = new BigInt64Array([2n]);
    return k.sl_binary(
      0,
      1,
      ptr(shape),
      ptr(f32),
      4n,
      ptr(strides),
      ptr(f32),
      4n,
      ptr(strides),
      ptr(f32),
    );
  }],
  ["unary bad op", (k) => k.sl_unary(99, 4n, 0, 0, ptr(f32), ptr(f32))],
  ["sum_dims mask outside", (k) => {
    const shape = new BigInt64Array([2n, 3n]);
    return k.sl_sum_dims(2, ptr(shape), 8, 1, ptr(f32), ptr(f32));
  }],
  [
    "strided_copy too many dims",
    (k) => k.sl_strided_copy(9, ptr(i64), 1, ptr(f32), 4n, ptr(i64), ptr(f32)),
  ],
  ["log_softmax negative cols", (k) => k.sl_log_softmax_fwd(2n, -1, ptr(f32), ptr(f32))],
  [
    "layer_norm n 0",
    (k) => k.sl_layer_norm_fwd(2n, 0, 1e-5, ptr(f32), null, null, 0, ptr(f32), null, null),
  ],
  [
    "layer_norm relu 2",
    (k) => k.sl_layer_norm_fwd(2n, 3, 1e-5, ptr(f32), null, null, 2, ptr(f32), null, null),
  ],
  [
    "layer_norm_bwd null mean",
    (k) =>
      k.sl_layer_norm_bwd(
        2n,
        3,
        ptr(f32),
        null,
        ptr(f32),
        null,
        null,
        0,
        ptr(f32),
        ptr(f32),
        null,
        null,
      ),
  ],
  [
    "cross_entropy bad reduction",
    (k) => k.sl_cross_entropy_fwd(2, 3, ptr(f32), ptr(i32), 5, ptr(f32), null),
  ],
  [
    "cross_entropy_bwd bad stride",
    (k) => k.sl_cross_entropy_bwd(2, 3, ptr(f32), ptr(i32), ptr(f32), ptr(f32), 2, 1, ptr(f32)),
  ],
  [
    "mse both outputs null",
    (k) => k.sl_mse_bwd(4n, ptr(f32), ptr(f32), ptr(f32), 0, 1, null, null),
  ],
  ["dropout p > 1", (k) => k.sl_dropout_fwd(4n, 1.5, 1n, ptr(f32), ptr(f32))],
  ["scale_shift_fwd null y", (k) => k.sl_scale_shift_fwd(2n, 3, ptr(f32), null, null, null)],
  [
    "kwinners k > n",
    (k) => k.sl_kwinners_fwd(2n, 4, 5, 0, 0, ptr(f32), null, ptr(f32), null, null),
  ],
  [
    "kwinners boost without duty cycle",
    (k) => k.sl_kwinners_fwd(2n, 4, 2, 1, 0, ptr(f32), null, ptr(f32), null, null),
  ],
  ["kwinners_bwd null winners", (k) => k.sl_kwinners_bwd(2n, 4, 2, null, ptr(f32), ptr(f32))],
  [
    "sgd nesterov with dampening",
    (k) => k.sl_sgd_step(4n, 0.1, 0.9, 0.5, 0, 1, 0, ptr(f32), ptr(f32), ptr(f32)),
  ],
  [
    "adam beta1 1",
    (k) =>
      k.sl_adam_step(
        4n,
        0.1,
        1,
        0.999,
        1e-8,
        0,
        0,
        0,
        1n,
        ptr(f32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
        null,
      ),
  ],
  [
    "adam step 0",
    (k) =>
      k.sl_adam_step(
        4n,
        0.1,
        0.9,
        0.999,
        1e-8,
        0,
        0,
        0,
        0n,
        ptr(f32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
        null,
      ),
  ],
  ["topk k > n", (k) => k.sl_topk(4n, ptr(f32), 5n, 0, ptr(i32))],
  ["topk bad flags", (k) => k.sl_topk(4n, ptr(f32), 2n, 8, ptr(i32))],
  [
    "dense_grad_topk small max_size",
    (k) =>
      k.sl_dense_grad_topk(
        1,
        8,
        2,
        ptr(f32),
        ptr(f32),
        0n,
        ptr(i32),
        null,
        1n,
        4n,
        ptr(i32),
        ptr(i32),
        null,
      ),
  ],
  [
    "sample_absent negative k",
    (k) => k.sl_sample_absent(2, 2, 0n, ptr(i32), null, -1n, 1n, ptr(i32), ptr(i32)),
  ],
  [
    "csr_drop_grow bad flags",
    (k) =>
      k.sl_csr_drop_grow(
        2,
        2,
        0n,
        ptr(i32),
        null,
        null,
        0n,
        null,
        0n,
        null,
        null,
        4,
        ptr(i32),
        null,
        null,
        null,
      ),
  ],
  [
    "csr_drop_grow n_grow beyond int32",
    (k) =>
      k.sl_csr_drop_grow(
        2,
        2,
        0n,
        ptr(i32),
        null,
        null,
        0n,
        null,
        1n << 31n,
        ptr(i32),
        ptr(i32),
        0,
        ptr(i32),
        ptr(i32),
        null,
        null,
      ),
  ],
  [
    "sample_absent huge k",
    (k) => k.sl_sample_absent(2, 2, 0n, ptr(i32), null, 1n << 62n, 1n, ptr(i32), ptr(i32)),
  ],
  [
    "dense_grad_topk huge k",
    (k) =>
      k.sl_dense_grad_topk(
        1,
        8,
        2,
        ptr(f32),
        ptr(f32),
        0n,
        ptr(i32),
        null,
        1n << 62n,
        8n,
        ptr(i32),
        ptr(i32),
        null,
      ),
  ],
  [
    "csr_drop_grow n_drop > nnz",
    (k) =>
      k.sl_csr_drop_grow(
        2,
        2,
        1n,
        ptr(i32),
        ptr(i32),
        null,
        2n,
        ptr(i32),
        0n,
        null,
        null,
        0,
        ptr(i32),
        ptr(i32),
        null,
        null,
      ),
  ],
  [
    "coo_to_csr values mismatch",
    (k) =>
      k.sl_coo_to_csr(
        2,
        2,
        1n,
        ptr(i32),
        ptr(i32),
        ptr(f32),
        ptr(i32),
        ptr(i32),
        null,
        null,
        ptr(i64),
        ptr(i64),
      ),
  ],
  ["csr_validate negative n_rows", (k) => k.sl_csr_validate(-2, 2, 0n, ptr(i32), null)],
  ["csr_to_csc null col_ptr", (k) => k.sl_csr_to_csc(2, 2, 0n, ptr(i32), null, null, null, null)],
  ["fill negative n", (k) => k.sl_fill(-1n, 0, ptr(f32))],
  ["axpy null x", (k) => k.sl_axpy(4n, 1, null, ptr(f32))],
  ["copy null y", (k) => k.sl_copy(4n, ptr(f32), null)],
  ["set_num_threads above 4096", (k) => k.sl_set_num_threads(4097)],
  ["set_matmul_precision 2", (k) => k.sl_set_matmul_precision(2)],
  ["advise_huge_pages negative bytes", (k) => k.sl_advise_huge_pages(ptr(f32), -1n)],
  [
    "spmm_fwd_fm null xT",
    (k) => k.sl_spmm_fwd_fm(2, 4, 4, 0n, ptr(i32), null, null, null, null, ptr(f32)),
  ],
  [
    "spmm_bwd_input_csr null dx",
    (k) => k.sl_spmm_bwd_input_csr(1, 4, 4, 0n, ptr(i32), null, null, ptr(f32), null),
  ],
  [
    "spmm_bwd_csr null x",
    (k) =>
      k.sl_spmm_bwd_csr(
        1,
        4,
        4,
        1n,
        ptr(i32),
        ptr(i32),
        ptr(f32),
        null,
        ptr(f32),
        ptr(f32),
        ptr(f32),
      ),
  ],
  [
    "spmm_bwd null col_ptr",
    (k) =>
      k.sl_spmm_bwd(
        1,
        4,
        4,
        0n,
        ptr(i32),
        null,
        null,
        null,
        null,
        null,
        ptr(f32),
        ptr(f32),
        null,
        null,
        null,
      ),
  ],
  [
    "spmm_bwd_fm huge nnz",
    (k) =>
      k.sl_spmm_bwd_fm(
        2,
        4,
        4,
        1n << 31n,
        ptr(i32),
        ptr(i32),
        ptr(i32),
        ptr(i32),
        ptr(i32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
        ptr(f32),
      ),
  ],
  ["binary_bwd null dy", (k) => {
    const shape = new BigInt64Array([4n]), strides = new BigInt64Array([1n]);
    return k.sl_binary_bwd(
      2,
      1,
      ptr(shape),
      ptr(f32),
      4n,
      ptr(strides),
      ptr(f32),
      4n,
      ptr(strides),
      null,
      ptr(f32),
      null,
    );
  }],
  [
    "unary_bwd bad op",
    (k) => k.sl_unary_bwd(12, 4n, 0, 0, ptr(f32), ptr(f32), ptr(f32), ptr(f32)),
  ],
  ["sum_axis overflow", (k) => k.sl_sum_axis(1n << 62n, 4n, 1n, 1, ptr(f32), ptr(f32))],
  ["sum_all null y", (k) => k.sl_sum_all(4n, 1, ptr(f32), null)],
  [
    "log_softmax_bwd overflow",
    (k) => k.sl_log_softmax_bwd(1n << 62n, 4, ptr(f32), ptr(f32), ptr(f32)),
  ],
  ["mse_fwd bad reduction", (k) => k.sl_mse_fwd(4n, ptr(f32), ptr(f32), 3, ptr(f32))],
  ["dropout_bwd null dy", (k) => k.sl_dropout_bwd(4n, 0.5, 1n, null, ptr(f32))],
  [
    "scale_shift_bwd null dy",
    (k) => k.sl_scale_shift_bwd(2n, 3, ptr(f32), null, null, ptr(f32), null, null),
  ],
];

/** Entries of the CPU table with no failure to check (queries of the library itself). */
const NO_BAD_CALL: ReadonlySet<string> = new Set([
  "sl_last_error",
  "sl_abi_version",
  "sl_get_num_threads",
  "sl_get_matmul_precision",
  "sl_has_cblas",
  "sl_scratch_peak_bytes",
]);

Deno.test("cuda: every exported function that can fail has a bad call in the parity table", () => {
  // The table's calls made on the CPU library through a proxy that records what they call.
  const cpu = native();
  const called = new Set<string>();
  const recorder = new Proxy(cpu, {
    get(target, name) {
      called.add(String(name));
      return target[name as keyof NativeLibrary];
    },
  });
  for (const [, call] of badCalls) call(recorder);
  // (The CPU library's own kernels have no CUDA counterpart to compare with: their bad calls are
  // in csrc/tests/test_sparse.c.)
  const missing = Object.keys(cpu).filter((n) =>
    !NO_BAD_CALL.has(n) && !CPU_LIBRARY_ONLY.has(n) && !called.has(n)
  );
  assert.deepEqual(missing, [], "functions without a bad call");
});

Deno.test("reclaimDeviceMemory lets the finalizers of unreachable objects run", async () => {
  // What frees an undisposed CUDA tensor is a FinalizationRegistry callback; in a synchronous
  // loop it never runs. After reclaimDeviceMemory({ collect: true }) it has (any device).
  let finalized = 0;
  const registry = new FinalizationRegistry(() => finalized++);
  (() => {
    for (let i = 0; i < 50; i++) registry.register({ step: i }, i);
  })();
  assert.equal(finalized, 0);
  const freed = await reclaimDeviceMemory({ collect: true });
  assert.equal(finalized, 50);
  assert.ok(freed >= 0);
});

Deno.test("cuda: argument checks give the CPU library's status and message", {
  ignore: cudaLib === null,
}, () => {
  const cpu = native();
  const gpu = cudaLib!.kernels;
  for (const [name, call] of badCalls) {
    const cpuStatus = call(cpu);
    const cpuMessage = readCString(cpu.sl_last_error());
    const gpuStatus = call(gpu);
    const gpuMessage = readCString(gpu.sl_last_error());
    assert.notEqual(cpuStatus, 0, `${name}: the CPU library accepted the call`);
    assert.equal(gpuStatus, cpuStatus, `${name}: status (${gpuMessage} vs ${cpuMessage})`);
    assert.equal(gpuMessage, cpuMessage, `${name}: message`);
  }
});

Deno.test("cuda: without a GPU, valid kernel calls fail with SL_E_DEVICE, never crash", {
  ignore: cudaLib === null || noGpu === null,
}, () => {
  const k = cudaLib!.kernels;
  const status = k.sl_fill(4n, 1, ptr(f32)); // a host pointer: the call must stop before use
  assert.equal(status, 7);
  assert.match(readCString(k.sl_last_error()), /^sl_fill: no usable CUDA device/);
  assert.equal(cudaLib!.device.sl_device_count(), 0);
  assert.match(readCString(k.sl_last_error()), /^sl_device_count: /);
});

Deno.test("cuda: the device calls check their arguments on the host, with or without a GPU", {
  ignore: cudaLib === null,
}, () => {
  const d = cudaLib!.device;
  const fails = (status: number, code: number, message: RegExp) => {
    assert.equal(status, code, readCString(cudaLib!.kernels.sl_last_error()));
    assert.match(readCString(cudaLib!.kernels.sl_last_error()), message);
  };
  const out = new BigUint64Array(1), name = new Uint8Array(8);
  fails(d.sl_device_alloc(-1n, ptr(out)), 2, /^sl_device_alloc: bytes must be >= 0, got -1$/);
  fails(d.sl_device_alloc(8n, null), 1, /^sl_device_alloc: ptr must not be null$/);
  out[0] = 1n;
  fails(d.sl_device_alloc(0n, ptr(out)), 0, /^$/);
  assert.equal(out[0], 0n, "0 bytes: a null pointer");
  fails(d.sl_device_free(null), 0, /^$/);
  fails(d.sl_device_memcpy(ptr(f32), ptr(f32), 4n, 4), 2, /^sl_device_memcpy: kind must be 1 /);
  fails(d.sl_device_memcpy(ptr(f32), ptr(f32), -4n, 1), 2, /^sl_device_memcpy: bytes must be >= 0/);
  fails(d.sl_device_memcpy(null, ptr(f32), 4n, 1), 1, /^sl_device_memcpy: dst must not be null$/);
  fails(d.sl_device_memcpy(null, null, 0n, 2), 0, /^$/);
  fails(d.sl_device_memset(ptr(f32), 256, 4n), 2, /^sl_device_memset: value must be a byte /);
  fails(d.sl_device_memset(ptr(f32), -1, 4n), 2, /^sl_device_memset: value must be a byte /);
  fails(d.sl_device_memset(null, 0, 4n), 1, /^sl_device_memset: ptr must not be null$/);
  fails(d.sl_device_set_sync_checks(2), 2, /^sl_device_set_sync_checks: on must be 0 or 1, got 2$/);
  fails(d.sl_device_info(0, ptr(name), 0, null, null, null, null), 2, /^sl_device_info: name_len /);
});

// ------------------------------------------------------------------- element-wise ops ----

compareOp("add with broadcasting", (d) => {
  const a = leaf([4, 1, 3], 1, d), b = leaf([2, 3], 2, d);
  return { out: add(a, b), leaves: [a, b] };
});
compareOp("sub with a scalar and a tensor", (d) => {
  const a = leaf([3, 5], 3, d), b = leaf([5], 4, d);
  return { out: sub(sub(a, b), 2.5), leaves: [a, b] };
});
compareOp("mul with broadcasting", (d) => {
  const a = leaf([2, 3, 4], 5, d), b = leaf([3, 1], 6, d);
  return { out: mul(a, b), leaves: [a, b] };
});
compareOp("div with broadcasting", (d) => {
  const a = leaf([6, 4], 7, d), b = leaf([4], 8, d, 0.5, 2);
  return { out: div(div(a, b), 3), leaves: [a, b] };
});
compareOp("scalar divided by a tensor", (d) => {
  const a = leaf([10], 9, d, 0.5, 2);
  return { out: div(2, a), leaves: [a] };
});
for (
  const [name, f, lo, hi] of [
    ["neg", neg, -1, 1],
    ["exp", exp, -2, 2],
    ["log", log, 0.1, 3],
    ["relu", relu, -1, 1],
    ["sigmoid", sigmoid, -6, 6],
    ["tanh", tanh, -3, 3],
    ["abs", abs, -1, 1],
    ["sqrt", sqrt, 0.1, 4],
    ["square", square, -2, 2],
    ["pow 3", (x: Tensor) => pow(x, 3), -2, 2],
    ["mulScalar", (x: Tensor) => mulScalar(x, -1.5), -1, 1],
  ] as const
) {
  compareOp(`unary ${name}`, (d) => {
    const x = leaf([7, 9], 10, d, lo, hi);
    return { out: f(x), leaves: [x] };
  });
}
gpuTest("relu propagates NaN and its gradient matches", () => {
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const x = tensor(new Float32Array([-1, NaN, 0, 2, -0]), [5], { device: d });
    return relu(x).toArray();
  });
  // deepEqual compares float arrays element-wise with ===, so NaN never equals NaN: compare
  // NaN-ness and values (0 == -0) one element at a time instead.
  assert.equal(cuda.length, cpu.length);
  for (let i = 0; i < cpu.length; i++) {
    assert.equal(
      Number.isNaN(cuda[i]),
      Number.isNaN(cpu[i]),
      `element ${i}: ${cuda[i]} vs ${cpu[i]}`,
    );
    if (!Number.isNaN(cpu[i])) {
      assert.ok(cuda[i] === cpu[i], `element ${i}: ${cuda[i]} vs ${cpu[i]}`);
    }
  }
  assert.ok(Number.isNaN(cuda[1]));
});
compareOp("logSoftmax", (d) => {
  const x = leaf([5, 300], 11, d, -5, 5);
  return { out: logSoftmax(x), leaves: [x] };
});

// ---------------------------------------------------------------------- reductions ----

compareOp("sum of everything (many elements)", (d) => {
  const x = leaf([300, 1000], 12, d);
  return { out: sum(x), leaves: [x] };
});
compareOp("sum over an axis", (d) => {
  const x = leaf([4, 513, 3], 13, d);
  return { out: sum(x, 1), leaves: [x] };
});
compareOp("mean over rows, keepDim", (d) => {
  const x = leaf([2000, 7], 14, d);
  return { out: mean(x, 0, { keepDim: true }), leaves: [x] };
});
compareOp("sum of a broadcast gradient over several dimensions", (d) => {
  const a = leaf([3, 1, 5, 1], 15, d), b = leaf([4, 1, 6], 16, d);
  return { out: mul(a, b), leaves: [a, b] };
});
compareOp("transpose, permute and expand (strided copies)", (d) => {
  // transpose(y) is [4, 1]: broadcasts to [5, 4, 3] (a [5, 1] would not: 5 vs 4).
  const x = leaf([3, 4, 5], 17, d), y = leaf([1, 4], 18, d);
  const t = permute(transpose(x, 0, 1), [2, 0, 1]);
  return { out: add(t, expand(transpose(y, 0, 1), [5, 4, 3])), leaves: [x, y] };
});

// -------------------------------------------------------------------------- matmul ----

for (
  const [name, aShape, bShape] of [
    ["2-D", [33, 70], [70, 65]],
    ["N-D @ 2-D", [2, 17, 40], [40, 9]],
    ["batched", [3, 20, 30], [3, 30, 25]],
    ["broadcast matrix @ batch", [20, 30], [4, 30, 10]],
    ["vector @ matrix", [64], [64, 5]],
    ["matrix @ vector", [6, 64], [64]],
  ] as const
) {
  compareOp(`matmul ${name}`, (d) => {
    const a = leaf([...aShape], 19, d), b = leaf([...bShape], 20, d);
    return { out: matmul(a, b), leaves: [a, b] };
  });
}

// ------------------------------------------------------------------ sparse layer ----

/** SparseLinear with the same seed on both devices; input of `shape` (last dim = inFeatures). */
function sparseCase(
  name: string,
  inF: number,
  outF: number,
  sparsity: number,
  shape: number[],
  options: { bias?: boolean; inputGrad?: boolean } = {},
): void {
  compareOp(`SparseLinear ${name}`, (d) => {
    const layer = new SparseLinear(inF, outF, { sparsity, seed: 5, bias: options.bias ?? true });
    layer.to(d);
    const x = leaf(shape, 21, d);
    x.requiresGrad = options.inputGrad ?? true;
    const leaves = [x, layer.weights];
    if (layer.bias !== null) leaves.push(layer.bias);
    return { out: layer.forward(x), leaves };
  });
}
for (const batch of [1, 2, 3, 4, 5, 8, 9, 16, 33, 64, 130, 257]) {
  sparseCase(`batch ${batch}`, 300, 200, 0.9, [batch, 300]);
}
sparseCase("batch 1, long rows (vector-load SpMV path)", 4096, 96, 0.95, [1, 4096]);
sparseCase("batch 1, long rows, no bias", 4096, 96, 0.95, [1, 4096], { bias: false });
sparseCase("N-D input", 50, 40, 0.8, [2, 3, 50]);
sparseCase("input without gradient", 100, 60, 0.9, [12, 100], { inputGrad: false });
sparseCase("very sparse (empty rows and columns)", 500, 400, 0.999, [7, 500]);
sparseCase("dense-ish", 64, 48, 0.1, [10, 64]);
compareOp("SparseLinear.forwardGroupSum (collapsed on the CPU, plain on CUDA)", (d) => {
  const layer = new SparseLinear(200, 4000, { sparsity: 0.9, seed: 5 }).to(d);
  const x = leaf([32, 200], 37, d);
  return { out: layer.forwardGroupSum(x, 10), leaves: [x, layer.weights, layer.bias!] };
});
compareOp("SparseLinear.forwardFeatureMajor (batch 70: two tiles)", (d) => {
  const layer = new SparseLinear(300, 200, { sparsity: 0.9, seed: 5 }).to(d);
  const xT = leaf([300, 70], 38, d);
  return { out: layer.forwardFeatureMajor(xT), leaves: [xT, layer.weights, layer.bias!] };
});
compareOp("SparseLinear.forwardFeatureMajor (batch 1)", (d) => {
  const layer = new SparseLinear(300, 200, { sparsity: 0.9, seed: 5 }).to(d);
  const xT = leaf([300, 1], 39, d);
  return { out: layer.forwardFeatureMajor(xT), leaves: [xT, layer.weights, layer.bias!] };
});
compareOp("sparseLinearGroupSum (collapsed weights) on both devices", (d) => {
  const layer = new SparseLinear(200, 4000, { sparsity: 0.9, seed: 5 }).to(d);
  const x = leaf([32, 200], 37, d);
  const out = sparseLinearGroupSum(x, layer.weights, layer.bias, layer.pattern, 10);
  return { out, leaves: [x, layer.weights, layer.bias!] };
});
compareOp("SparseLinear with user connectivity and empty rows", (d) => {
  const rows = new Int32Array([0, 0, 3, 3, 3, 5]), cols = new Int32Array([1, 4, 0, 2, 4, 3]);
  const layer = new SparseLinear(5, 6, { connectivity: [rows, cols], seed: 3 }).to(d);
  const x = leaf([4, 5], 22, d);
  return { out: layer.forward(x), leaves: [x, layer.weights, layer.bias!] };
});

// ---------------------------------------------------------------- dense nn layers ----

compareOp("linear", (d) => {
  const x = leaf([9, 40], 23, d), w = leaf([30, 40], 24, d), b = leaf([30], 25, d);
  return { out: linear(x, w, b), leaves: [x, w, b] };
});
compareOp("layerNorm over a long last dimension", (d) => {
  const x = leaf([6, 2000], 26, d, -3, 3), w = leaf([2000], 27, d), b = leaf([2000], 28, d);
  return { out: layerNorm(x, [2000], w, b), leaves: [x, w, b] };
});
compareOp("layerNorm with a fused ReLU", (d) => {
  const x = leaf([6, 2000], 26, d, -3, 3), w = leaf([2000], 27, d), b = leaf([2000], 28, d);
  return { out: layerNorm(x, [2000], w, b, 1e-5, "relu"), leaves: [x, w, b] };
});
gpuTest("layerNorm with a fused ReLU is relu(layerNorm) on the GPU too, bit for bit", () => {
  const [fused, plain] = [true, false].map((fuse) => {
    const x = leaf([5, 3000], 33, "cuda", -3, 3), w = leaf([3000], 34, "cuda");
    const b = leaf([3000], 35, "cuda");
    const out = fuse ? layerNorm(x, 3000, w, b, 1e-5, "relu") : relu(layerNorm(x, 3000, w, b));
    out.backward(randn([5, 3000], { seed: 36, device: "cuda" }));
    return [out, x.grad!, w.grad!, b.grad!].map((t) => t.toArray());
  });
  ["output", "dx", "dweight", "dbias"].forEach((what, i) => {
    assert.deepEqual(fused[i], plain[i], what);
  });
});
/** A leaf with some non-finite entries: `poison` maps index → value. */
function poisonedLeaf(shape: number[], seed: number, device: Device, poison: number[][]): Tensor {
  const data = new Generator(seed).fillUniform(new Float32Array(numel(shape)), -3, 3);
  for (const [i, v] of poison) data[i] = v;
  return tensor(data, shape, { device, requiresGrad: true });
}
// relu(NaN) is NaN and its gradient passes (as PyTorch and sl_unary): on both devices, fused.
compareOp("layerNorm with a fused ReLU on NaN and infinite values", (d) => {
  const x = poisonedLeaf([4, 300], 40, d, [[7, NaN], [300 + 9, Infinity]]);
  const w = poisonedLeaf([300], 41, d, [[1, NaN]]);
  const b = poisonedLeaf([300], 42, d, [[3, -Infinity], [4, Infinity]]);
  const out = layerNorm(x, 300, w, b, 1e-5, "relu");
  const y = out.toArray();
  assert.ok(Number.isNaN(y[0]) && Number.isNaN(y[600 + 1]) && y[600 + 3] === 0, `${d}: NaN kept`);
  return { out, leaves: [x, w, b] };
});
compareOp("layerNorm over two dimensions, many rows, no affine", (d) => {
  const x = leaf([700, 4, 6], 29, d);
  return { out: layerNorm(x, [4, 6], null, null), leaves: [x] };
});
compareOp("scaleShift", (d) => {
  const x = leaf([300, 70], 30, d), s = leaf([70], 31, d), t = leaf([70], 32, d);
  return { out: scaleShift(x, s, t), leaves: [x, s, t] };
});
compareOp("groupSum", (d) => {
  const x = leaf([5, 24], 33, d);
  return { out: groupSum(x, 4), leaves: [x] };
});
compareOp("repeatInterleave", (d) => {
  const x = leaf([5, 6], 34, d);
  return { out: repeatInterleave(x, 3, 1), leaves: [x] };
});
for (const reduction of ["mean", "sum", "none"] as Reduction[]) {
  compareOp(`crossEntropy (${reduction})`, (d) => {
    const logits = leaf([37, 11], 35, d, -4, 4);
    const labels = Int32Array.from({ length: 37 }, (_, i) => (i * 7) % 11);
    return { out: crossEntropy(logits, labels, { reduction }), leaves: [logits] };
  });
  compareOp(`mseLoss (${reduction})`, (d) => {
    const p = leaf([13, 9], 36, d), t = leaf([13, 9], 37, d);
    return { out: mseLoss(p, t, { reduction }), leaves: [p, t] };
  });
}

gpuTest("mean losses divide the double sum as the CPU does: the same bits at small sizes", () => {
  // The MSE mean multiplied the sum by a float 1/n, which moved ~1 in 4 results of small n by
  // one ulp; cross-entropy's multiplied by a double 1/n (rarely a last-bit difference).
  const mismatches: string[] = [];
  for (let trial = 0; trial < 120; trial++) {
    const n = 1 + (trial % 40), classes = 2 + (trial % 9);
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const p = leaf([n], 500 + trial, d, -3, 3), t = leaf([n], 900 + trial, d, -3, 3);
      const logits = leaf([n, classes], 1300 + trial, d, -5, 5);
      const labels = Int32Array.from({ length: n }, (_, i) => (i * 5 + trial) % classes);
      return [mseLoss(p, t).item(), crossEntropy(logits, labels).item()];
    });
    if (cuda[0] !== cpu[0]) mismatches.push(`mse n=${n}: ${cuda[0]} vs ${cpu[0]}`);
    if (cuda[1] !== cpu[1]) mismatches.push(`ce n=${n}: ${cuda[1]} vs ${cpu[1]}`);
  }
  assert.deepEqual(mismatches, []);
});

gpuTest("dropout draws the same mask on both devices (same seed)", () => {
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const x = leaf([64, 129], 38, d);
    const y = dropout(x, 0.3, { seed: 12345n });
    y.backward(randn([64, 129], { seed: 7, device: d }));
    return { y: y.toArray(), g: x.grad!.toArray() };
  });
  assert.deepEqual(cuda.y.map((v) => (v === 0 ? 0 : 1)), cpu.y.map((v) => (v === 0 ? 0 : 1)));
  assertClose(cuda.y, cpu.y, "dropout forward");
  assertClose(cuda.g, cpu.g, "dropout gradient");
});

gpuTest("kWinners: same winners, gradients and duty-cycle update", () => {
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const x = leaf([33, 1000], 39, d);
    const duty = tensor(new Generator(40).fillUniform(new Float32Array(1000), 0, 0.2), [1000], {
      device: d,
    });
    const y = kWinners(x, 37, { dutyCycle: duty, boostStrength: 1.5, dutyCycleRate: 0.1 });
    y.backward(randn([33, 1000], { seed: 8, device: d }));
    return { y: y.toArray(), g: x.grad!.toArray(), duty: duty.toArray() };
  });
  assert.deepEqual(cuda.y, cpu.y, "kWinners keeps the raw values of the same winners");
  assert.deepEqual(cuda.g, cpu.g);
  assertClose(cuda.duty, cpu.duty, "duty cycle");
});

gpuTest("kWinners: a boost strength past exp's range ranks as on the CPU", () => {
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const duty = tensor([0, 0, 0.0005, 0.002, 0, 0], undefined, { device: d });
    const x = tensor([[0.1, 0.5, 2, 3, 0, -1]], undefined, { device: d });
    return kWinners(x, 2, { dutyCycle: duty, boostStrength: 3000 }).toArray();
  });
  assert.deepEqual(cuda, cpu);
  assert.deepEqual(Array.from(cpu), [0, 0.5, 2, 0, 0, 0]);
});

gpuTest("kWinners: ties go to the lower index, k = n copies", () => {
  for (const k of [3, 8]) {
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const x = tensor(new Float32Array([1, 2, 2, 2, 0, -0, 2, 1]), [1, 8], { device: d });
      return kWinners(x, k).toArray();
    });
    assert.deepEqual(cuda, cpu);
  }
});

// ----------------------------------------------------------------------- optimizers ----

function compareOptimizer(name: string, make: (params: Tensor[]) => Optimizer): void {
  gpuTest(`optimizer ${name}`, () => {
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const params = [leaf([1000], 41, d), leaf([17, 3], 42, d)];
      const opt = make(params);
      for (let step = 0; step < 4; step++) {
        params.forEach((p, i) => {
          p.grad = randn([...p.shape], { seed: 100 + 10 * step + i, device: d });
        });
        opt.step();
      }
      return params.map((p) => p.toArray());
    });
    cpu.forEach((p, i) => assertClose(cuda[i], p, `${name} parameter ${i}`));
  });
}
compareOptimizer("SGD", (p) => new SGD(p, { lr: 0.1 }));
compareOptimizer(
  "SGD momentum, weight decay",
  (p) => new SGD(p, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
);
compareOptimizer("SGD Nesterov", (p) => new SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true }));
compareOptimizer("Adam", (p) => new Adam(p, { lr: 0.01 }));
compareOptimizer(
  "Adam amsgrad, weight decay",
  (p) => new Adam(p, { lr: 0.01, amsgrad: true, weightDecay: 0.1 }),
);
compareOptimizer("AdamW", (p) => new AdamW(p, { lr: 0.01, weightDecay: 0.05 }));

// ------------------------------------------------------------------ training steps ----

gpuTest("three training steps of a sparse model agree (Adam, cross-entropy)", () => {
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const model = new Sequential(
      new SparseLinear(784, 500, { sparsity: 0.95, seed: 1 }),
      new LayerNorm(500),
      new ReLU(),
      new Linear(500, 10, { seed: 2 }),
    ).to(d);
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      const x = randn([64, 784], { seed: 200 + step, device: d });
      const labels = Int32Array.from({ length: 64 }, (_, i) => (i * 3 + step) % 10);
      opt.zeroGrad();
      const loss = crossEntropy(model.forward(x), labels);
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    return { losses, params: model.parameters().map((p) => p.toArray()) };
  });
  assertClose(cuda.losses, cpu.losses, "losses");
  cpu.params.forEach((p, i) => assertClose(cuda.params[i], p, `parameter ${i}`, 1e-3));
});

gpuTest("module.to moves SparseLinear's pattern; back to the CPU gives the same layer", () => {
  const layer = new SparseLinear(64, 32, { sparsity: 0.8, seed: 4 });
  const x = randn([5, 64], { seed: 5 });
  const expected = noGrad(() => layer.forward(x)).toArray();
  layer.to("cuda");
  assert.equal(layer.device, "cuda");
  assert.equal(layer.pattern.device, "cuda");
  const onGpu = noGrad(() => layer.forward(x.to("cuda"))).toArray();
  assertClose(onGpu, expected, "forward on cuda");
  layer.to("cpu");
  assert.equal(layer.pattern.device, "cpu");
  assertClose(noGrad(() => layer.forward(x)).toArray(), expected, "forward back on cpu");
});

gpuTest("module.to keeps tied parameters tied and moves gradients, as PyTorch", () => {
  class Holder extends Module {
    constructor(w: Tensor) {
      super();
      this.registerParameter("w", w);
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  class Pair extends Module {
    constructor(w: Tensor) {
      super();
      this.registerModule("a", new Holder(w));
      this.registerModule("b", new Holder(w));
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const w = randn([3, 2], { seed: 6 });
  w.requiresGrad = true;
  w.grad = randn([3, 2], { seed: 7 });
  const expectedGrad = w.grad.toArray();
  const model = new Pair(w).to("cuda");
  const [a, b] = model.namedParameters("", { removeDuplicate: false }).map(([, p]) => p);
  assert.equal(a, b, "the tie survives the move");
  assert.equal(a.device, "cuda");
  assert.ok(a.requiresGrad);
  assert.equal(a.grad?.device, "cuda");
  assertClose(a.grad!.toArray(), expectedGrad, "moved gradient");
});

gpuTest("backward(grad) with the gradient on the other device is a TypeError, not a crash", () => {
  // A CPU tensor's backward ran the CPU kernels on the CUDA gradient's device pointer.
  const onCpu = leaf([2, 3], 1, "cpu");
  assert.throws(() => sum(onCpu, 0).backward(zeros([3], { device: "cuda" })), TypeError);
  const onCuda = leaf([2, 3], 1, "cuda");
  assert.throws(() => sum(onCuda, 0).backward(zeros([3])), TypeError);
  assert.equal(onCpu.grad, null);
  assert.equal(onCuda.grad, null);
});

gpuTest("DeviceStorage: zeros, write/toHost round trip, dispose frees", () => {
  const before = cudaMemoryStats();
  const t = zeros([1000], { device: "cuda" });
  assert.ok(t.toArray().every((v) => v === 0));
  const values = new Generator(1).fillUniform(new Float32Array(1000), -1, 1);
  t.storage.write(values);
  assert.deepEqual(t.toArray(), values);
  assert.equal(cudaMemoryStats().bytes, before.bytes + 4000);
  t.dispose();
  assert.equal(cudaMemoryStats().bytes, before.bytes);
  assert.throws(() => t.toArray(), /disposed/);
  const ints = getBackend("cuda").fromHost(new Int32Array([3, -1, 7]));
  assert.deepEqual(ints.toHost(), new Int32Array([3, -1, 7]));
  assert.throws(() => t.storage.write(new Float32Array(3)), RangeError);
  ints.dispose();
});

gpuTest("block cache: a disposed buffer serves the next allocation of its size", () => {
  const address = (t: Tensor) => Deno.UnsafePointer.value(t.storage.ptr());
  const limit = cudaCacheLimit();
  try {
    releaseCudaCache();
    const a = zeros([12345], { device: "cuda" });
    const at = address(a);
    const before = cudaMemoryStats();
    a.dispose();
    const cached = cudaMemoryStats();
    assert.equal(cached.bytes, before.bytes - 12345 * 4);
    assert.equal(cached.cachedBytes, before.cachedBytes + 12345 * 4);
    const b = randn([12345], { device: "cuda", seed: 2 });
    assert.equal(address(b), at, "same size: the cached block");
    assert.equal(cudaMemoryStats().cachedBytes, before.cachedBytes);
    // Reuse must not leak the old contents into a fresh zeros().
    b.dispose();
    assert.ok(zeros([12345], { device: "cuda" }).toArray().every((v) => v === 0));
    // Off: a disposed buffer goes straight back to the driver.
    setCudaCacheLimit(0);
    assert.equal(cudaMemoryStats().cachedBytes, 0);
    zeros([777], { device: "cuda" }).dispose();
    assert.equal(cudaMemoryStats().cachedBytes, 0);
    setCudaCacheLimit(limit);
    zeros([777], { device: "cuda" }).dispose();
    assert.equal(releaseCudaCache(), 777 * 4);
    assert.equal(cudaMemoryStats().cachedBuffers, 0);
    assert.throws(() => setCudaCacheLimit(-1), /non-negative integer number of bytes/);
  } finally {
    setCudaCacheLimit(limit);
  }
});

// ---------------------------------------------------- native kernels on device arrays ----

/** Device copies of host arrays, and a helper to call a kernel on both libraries. */
function onDevice(d: Device, a: Float32Array | Int32Array): Storage {
  return getBackend(d).fromHost(a.slice());
}

gpuTest("sl_topk: same indices as the CPU for every flag, with ties", () => {
  const g = new Generator(50);
  const scores = g.fillNormal(new Float32Array(100003));
  for (let i = 0; i < 2000; i++) scores[g.int(scores.length)] = 0.5; // ties
  scores[10] = -0;
  scores[11] = 0;
  for (const flags of [0, 1, 2, 3]) {
    for (const k of [0, 1, 777, 100003]) {
      const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
        const b = getBackend(d);
        const s = onDevice(d, scores), out = b.zeros("int32", k);
        b.check(b.kernels.sl_topk(BigInt(scores.length), s.ptr(), BigInt(k), flags, out.ptr()));
        return out.toHost();
      });
      assert.deepEqual(cuda, cpu, `flags ${flags}, k ${k}`);
    }
  }
});

gpuTest("sl_topk: a NaN score is reported by index", () => {
  const scores = new Float32Array([1, 2, NaN, 4]);
  const b = getBackend("cuda");
  const s = onDevice("cuda", scores), out = b.zeros("int32", 2);
  assert.throws(
    () => b.check(b.kernels.sl_topk(4n, s.ptr(), 2n, 0, out.ptr())),
    (e: unknown) => e instanceof NativeError && /sl_topk: scores\[2\] is NaN/.test(e.message),
  );
});

/** A random CSR pattern (host) of about `density` over n_rows x n_cols. */
function randomCsr(nRows: number, nCols: number, density: number, seed: number) {
  const g = new Generator(seed);
  const rowPtr = new Int32Array(nRows + 1);
  const cols: number[] = [];
  for (let r = 0; r < nRows; r++) {
    for (let c = 0; c < nCols; c++) if (g.uniform() < density) cols.push(c);
    rowPtr[r + 1] = cols.length;
  }
  return { rowPtr, colIdx: Int32Array.from(cols) };
}

/** The CSC view of a CSR pattern, built by the CPU library. */
function cscOf(nRows: number, nCols: number, rowPtr: Int32Array, colIdx: Int32Array) {
  const colPtr = new Int32Array(nCols + 1);
  const rowIdx = new Int32Array(colIdx.length), cscToCsr = new Int32Array(colIdx.length);
  const st = native().sl_csr_to_csc(
    nRows,
    nCols,
    BigInt(colIdx.length),
    ptr(rowPtr),
    ptr(colIdx),
    ptr(colPtr),
    ptr(rowIdx),
    ptr(cscToCsr),
  );
  assert.equal(st, 0);
  return { colPtr, rowIdx, cscToCsr };
}

/** sl_spmm_bwd on device d: [status, message, dx, dw, db]. */
function spmmBwd(
  d: Device,
  batch: number,
  nIn: number,
  nOut: number,
  csr: { rowPtr: Int32Array; colIdx: Int32Array },
  csc: { colPtr: Int32Array; rowIdx: Int32Array; cscToCsr: Int32Array },
  seed: number,
): [number, string, Float32Array, Float32Array, Float32Array] {
  const b = getBackend(d);
  const nnz = csr.colIdx.length;
  const g = new Generator(seed);
  const dx = b.zeros("float32", batch * nIn), dw = b.zeros("float32", nnz);
  const db = b.zeros("float32", nOut);
  const st = b.kernels.sl_spmm_bwd(
    batch,
    nIn,
    nOut,
    BigInt(nnz),
    onDevice(d, csr.rowPtr).ptr(),
    onDevice(d, csr.colIdx).ptr(),
    onDevice(d, csc.colPtr).ptr(),
    onDevice(d, csc.rowIdx).ptr(),
    onDevice(d, csc.cscToCsr).ptr(),
    onDevice(d, g.fillNormal(new Float32Array(nnz))).ptr(),
    onDevice(d, g.fillNormal(new Float32Array(batch * nIn))).ptr(),
    onDevice(d, g.fillNormal(new Float32Array(batch * nOut))).ptr(),
    dx.ptr(),
    dw.ptr(),
    db.ptr(),
  );
  const message = st === 0 ? "" : readCString(b.kernels.sl_last_error());
  const host = (s: Storage) => s.toHost() as Float32Array;
  return [st, message, host(dx), host(dw), host(db)];
}

/** A CSR pattern whose rows have the given lengths, over nIn columns (sorted, distinct). */
function csrWithRowLengths(nIn: number, rowLengths: number[], seed: number) {
  const g = new Generator(seed);
  const rowPtr = new Int32Array(rowLengths.length + 1);
  const cols: number[] = [];
  rowLengths.forEach((n, r) => {
    const all = Array.from({ length: nIn }, (_, i) => i);
    for (let i = 0; i < n; i++) {
      const j = i + g.int(nIn - i);
      [all[i], all[j]] = [all[j], all[i]];
    }
    cols.push(...all.slice(0, n).sort((p, q) => p - q));
    rowPtr[r + 1] = cols.length;
  });
  return { rowPtr, colIdx: Int32Array.from(cols) };
}

gpuTest("sl_spmm_bwd at batch 1, long unaligned rows (16-byte loads): the CPU's gradients", () => {
  // Rows of 64+ entries take the vectorised pass; odd lengths give every row start a different
  // alignment, so each row has a scalar head and tail around its 16-byte body.
  const nIn = 300, lengths = [64, 65, 66, 67, 131, 200, 97];
  const csr = csrWithRowLengths(nIn, lengths, 61);
  const csc = cscOf(lengths.length, nIn, csr.rowPtr, csr.colIdx);
  const [s0, m0, dx0, dw0, db0] = spmmBwd("cpu", 1, nIn, lengths.length, csr, csc, 62);
  const [s1, m1, dx1, dw1, db1] = spmmBwd("cuda", 1, nIn, lengths.length, csr, csc, 62);
  assert.equal(s0, 0, m0);
  assert.equal(s1, 0, m1);
  assertClose(dx1, dx0, "dx");
  assertClose(dw1, dw0, "dw");
  assertClose(db1, db0, "db");
});

gpuTest("sl_spmm_bwd at batch 1: a bad column in a row's head, body or tail is reported", () => {
  const nIn = 200, lengths = [131, 131];
  const csr = csrWithRowLengths(nIn, lengths, 63);
  const csc = cscOf(lengths.length, nIn, csr.rowPtr, csr.colIdx);
  // Row 1 spans [131, 262): entry 131 is its scalar head, 200 in its 16-byte body, 261 its tail.
  for (const bad of [131, 200, 261]) {
    const colIdx = csr.colIdx.slice();
    colIdx[bad] = 999;
    setCudaSyncChecks(true);
    try {
      const [status, message] = spmmBwd("cuda", 1, nIn, 2, { rowPtr: csr.rowPtr, colIdx }, csc, 64);
      assert.equal(status, 3, `bad column at ${bad}`);
      assert.match(
        message,
        new RegExp(`^sl_spmm_bwd: .*col_idx\\[${bad}\\] = 999 is outside \\[0, ${nIn}\\)`),
      );
    } finally {
      setCudaSyncChecks(false);
    }
  }
});

gpuTest("sparse kernels at small batches match the CPU, on each backward path", () => {
  // Batch 1 takes the CSR backward (dx in shared memory) up to 48k inputs and the CSC gather
  // beyond, or with SL_CUDA_BATCH1_BWD=csc; 30000 x 40 has long rows (the 16-byte SpMV).
  const shapes = [[260, 190, 0.04], [30000, 40, 0.01], [60000, 20, 0.005]] as const;
  for (const [nIn, nOut, density] of shapes) {
    const csr = randomCsr(nOut, nIn, density, 60); // some empty rows and columns
    const csc = cscOf(nOut, nIn, csr.rowPtr, csr.colIdx);
    const nnz = csr.colIdx.length;
    const values = new Generator(64).fillNormal(new Float32Array(nnz));
    const batches = [1, 2, 3, 8, 9, 20];
    for (const batch of batches) {
      const x = new Generator(65).fillNormal(new Float32Array(batch * nIn));
      const [y0, y1] = (["cpu", "cuda"] as const).map((d) => {
        const b = getBackend(d);
        const y = b.zeros("float32", batch * nOut);
        b.check(
          b.kernels.sl_spmm_fwd(
            batch,
            nIn,
            nOut,
            BigInt(nnz),
            onDevice(d, csr.rowPtr).ptr(),
            onDevice(d, csr.colIdx).ptr(),
            onDevice(d, values).ptr(),
            null,
            onDevice(d, x).ptr(),
            y.ptr(),
          ),
        );
        return y.toHost();
      });
      assertClose(y1, y0, `${nIn} inputs, batch ${batch}: y`);
    }
    for (const csrBackward of [true, false]) {
      if (!csrBackward) Deno.env.set("SL_CUDA_BATCH1_BWD", "csc");
      try {
        for (const batch of batches) {
          const what = `${nIn} inputs, batch-1 CSR backward ${csrBackward}, batch ${batch}`;
          const [, , dx0, dw0, db0] = spmmBwd("cpu", batch, nIn, nOut, csr, csc, 61);
          const [st, msg, dx1, dw1, db1] = spmmBwd("cuda", batch, nIn, nOut, csr, csc, 61);
          assert.equal(st, 0, msg);
          assertClose(dx1, dx0, `${what}: dx`);
          assertClose(dw1, dw0, `${what}: dw`);
          assertClose(db1, db0, `${what}: db`);
        }
      } finally {
        Deno.env.delete("SL_CUDA_BATCH1_BWD");
      }
    }
  }
});

gpuTest("sl_spmm_bwd: a bad entry of the view it reads gives the CPU's words", () => {
  const nIn = 40, nOut = 30;
  const csr = randomCsr(nOut, nIn, 0.2, 62);
  const good = cscOf(nOut, nIn, csr.rowPtr, csr.colIdx);
  const nnz = csr.colIdx.length;
  const badRow = { ...good, rowIdx: good.rowIdx.slice() };
  badRow.rowIdx[nnz - 5] = nOut;
  const badPerm = { ...good, cscToCsr: good.cscToCsr.slice() };
  badPerm.cscToCsr[7] = -2;
  const badPtr = { ...good, colPtr: good.colPtr.slice() };
  badPtr.colPtr[nIn] = nnz + 1;
  setCudaSyncChecks(true);
  try {
    // Batches > 1 read the CSC view, as the CPU library does at every batch.
    const cases = [["row_idx", badRow], ["csc_to_csr", badPerm], ["col_ptr", badPtr]] as const;
    for (const [what, csc] of cases) {
      for (const batch of [2, 8, 20]) {
        const [s0, m0] = spmmBwd("cpu", batch, nIn, nOut, csr, csc, 63);
        const [s1, m1] = spmmBwd("cuda", batch, nIn, nOut, csr, csc, 63);
        assert.notEqual(s0, 0, `${what}: the CPU rejects it`);
        assert.equal(s1, s0, `${what}, batch ${batch}: ${m1}`);
        assert.equal(m1, m0, `${what}, batch ${batch}`);
      }
    }
    // Batch 1 reads the CSR view on the GPU: a bad column is named as sl_spmm_fwd names it.
    const badCol = { rowPtr: csr.rowPtr, colIdx: csr.colIdx.slice() };
    badCol.colIdx[3] = nIn + 7;
    const [st, msg] = spmmBwd("cuda", 1, nIn, nOut, badCol, good, 63);
    assert.equal(st, 3);
    assert.equal(msg, `sl_spmm_bwd: col_idx[3] = ${nIn + 7} is outside [0, ${nIn})`);
  } finally {
    setCudaSyncChecks(false);
  }
});

/** sl_group_collapse and its backward on device d: [status, message, g, dw]. */
function groupCollapse(
  d: Device,
  nIn: number,
  nOut: number,
  csr: { rowPtr: Int32Array; colIdx: Int32Array },
  size: number,
  seed: number,
): [number, string, Float32Array, Float32Array] {
  const b = getBackend(d);
  const nnz = csr.colIdx.length;
  const g = new Generator(seed);
  const rowPtr = onDevice(d, csr.rowPtr), colIdx = onDevice(d, csr.colIdx);
  const values = onDevice(d, g.fillNormal(new Float32Array(nnz)));
  const dg = onDevice(d, g.fillNormal(new Float32Array(size * nIn)));
  const out = b.zeros("float32", size * nIn), dw = b.zeros("float32", nnz);
  const k = b.kernels;
  let st = k.sl_group_collapse(
    nIn,
    nOut,
    BigInt(nnz),
    rowPtr.ptr(),
    colIdx.ptr(),
    values.ptr(),
    size,
    out.ptr(),
  );
  let msg = st === 0 ? "" : readCString(k.sl_last_error());
  if (st === 0) {
    st = k.sl_group_collapse_bwd(
      nIn,
      nOut,
      BigInt(nnz),
      rowPtr.ptr(),
      colIdx.ptr(),
      dg.ptr(),
      size,
      dw.ptr(),
    );
    msg = st === 0 ? "" : readCString(k.sl_last_error());
  }
  return [st, msg, out.toHost() as Float32Array, dw.toHost() as Float32Array];
}

gpuTest("sl_group_collapse and its backward: the CPU's results and words for bad entries", () => {
  const nIn = 300, nOut = 250;
  const csr = randomCsr(nOut, nIn, 0.05, 64);
  for (const size of [1, 10, 7, 400]) {
    const [s0, , g0, dw0] = groupCollapse("cpu", nIn, nOut, csr, size, 65);
    const [s1, , g1, dw1] = groupCollapse("cuda", nIn, nOut, csr, size, 65);
    assert.equal(s0, 0);
    assert.equal(s1, 0);
    assertClose(g1, g0, `G, size ${size}`, 1e-5);
    assert.deepEqual(dw1, dw0, `dw, size ${size}`);
  }
  const badCol = { rowPtr: csr.rowPtr, colIdx: csr.colIdx.slice() };
  badCol.colIdx[9] = nIn + 2;
  const unsorted = { rowPtr: csr.rowPtr, colIdx: csr.colIdx.slice() };
  const row = csr.rowPtr.findIndex((p, r) => r < nOut && csr.rowPtr[r + 1] - p >= 2);
  const a = csr.rowPtr[row];
  [unsorted.colIdx[a], unsorted.colIdx[a + 1]] = [unsorted.colIdx[a + 1], unsorted.colIdx[a]];
  const badPtr = { rowPtr: csr.rowPtr.slice(), colIdx: csr.colIdx };
  badPtr.rowPtr[nOut] = csr.colIdx.length + 1;
  setCudaSyncChecks(true);
  try {
    for (
      const [what, pattern] of [["col", badCol], ["order", unsorted], ["ptr", badPtr]] as const
    ) {
      const [s0, m0] = groupCollapse("cpu", nIn, nOut, pattern, 10, 66);
      const [s1, m1] = groupCollapse("cuda", nIn, nOut, pattern, 10, 66);
      assert.notEqual(s0, 0, `${what}: the CPU rejects it`);
      assert.equal(s1, s0, `${what}: ${m1}`);
      assert.equal(m1, m0, what);
    }
  } finally {
    setCudaSyncChecks(false);
  }
});

gpuTest("sl_group_collapse of a layer without outputs writes G = 0, as the CPU", () => {
  for (const d of ["cpu", "cuda"] as const) {
    const b = getBackend(d);
    const g = onDevice(d, new Float32Array(3 * 5).fill(NaN)); // whatever the memory held
    const rowPtr = onDevice(d, new Int32Array([0]));
    b.check(b.kernels.sl_group_collapse(5, 0, 0n, rowPtr.ptr(), null, null, 3, g.ptr()));
    assert.deepEqual(Array.from(g.toHost()), new Array(15).fill(0), d);
  }
});

gpuTest("sl_dense_grad_topk: same positions and gradients, in chunks", () => {
  const nIn = 300, nOut = 200, batch = 17;
  const { rowPtr, colIdx } = randomCsr(nOut, nIn, 0.05, 51);
  const x = new Generator(52).fillNormal(new Float32Array(batch * nIn));
  const dy = new Generator(53).fillNormal(new Float32Array(batch * nOut));
  for (const [k, maxSize] of [[1, 300], [500, 3000], [5000, 70000], [3000, 1e7]]) {
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const b = getBackend(d);
      const rows = b.zeros("int32", k), cols = b.zeros("int32", k), grad = b.zeros("float32", k);
      b.check(
        b.kernels.sl_dense_grad_topk(
          batch,
          nIn,
          nOut,
          onDevice(d, x).ptr(),
          onDevice(d, dy).ptr(),
          BigInt(colIdx.length),
          onDevice(d, rowPtr).ptr(),
          onDevice(d, colIdx).ptr(),
          BigInt(k),
          BigInt(maxSize),
          rows.ptr(),
          cols.ptr(),
          grad.ptr(),
        ),
      );
      return { rows: rows.toHost(), cols: cols.toHost(), grad: grad.toHost() };
    });
    assert.deepEqual(cuda.rows, cpu.rows, `k ${k}, maxSize ${maxSize}: rows`);
    assert.deepEqual(cuda.cols, cpu.cols, `k ${k}, maxSize ${maxSize}: cols`);
    assertClose(cuda.grad, cpu.grad, `k ${k}: gradients`);
  }
});

// One warp (or sub-warp) per row, no loop over the grid: the launch must give every row its
// threads. A grid capped at 2^20 blocks of 256 threads left rows from 2^23 on unvisited: their
// outputs and dW unwritten, their pattern unchecked, a chunked top-k's mask unbounded.
const MANY_ROWS = 2 ** 23 + 33;
/** A pattern over MANY_ROWS rows and 5 inputs: row 0 and the last rows hold connections. */
function manyRowsConnectivity(): [Int32Array, Int32Array] {
  const last = MANY_ROWS - 1;
  return [
    new Int32Array([0, last - 2, last - 2, last - 1, last, last, last]),
    new Int32Array([1, 0, 4, 2, 1, 3, 4]),
  ];
}
for (const batch of [1, 3, 9]) {
  compareOp(
    `SparseLinear with 2^23 + 33 outputs, batch ${batch}: the last rows are computed`,
    (d) => {
      const layer = new SparseLinear(5, MANY_ROWS, {
        connectivity: manyRowsConnectivity(),
        seed: 4,
      });
      layer.to(d);
      const x = leaf([batch, 5], 40 + batch, d);
      return { out: layer.forward(x), leaves: [x, layer.weights, layer.bias!] };
    },
  );
}
gpuTest("more than 2^23 rows: the CSC view, a bad column in the last row, a chunked top-k", () => {
  const [rows, cols] = manyRowsConnectivity();
  const rowPtr = new Int32Array(MANY_ROWS + 1);
  for (const r of rows) rowPtr[r + 1]++;
  for (let r = 0; r < MANY_ROWS; r++) rowPtr[r + 1] += rowPtr[r];
  const nnz = cols.length;
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const b = getBackend(d);
    const rp = onDevice(d, rowPtr), ci = onDevice(d, cols);
    const cp = b.zeros("int32", 6), ri = b.zeros("int32", nnz), c2r = b.zeros("int32", nnz);
    b.check(
      b.kernels.sl_csr_to_csc(
        MANY_ROWS,
        5,
        BigInt(nnz),
        rp.ptr(),
        ci.ptr(),
        cp.ptr(),
        ri.ptr(),
        c2r.ptr(),
      ),
    );
    const bad = cols.slice();
    bad[nnz - 1] = 5; // out of range, in the last row only
    const status = b.kernels.sl_csr_validate(
      MANY_ROWS,
      5,
      BigInt(nnz),
      rp.ptr(),
      onDevice(d, bad).ptr(),
    );
    // n_in 1: one connection (row 0), the dense gradient's top 3 with max_size 2^23: one chunk of
    // 2^23 rows on the CPU; the CUDA library splits it at its GEMM's 4,194,240-row launch limit.
    const oneRp = new Int32Array(MANY_ROWS + 1).fill(1);
    oneRp[0] = 0;
    const x = new Float32Array([2]), dy = new Generator(60).fillNormal(new Float32Array(MANY_ROWS));
    const tr = b.zeros("int32", 3), tc = b.zeros("int32", 3), tg = b.zeros("float32", 3);
    b.check(
      b.kernels.sl_dense_grad_topk(
        1,
        1,
        MANY_ROWS,
        onDevice(d, x).ptr(),
        onDevice(d, dy).ptr(),
        1n,
        onDevice(d, oneRp).ptr(),
        onDevice(d, new Int32Array([0])).ptr(),
        3n,
        BigInt(2 ** 23),
        tr.ptr(),
        tc.ptr(),
        tg.ptr(),
      ),
    );
    return {
      csc: [cp.toHost(), ri.toHost(), c2r.toHost()],
      status,
      topk: [tr.toHost(), tc.toHost()],
      grad: tg.toHost(),
    };
  });
  assert.deepEqual(cuda.csc, cpu.csc);
  assert.notEqual(cpu.status, 0, "the CPU library reports the bad column");
  assert.equal(cuda.status, cpu.status, "the CUDA library reports the bad column too");
  assert.deepEqual(cuda.topk, cpu.topk);
  assertClose(cuda.grad, cpu.grad, "top-k gradients");
});

gpuTest("sl_sample_absent: identical positions for a seed", () => {
  const { rowPtr, colIdx } = randomCsr(120, 90, 0.3, 54);
  const absent = 120 * 90 - colIdx.length;
  for (const k of [1, 100, Math.floor(absent * 0.7), absent]) {
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const b = getBackend(d);
      const rows = b.zeros("int32", k), cols = b.zeros("int32", k);
      b.check(
        b.kernels.sl_sample_absent(
          120,
          90,
          BigInt(colIdx.length),
          onDevice(d, rowPtr).ptr(),
          onDevice(d, colIdx).ptr(),
          BigInt(k),
          0xfeedn,
          rows.ptr(),
          cols.ptr(),
        ),
      );
      return [rows.toHost(), cols.toHost()];
    });
    assert.deepEqual(cuda, cpu, `k ${k}`);
  }
});

gpuTest("sl_csr_drop_grow: identical pattern, values and old-index map", () => {
  const { rowPtr, colIdx } = randomCsr(50, 40, 0.2, 55);
  const nnz = colIdx.length;
  const values = new Generator(56).fillNormal(new Float32Array(nnz));
  const drop = Int32Array.from({ length: 60 }, (_, i) => (i * 37) % nnz);
  const dropped = new Set(drop);
  // Grow: every dropped position (regrowth) plus absent positions, in reverse order.
  const gr: number[] = [], gc: number[] = [];
  for (const e of drop) {
    const r = rowPtr.findIndex((p, i) => i < 50 && p <= e && e < rowPtr[i + 1]);
    gr.push(r);
    gc.push(colIdx[e]);
  }
  for (let r = 49; r >= 0 && gr.length < 150; r--) {
    for (let c = 0; c < 40; c += 7) {
      const row = colIdx.subarray(rowPtr[r], rowPtr[r + 1]);
      if (!row.includes(c)) {
        gr.push(r);
        gc.push(c);
      }
    }
  }
  assert.equal(new Set(drop).size, dropped.size);
  const growRows = Int32Array.from(gr), growCols = Int32Array.from(gc);
  const newNnz = nnz - drop.length + growRows.length;
  for (const flags of [0, 1]) {
    const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
      const b = getBackend(d);
      const nrp = b.zeros("int32", 51), nci = b.zeros("int32", newNnz);
      const nv = b.zeros("float32", newNnz), old = b.zeros("int32", newNnz);
      b.check(
        b.kernels.sl_csr_drop_grow(
          50,
          40,
          BigInt(nnz),
          onDevice(d, rowPtr).ptr(),
          onDevice(d, colIdx).ptr(),
          onDevice(d, values).ptr(),
          BigInt(drop.length),
          onDevice(d, drop).ptr(),
          BigInt(growRows.length),
          onDevice(d, growRows).ptr(),
          onDevice(d, growCols).ptr(),
          flags,
          nrp.ptr(),
          nci.ptr(),
          nv.ptr(),
          old.ptr(),
        ),
      );
      return [nrp.toHost(), nci.toHost(), nv.toHost(), old.toHost()];
    });
    assert.deepEqual(cuda, cpu, `flags ${flags}`);
  }
  // A grown position that is a kept connection is rejected with the CPU's message.
  const messages = (["cpu", "cuda"] as const).map((d) => {
    const b = getBackend(d);
    const keptRow = rowPtr.findIndex((p, i) => i < 50 && rowPtr[i + 1] > p && !dropped.has(p));
    try {
      b.check(
        b.kernels.sl_csr_drop_grow(
          50,
          40,
          BigInt(nnz),
          onDevice(d, rowPtr).ptr(),
          onDevice(d, colIdx).ptr(),
          null,
          0n,
          null,
          1n,
          onDevice(d, new Int32Array([keptRow])).ptr(),
          onDevice(d, new Int32Array([colIdx[rowPtr[keptRow]]])).ptr(),
          0,
          b.zeros("int32", 51).ptr(),
          b.zeros("int32", nnz + 1).ptr(),
          null,
          null,
        ),
      );
      return "accepted";
    } catch (e) {
      return (e as Error).message;
    }
  });
  assert.match(messages[0], /is a kept connection/);
  assert.equal(messages[1], messages[0]);
});

gpuTest("sl_coo_to_csr and sl_csr_to_csc build the CPU's arrays on the device", () => {
  const g = new Generator(57);
  const n = 5000, nRows = 300, nCols = 200;
  const rows = Int32Array.from({ length: n }, () => g.int(nRows));
  const cols = Int32Array.from({ length: n }, () => g.int(nCols));
  const vals = g.fillNormal(new Float32Array(n));
  const [cpu, cuda] = (["cpu", "cuda"] as const).map((d) => {
    const b = getBackend(d);
    const rp = b.zeros("int32", nRows + 1), ci = b.zeros("int32", n), vo = b.zeros("float32", n);
    const perm = new BigInt64Array(n), nnzOut = new BigInt64Array(1), dup = new BigInt64Array(1);
    // perm is an int64 device array on cuda: use a float32 storage of twice the length.
    const permStorage = b.zeros("float32", 2 * n);
    b.check(
      b.kernels.sl_coo_to_csr(
        nRows,
        nCols,
        BigInt(n),
        onDevice(d, rows).ptr(),
        onDevice(d, cols).ptr(),
        onDevice(d, vals).ptr(),
        rp.ptr(),
        ci.ptr(),
        vo.ptr(),
        permStorage.ptr(),
        ptr(nnzOut),
        ptr(dup),
      ),
    );
    new Float32Array(perm.buffer).set(permStorage.toHost() as Float32Array);
    const distinct = Number(nnzOut[0]);
    const cp = b.zeros("int32", nCols + 1), ri = b.zeros("int32", distinct);
    const c2r = b.zeros("int32", distinct);
    b.check(
      b.kernels.sl_csr_to_csc(
        nRows,
        nCols,
        BigInt(distinct),
        rp.ptr(),
        ci.ptr(),
        cp.ptr(),
        ri.ptr(),
        c2r.ptr(),
      ),
    );
    return {
      csr: [rp.toHost(), (ci.toHost() as Int32Array).slice(0, distinct)],
      values: (vo.toHost() as Float32Array).slice(0, distinct),
      perm: perm.slice(0, distinct),
      counts: [nnzOut[0], dup[0]],
      csc: [cp.toHost(), ri.toHost(), c2r.toHost()],
    };
  });
  assert.deepEqual(cuda.csr, cpu.csr);
  assert.deepEqual(cuda.perm, cpu.perm);
  assert.deepEqual(cuda.counts, cpu.counts);
  assert.deepEqual(cuda.csc, cpu.csc);
  assertClose(cuda.values, cpu.values, "coalesced values");
});

gpuTest("index errors: CPU messages in synchronous mode, reported later when deferred", () => {
  const rowPtr = new Int32Array([0, 2, 4]), colIdx = new Int32Array([0, 3, 1, 99]);
  const run = (d: Device) => {
    const b = getBackend(d);
    return b.kernels.sl_spmm_fwd(
      3,
      8,
      2,
      4n,
      onDevice(d, rowPtr).ptr(),
      onDevice(d, colIdx).ptr(),
      onDevice(d, new Float32Array(4)).ptr(),
      null,
      onDevice(d, new Float32Array(24)).ptr(),
      b.zeros("float32", 6).ptr(),
    );
  };
  const cpuStatus = run("cpu");
  const cpuMessage = readCString(native().sl_last_error());
  assert.equal(cpuStatus, 3);
  const k = getBackend("cuda").kernels;
  setCudaSyncChecks(true);
  try {
    assert.equal(run("cuda"), 3);
    assert.equal(readCString(k.sl_last_error()), cpuMessage);
  } finally {
    setCudaSyncChecks(false);
  }
  assert.equal(run("cuda"), 0, "deferred: the call only queues its kernels");
  assert.throws(() => cudaSynchronize(), (e: unknown) => {
    assert.ok(e instanceof NativeError);
    assert.equal(e.status, 3);
    assert.equal(e.message, `sl_device_synchronize: an earlier call failed: ${cpuMessage}`);
    return true;
  });
  cudaSynchronize(); // reported once, then clear
  // Bad offsets and labels, synchronous: the same messages as the CPU library.
  setCudaSyncChecks(true);
  try {
    for (
      const call of [
        (d: Device) =>
          getBackend(d).kernels.sl_spmm_fwd(
            1,
            8,
            2,
            4n,
            onDevice(d, new Int32Array([0, 3, 2])).ptr(),
            onDevice(d, colIdx).ptr(),
            onDevice(d, new Float32Array(4)).ptr(),
            null,
            onDevice(d, new Float32Array(8)).ptr(),
            getBackend(d).zeros("float32", 2).ptr(),
          ),
        (d: Device) =>
          getBackend(d).kernels.sl_cross_entropy_fwd(
            2,
            3,
            onDevice(d, new Float32Array(6)).ptr(),
            onDevice(d, new Int32Array([1, 3])).ptr(),
            1,
            getBackend(d).zeros("float32", 1).ptr(),
            null,
          ),
        (d: Device) =>
          getBackend(d).kernels.sl_csr_validate(
            2,
            8,
            4n,
            onDevice(d, rowPtr).ptr(),
            onDevice(d, new Int32Array([0, 3, 5, 5])).ptr(),
          ),
      ]
    ) {
      const s1 = call("cpu"), m1 = readCString(native().sl_last_error());
      const s2 = call("cuda"), m2 = readCString(k.sl_last_error());
      assert.notEqual(s1, 0);
      assert.equal(s2, s1, m2);
      assert.equal(m2, m1);
    }
  } finally {
    setCudaSyncChecks(false);
  }
});

gpuTest("batches on cuda: a batch overwritten by a later one throws; labels stay kept", () => {
  const x = tensor(Array.from({ length: 30 }, (_, i) => i), [10, 3]);
  const labels = Int32Array.from({ length: 10 }, (_, i) => i);
  const kept = [...batches(x, labels, { batchSize: 4, device: "cuda" })];
  assert.equal(kept[0].x.device, "cuda");
  assert.throws(
    () => kept[0].x.toArray(),
    /overwritten by a later batch[\s\S]*reuseBuffers: false/,
  );
  assert.throws(() => relu(kept[0].x), /overwritten by a later batch/);
  assert.deepEqual(Array.from(kept[1].x.toArray()), Array.from({ length: 12 }, (_, i) => 12 + i));
  assert.deepEqual(kept.map((b) => Array.from(b.y)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const fresh = [...batches(x, labels, { batchSize: 4, device: "cuda", reuseBuffers: false })];
  assert.deepEqual(Array.from(fresh[0].x.toArray()), Array.from({ length: 12 }, (_, i) => i));
});
