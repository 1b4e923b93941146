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
 * The training step takes the library's path (sl_spmm_bwd for both sparse gradients).
 *
 * Each timed iteration ends with a device synchronisation, so the numbers are GPU time plus
 * launch and synchronisation latency. A table printed at the end also gives the pipelined time
 * per call (many calls queued, one synchronisation), which is what a training loop that syncs
 * once per step sees. Without a GPU nothing is registered and a line says why.
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
import { medianMs } from "./compare.ts";
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
  /** The pattern on the host, for the torch.sparse comparison on the same matrix. */
  host: { rowPtr: Int32Array; colIdx: Int32Array; values: Float32Array };
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
    host: { rowPtr: s.rowPtr, colIdx: s.colIdx, values: s.values },
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

/** Both sparse gradients and db through the library's call (what `SparseLinear` runs). */
function backward(s: DeviceState): void {
  const b = cudaBackend();
  const { inFeatures, outFeatures, batch } = s.w;
  b.check(
    b.kernels.sl_spmm_bwd(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      s.rowPtr.ptr(),
      s.colIdx.ptr(),
      s.colPtr.ptr(),
      s.rowIdx.ptr(),
      s.cscToCsr.ptr(),
      s.values.ptr(),
      s.x.ptr(),
      s.dy.ptr(),
      s.dx.ptr(),
      s.dw.ptr(),
      s.db.ptr(),
    ),
  );
}

/** Forward, then both sparse gradients and the bias gradient (sl_spmm_bwd). */
function trainStep(s: DeviceState): void {
  forward(s);
  backward(s);
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
function syncedMedianMs(fn: () => void, runs = 50): number {
  return medianMs(
    () => {
      fn();
      cudaSynchronize();
    },
    runs,
    5,
  );
}

/** Pipelined time per call (ms): `calls` calls queued back to back, one synchronisation; the
 * median of 5 such rounds. */
function pipelinedMs(fn: () => void, calls = 200): number {
  for (let i = 0; i < 5; i++) fn();
  cudaSynchronize();
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    cudaSynchronize();
    rounds.push((performance.now() - t0) / calls);
  }
  rounds.sort((a, b) => a - b);
  return rounds[2];
}

interface TorchTiming {
  spmm?: { latency: number; pipelined: number };
  sddmm?: { latency: number; pipelined: number };
  error?: string;
}

/**
 * PyTorch's torch.sparse on CUDA (cuSPARSE) on the very same patterns (written to temporary
 * files), timed the same two ways as ours; null when Python with a CUDA build of PyTorch is not
 * available. A workload that fails there reports its error instead of hiding the others.
 */
