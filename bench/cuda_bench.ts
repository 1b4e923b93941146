/**
 * GPU benchmarks of the CUDA backend (issue 6): the sparse-layer workloads of the CPU issue
 * (bench/workloads.ts) on device memory — forward, and a training step (forward + input
 * gradient through the CSC view + SDDMM weight gradient + bias gradient) — each group with the
 * library's own dense GEMM on the GPU as the baseline where the dense weight fits; the seed's
 * headline (20000 × 20000 at 99 %, batch 1: the seed measured 583 µs forward and 789 µs train;
 * the targets are ≤ 30 µs and ≤ 100 µs on an H100) also through the whole TS stack
 * (SparseLinear + autograd + Adam); and, when Python with a CUDA build of PyTorch is on the
 * PATH, a side-by-side with torch.sparse (cuSPARSE) SpMM and SDDMM measured in the same run.
 *
 * Each timed iteration ends with a device synchronisation, so the numbers are GPU time plus
 * launch overhead. Without a GPU nothing is registered and a line says why.
 *
 * Run: `deno bench --allow-ffi --allow-env --allow-read --allow-run bench/cuda_bench.ts`
 * (SPARSELINEAR_CUDA_LIB may point at the library).
 */
import { cudaLibrary } from "../ffi/cuda_library.ts";
import type { Storage } from "../lib/backend/backend.ts";
import { cudaBackend, cudaDeviceInfo, cudaSynchronize } from "../lib/backend/cuda.ts";
import { randn } from "../lib/creation.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { Adam } from "../lib/optim/adam.ts";
import { sum } from "../lib/ops/reduce.ts";
import { sparseState, type Workload, WORKLOADS } from "./workloads.ts";

/** The seed's GPU numbers and this H100 targets for the headline workload, in µs. */
const HEADLINE = { seedFwd: 583, seedTrain: 789, targetFwd: 30, targetTrain: 100 };

/** Dense weights above this many floats are not benchmarked (the 50000² one is 9.3 GiB). */
const DENSE_LIMIT = 1_000_000_000;

function gpuUnavailable(): string | null {
  try {
    cudaBackend();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A workload's arrays on the device. */
interface DeviceState {
  w: Workload;
  nnz: number;
  rowPtr: Storage;
  colIdx: Storage;
  colPtr: Storage;
  rowIdx: Storage;
  cscToCsr: Storage;
  values: Storage;
  bias: Storage;
  x: Storage;
  y: Storage;
  dy: Storage;
  dx: Storage;
  dw: Storage;
  db: Storage;
}

function deviceState(w: Workload): DeviceState {
  const s = sparseState(w);
  const b = cudaBackend();
  return {
    w,
    nnz: s.nnz,
    rowPtr: b.fromHost(s.rowPtr),
    colIdx: b.fromHost(s.colIdx),
    colPtr: b.fromHost(s.colPtr),
    rowIdx: b.fromHost(s.rowIdx),
    cscToCsr: b.fromHost(s.cscToCsr),
    values: b.fromHost(s.values),
    bias: b.fromHost(s.bias),
    x: b.fromHost(s.x),
    y: b.fromHost(s.y),
    dy: b.fromHost(s.dy),
    dx: b.fromHost(s.dx),
    dw: b.fromHost(s.dw),
    db: b.fromHost(s.db),
  };
}

function forward(s: DeviceState): void {
  const b = cudaBackend();
  const { inFeatures, outFeatures, batch } = s.w;
  b.check(
    b.kernels.sl_spmm_fwd(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      s.rowPtr.ptr(),
      s.colIdx.ptr(),
      s.values.ptr(),
      s.bias.ptr(),
      s.x.ptr(),
      s.y.ptr(),
    ),
  );
}

function inputGrad(s: DeviceState): void {
  const b = cudaBackend();
  const { inFeatures, outFeatures, batch } = s.w;
  b.check(
    b.kernels.sl_spmm_bwd_input(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      s.colPtr.ptr(),
      s.rowIdx.ptr(),
      s.cscToCsr.ptr(),
      s.values.ptr(),
      s.dy.ptr(),
      s.dx.ptr(),
    ),
  );
}

function weightGrad(s: DeviceState): void {
  const b = cudaBackend();
  const { inFeatures, outFeatures, batch } = s.w;
  b.check(
    b.kernels.sl_sddmm(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      s.rowPtr.ptr(),
      s.colIdx.ptr(),
      s.x.ptr(),
      s.dy.ptr(),
      s.dw.ptr(),
    ),
  );
}

function trainStep(s: DeviceState): void {
  forward(s);
  inputGrad(s);
  weightGrad(s);
  const b = cudaBackend();
  b.check(b.kernels.sl_bias_grad(s.w.batch, s.w.outFeatures, s.dy.ptr(), s.db.ptr()));
}

/** Dense equivalent on the GPU: y = x · Wᵀ (forward) and the two gradient GEMMs (train). */
interface DenseDevice {
  w: Workload;
  weight: Storage;
  dwDense: Storage;
  x: Storage;
  y: Storage;
  dy: Storage;
  dx: Storage;
}

function denseDevice(w: Workload): DenseDevice {
  const b = cudaBackend();
  const { inFeatures: nIn, outFeatures: nOut, batch } = w;
  return {
    w,
    weight: b.zeros("float32", nIn * nOut),
    dwDense: b.zeros("float32", nIn * nOut),
    x: b.fromHost(randn([batch, nIn], { seed: 1 }).toArray()),
    y: b.zeros("float32", batch * nOut),
    dy: b.fromHost(randn([batch, nOut], { seed: 2 }).toArray()),
    dx: b.zeros("float32", batch * nIn),
  };
}

function denseForward(d: DenseDevice): void {
  const b = cudaBackend();
  const { inFeatures: nIn, outFeatures: nOut, batch } = d.w;
  b.check(
    b.kernels.sl_gemm(
      0,
      1,
      batch,
      nOut,
      nIn,
      1,
      d.x.ptr(),
      nIn,
      d.weight.ptr(),
      nIn,
      0,
      d.y.ptr(),
      nOut,
    ),
  );
}

function denseTrain(d: DenseDevice): void {
  denseForward(d);
  const b = cudaBackend();
  const { inFeatures: nIn, outFeatures: nOut, batch } = d.w;
  b.check(
    b.kernels.sl_gemm(
      0,
      0,
      batch,
      nIn,
      nOut,
      1,
      d.dy.ptr(),
      nOut,
      d.weight.ptr(),
      nIn,
      0,
      d.dx.ptr(),
      nIn,
    ),
  );
  b.check(
    b.kernels.sl_gemm(
      1,
      0,
      nOut,
      nIn,
      batch,
      1,
      d.dy.ptr(),
      nOut,
      d.x.ptr(),
      nIn,
      0,
      d.dwDense.ptr(),
      nIn,
    ),
  );
}

/** Median wall time of `fn` (ms), each run followed by a device synchronisation. */
function medianMs(fn: () => void, runs = 50): number {
  for (let i = 0; i < 5; i++) fn();
  cudaSynchronize();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    cudaSynchronize();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** PyTorch's torch.sparse on CUDA for the same shapes, or null when it cannot run here. */
function torchTimings(
  workloads: readonly Workload[],
): Record<string, { spmm: number; sddmm: number }> | null {
  const script = `
import json, sys, time
import torch
if not torch.cuda.is_available():
    sys.exit(3)
out = {}
for name, n_in, n_out, sparsity, batch in json.loads(sys.argv[1]):
    nnz = round((1 - sparsity) * n_in * n_out)
    g = torch.Generator(device="cuda").manual_seed(1)
    idx = torch.randperm(n_in * n_out, device="cuda", generator=g)[:nnz].sort().values
    rows, cols = idx // n_in, idx % n_in
    w = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.randn(nnz, device="cuda"),
                                (n_out, n_in)).coalesce().to_sparse_csr()
    x = torch.randn(batch, n_in, device="cuda")
    dy = torch.randn(batch, n_out, device="cuda")
    def med(f):
        for _ in range(5): f()
        torch.cuda.synchronize()
        ts = []
        for _ in range(50):
            t0 = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2] * 1e3
    spmm = med(lambda: torch.sparse.mm(w, x.t()))
    sddmm = med(lambda: torch.sparse.sampled_addmm(w, dy.t(), x, beta=0.0))
    out[name] = {"spmm": spmm, "sddmm": sddmm}
print(json.dumps(out))
`;
  const shapes = workloads.map((w) => [w.name, w.inFeatures, w.outFeatures, w.sparsity, w.batch]);
  try {
    const result = new Deno.Command("python3", {
      args: ["-c", script, JSON.stringify(shapes)],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!result.success) return null;
    return JSON.parse(new TextDecoder().decode(result.stdout));
  } catch {
    return null;
  }
}

const why = gpuUnavailable();
if (why !== null) {
  console.log(`cuda_bench: nothing to run: ${why}`);
} else {
  const info = cudaDeviceInfo();
  console.log(
    `cuda_bench on ${info.name} (sm_${info.computeCapability.join("")}, ` +
      `${(info.totalBytes / 2 ** 30).toFixed(0)} GiB), library ${cudaLibrary().path}`,
  );
  const states = new Map<string, DeviceState>();
  const stateOf = (w: Workload): DeviceState => {
    let s = states.get(w.name);
    if (s === undefined) states.set(w.name, s = deviceState(w));
    return s;
  };

  for (const w of WORKLOADS) {
    const dense = w.inFeatures * w.outFeatures <= DENSE_LIMIT;
    let denseState: DenseDevice | undefined;
    const denseOf = () => denseState ??= denseDevice(w);
    const fwd = `${w.name} forward (GPU)`;
    const train = `${w.name} train (GPU)`;
    if (dense) {
      Deno.bench(`${fwd}: dense GEMM`, { group: fwd, baseline: true }, (b) => {
        const d = denseOf();
        b.start();
        denseForward(d);
        cudaSynchronize();
        b.end();
      });
    }
    Deno.bench(`${fwd}: sparse`, { group: fwd, baseline: !dense }, (b) => {
      const s = stateOf(w);
      b.start();
      forward(s);
      cudaSynchronize();
      b.end();
    });
    if (dense) {
      Deno.bench(`${train}: dense GEMM`, { group: train, baseline: true }, (b) => {
        const d = denseOf();
        b.start();
        denseTrain(d);
        cudaSynchronize();
        b.end();
      });
    }
    Deno.bench(`${train}: sparse`, { group: train, baseline: !dense }, (b) => {
      const s = stateOf(w);
      b.start();
      trainStep(s);
      cudaSynchronize();
      b.end();
    });
  }

  // The headline through the whole TS stack: SparseLinear + autograd + Adam, batch 1.
  const headline = WORKLOADS[0];
  let layer: SparseLinear | undefined;
  let optimizer: Adam | undefined;
  const setUpLayer = () => {
    if (layer === undefined) {
      layer = new SparseLinear(headline.inFeatures, headline.outFeatures, {
        sparsity: headline.sparsity,
        seed: 1,
      }).to("cuda");
      optimizer = new Adam(layer.parameters(), { lr: 1e-3 });
    }
    return { layer: layer!, optimizer: optimizer! };
  };
  const x1 = randn([1, headline.inFeatures], { seed: 3, device: "cuda", requiresGrad: true });
  const group =
    `headline via SparseLinear (seed GPU: ${HEADLINE.seedFwd} / ${HEADLINE.seedTrain} µs; ` +
    `target ≤ ${HEADLINE.targetFwd} / ≤ ${HEADLINE.targetTrain} µs)`;
  Deno.bench("SparseLinear forward, batch 1", { group, baseline: true }, (b) => {
    const { layer } = setUpLayer();
    b.start();
    layer.forward(x1);
    cudaSynchronize();
    b.end();
  });
  Deno.bench("SparseLinear train step (forward, backward, Adam), batch 1", { group }, (b) => {
    const { layer, optimizer } = setUpLayer();
    b.start();
    optimizer.zeroGrad();
    sum(layer.forward(x1)).backward();
    optimizer.step();
    cudaSynchronize();
    b.end();
  });

  // Side by side with torch.sparse (cuSPARSE), measured now, where PyTorch is available.
  const at99 = WORKLOADS.filter((w) => w.sparsity >= 0.99);
  const torch = torchTimings(at99);
  if (torch === null) {
    console.log("cuda_bench: PyTorch with CUDA is not available: no torch.sparse comparison");
  } else {
    console.log(
      "workload | ours SpMM ms | torch SpMM ms | speed-up | ours SDDMM ms | torch SDDMM ms | speed-up",
    );
    for (const w of at99) {
      const s = stateOf(w);
      const ours = { spmm: medianMs(() => forward(s)), sddmm: medianMs(() => weightGrad(s)) };
      const t = torch[w.name];
      if (t === undefined) continue;
      console.log(
        `${w.name} | ${ours.spmm.toFixed(3)} | ${t.spmm.toFixed(3)} | ${
          (t.spmm / ours.spmm).toFixed(2)
        }x | ${ours.sddmm.toFixed(3)} | ${t.sddmm.toFixed(3)} | ${
          (t.sddmm / ours.sddmm).toFixed(2)
        }x`,
      );
    }
  }
}