function torchTimings(states: readonly DeviceState[]): Record<string, TorchTiming> | null {
  const script = `
import json, sys, time
import numpy as np
import torch
if not torch.cuda.is_available():
    print("torch.cuda.is_available() is False", file=sys.stderr)
    sys.exit(3)
def timings(f):
    for _ in range(5): f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(50):
        t0 = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t0)
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200): f()
        torch.cuda.synchronize()
        rounds.append((time.perf_counter() - t0) / 200)
    return {"latency": sorted(ts)[len(ts) // 2] * 1e3, "pipelined": sorted(rounds)[2] * 1e3}
out = {"torch": torch.__version__, "workloads": {}}
for name, n_in, n_out, batch, prefix in json.loads(sys.argv[1]):
    try:
        row_ptr = torch.from_numpy(np.fromfile(prefix + ".rowptr", dtype=np.int32)).cuda()
        col_idx = torch.from_numpy(np.fromfile(prefix + ".colidx", dtype=np.int32)).cuda()
        vals = torch.from_numpy(np.fromfile(prefix + ".values", dtype=np.float32)).cuda()
        w = torch.sparse_csr_tensor(row_ptr, col_idx, vals, (n_out, n_in))
        x = torch.randn(batch, n_in, device="cuda")
        xt = x.t().contiguous()
        dy = torch.randn(batch, n_out, device="cuda")
        dyt = dy.t().contiguous()
        r = {}
        r["spmm"] = timings(lambda: torch.sparse.mm(w, xt))
        r["sddmm"] = timings(lambda: torch.sparse.sampled_addmm(w, dyt, x, beta=0.0))
        out["workloads"][name] = r
    except Exception as e:
        out["workloads"][name] = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps(out))
`;
  const dir = Deno.makeTempDirSync({ prefix: "sl_torch_" });
  try {
    const shapes = states.map((s, i) => {
      const prefix = `${dir}/w${i}`;
      Deno.writeFileSync(`${prefix}.rowptr`, new Uint8Array(s.host.rowPtr.buffer));
      Deno.writeFileSync(`${prefix}.colidx`, new Uint8Array(s.host.colIdx.buffer));
      Deno.writeFileSync(`${prefix}.values`, new Uint8Array(s.host.values.buffer));
      return [s.w.name, s.w.inFeatures, s.w.outFeatures, s.w.batch, prefix];
    });
    const result = new Deno.Command("python3", {
      args: ["-c", script, JSON.stringify(shapes)],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!result.success) {
      const err = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join(" | ");
      console.log(`cuda_bench: PyTorch comparison did not run: ${err}`);
      return null;
    }
    const parsed = JSON.parse(new TextDecoder().decode(result.stdout));
    console.log(`cuda_bench: PyTorch ${parsed.torch}`);
    return parsed.workloads;
  } catch (err) {
    console.log(`cuda_bench: PyTorch comparison did not run: ${(err as Error).message}`);
    return null;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const ms = (t: number) => (t >= 1 ? `${t.toFixed(2)} ms` : `${(t * 1e3).toFixed(1)} µs`);

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

  // The headline through the whole TS stack: SparseLinear + autograd (+ Adam), batch 1.
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
  const layerForward = () => setUpLayer().layer.forward(x1);
  const layerForwardBackward = () => {
    const { layer, optimizer } = setUpLayer();
    optimizer.zeroGrad();
    sum(layer.forward(x1)).backward();
  };
  const layerTrainStep = () => {
    layerForwardBackward();
    setUpLayer().optimizer.step();
  };
  const group =
    `headline via SparseLinear (seed GPU: ${HEADLINE.seedFwd} / ${HEADLINE.seedTrain} µs; ` +
    `target ≤ ${HEADLINE.targetFwd} / ≤ ${HEADLINE.targetTrain} µs)`;
  Deno.bench("SparseLinear forward, batch 1", { group, baseline: true }, (b) => {
    setUpLayer();
    b.start();
    layerForward();
    cudaSynchronize();
    b.end();
  });
  Deno.bench("SparseLinear forward + backward, batch 1", { group }, (b) => {
    setUpLayer();
    b.start();
    layerForwardBackward();
    cudaSynchronize();
    b.end();
  });
  Deno.bench("SparseLinear train step (forward, backward, Adam), batch 1", { group }, (b) => {
    setUpLayer();
    b.start();
    layerTrainStep();
    cudaSynchronize();
    b.end();
  });

  // After the benches: latency (sync after every call) and pipelined time per call for the
  // headline, and the side-by-side with torch.sparse (cuSPARSE) on the same patterns.
  globalThis.addEventListener("unload", () => {
    const hs = stateOf(headline);
    console.log(`\nheadline ${headline.name}: latency (sync each call) / pipelined per call`);
    const rows: [string, () => void][] = [
      ["kernels: forward", () => forward(hs)],
      ["kernels: train step", () => trainStep(hs)],
      ["SparseLinear forward", layerForward],
      ["SparseLinear forward + backward", layerForwardBackward],
      ["SparseLinear train step with Adam", layerTrainStep],
    ];
    for (const [label, fn] of rows) {
      const latency = syncedMedianMs(fn);
      const pipelined = pipelinedMs(fn);
      console.log(`  ${label}: ${ms(latency)} / ${ms(pipelined)}`);
    }
    const at99 = WORKLOADS.filter((w) => w.sparsity >= 0.99).map(stateOf);
    const torch = torchTimings(at99);
    if (torch === null) return;
    console.log(
      "\nworkload | SpMM ours / torch (latency; pipelined) | SDDMM ours / torch (latency; pipelined)",
    );
    for (const s of at99) {
      const t = torch[s.w.name];
      if (t === undefined || t.error !== undefined || !t.spmm || !t.sddmm) {
        console.log(`${s.w.name} | torch failed: ${t?.error ?? "no result"}`);
        continue;
      }
      const ours = {
        spmm: {
          latency: syncedMedianMs(() => forward(s)),
          pipelined: pipelinedMs(() => forward(s)),
        },
        sddmm: {
          latency: syncedMedianMs(() => weightGrad(s)),
          pipelined: pipelinedMs(() => weightGrad(s)),
        },
      };
      const cell = (o: { latency: number; pipelined: number }, th: typeof o) =>
        `${ms(o.latency)} / ${ms(th.latency)} (${(th.latency / o.latency).toFixed(2)}x); ` +
        `${ms(o.pipelined)} / ${ms(th.pipelined)} (${(th.pipelined / o.pipelined).toFixed(2)}x)`;
      console.log(`${s.w.name} | ${cell(ours.spmm, t.spmm)} | ${cell(ours.sddmm, t.sddmm)}`);
    }
  });
}
