/**
 * The MNIST models of SparseLinear's tutorial notebook (rain-neuromorphics/SparseLinear,
 * tutorials/SparseLinearDemo.ipynb), one builder per `--model` of `deno task train`.
 *
 * Every choice below follows the notebook; where it does not, the comment says why.
 *
 * - The two-layer models are `Flatten, <784 → 2000>, LayerNorm(2000), <activation>,
 *   <2000 → 10>`, as the notebook's `nn.Sequential`s: LayerNorm sits between the first layer
 *   and its activation, and the output layer is of the same kind as the first (dense for
 *   `dense`/`dense-act`, SparseLinear for every sparse model, with the same connectivity option
 *   as the first layer: `small_world=True` / `dynamic=True` on both layers). The leading
 *   `Flatten` keeps the state-dict names of the notebook's models (`1.weights`, `1.indices`,
 *   `2.weight`, `4.weights`, ...), so checkpoints line up with a PyTorch `state_dict`.
 * - SparseLinear defaults: 90 % sparsity (the seed's default), weights and bias from
 *   U(-1/√in, 1/√in).
 * - `user`: the notebook's connectivity, `col = arange(784).repeat_interleave(200)` and
 *   `row = randint(0, 2000, (784·200,))`: every input gets 200 random outputs, drawn with
 *   replacement; the seed's layer then coalesces the list (`torch_sparse.coalesce`), which
 *   drops the repeats, so about 95 % of the 156,800 draws remain. Done the same here (repeats
 *   dropped before the layer is built, since this library rejects a repeated connection).
 * - `dynamic`: both layers `dynamic: true` with the library's defaults (the seed's schedule:
 *   ΔT 6000, T_end 150000, α 0.1, RigL growth), stepped once per training step by `fit`: 20
 *   epochs of 937 steps update the topology at steps 6000, 12000 and 18000. Unlike the seed,
 *   an update drops floor(f(t)·nnz) connections (the seed's k was (1 − s) times that), keeps
 *   the optimizer state of kept connections, and eval-mode forwards do not count as steps.
 * - `dense-act`/`sparse-act`: `ActivationSparsity()` (K-Winners, actSparsity 0.65 → k = 700 of
 *   2000, α 0.1, β 1.5) in place of the ReLU, right after the LayerNorm, as the notebook.
 * - `wide`: the notebook's `Net`: each 784-pixel image is repeated element-wise ten times
 *   (`torch.repeat_interleave(x, 10, dim=1)` → 7840 inputs), scaled and shifted per input by
 *   learnt parameters (`input_scaling` ones, `input_shifting` zeros), then four blocks
 *   `relu(LayerNorm(SparseLinear(·, 50000, sparsity 0.999)))` and a last
 *   SparseLinear(50000, 50000, 0.999) whose outputs are summed per class:
 *   `x.view(B, -1, 10).sum(dim=1)`, i.e. class c sums outputs c, c + 10, c + 20, ... (5000 each).
 *   Module names are the notebook's (`sc1`…`sc5`, `ln1`…`ln4`, `input_scaling`,
 *   `input_shifting`), so its state dict keys match. Connectivity: exactly
 *   round(0.001 · in · out) distinct connections per layer; the seed, above 10^8 positions,
 *   drew them with replacement and coalesced (about 1,250 fewer of 2.5 M per 50000² layer).
 *
 * Learning rates (SGD, momentum 0.9, batch 64, cross-entropy, as the notebook): dense 1e-2,
 * sparse/user/small-world 1e-1, dynamic 5e-3, dense-act 5e-3, sparse-act 5e-2, wide 5e-5
 * with Nesterov momentum.
 * @module
 */
import type { SparseMatmulPrecision } from "../ffi/library.ts";
import { full } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { ActivationSparsity } from "../lib/nn/activation_sparsity.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { Flatten } from "../lib/nn/flatten.ts";
import { releaseConsumed } from "../lib/nn/intermediates.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { Linear } from "../lib/nn/linear.ts";
import { Module } from "../lib/nn/module.ts";
import { repeatInterleave } from "../lib/nn/repeat_interleave.ts";
import { scaleShift } from "../lib/nn/scale_shift.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import {
  SparseLinear,
  type SparseLinearOptions,
  type ValueOrder,
} from "../lib/nn/sparse_linear.ts";
import { Generator } from "../lib/random.ts";
import { shapeString, Tensor } from "../lib/tensor.ts";

/** The models `deno task train --model` accepts, in the notebook's order. */
export const MODEL_NAMES = [
  "dense",
  "sparse",
  "user",
  "dynamic",
  "small-world",
  "dense-act",
  "sparse-act",
  "wide",
] as const;

/** One of `MODEL_NAMES`. */
export type ModelName = typeof MODEL_NAMES[number];

/** A model of the notebook: how to build it and how the notebook trained it. */
export interface ModelSpec {
  /** The `--model` name. */
  name: ModelName;
  /** One line for `--help`. */
  description: string;
  /** The notebook's learning rate (SGD, momentum 0.9). */
  lr: number;
  /** Nesterov momentum (the wide model only). */
  nesterov: boolean;
  /** The notebook's test accuracy after 20 epochs, in percent (its last epoch). */
  seedTestAccuracy: number;
  /**
   * The default `--precision` of the CPU's batched sparse kernels for this model ("highest"
   * when absent). "medium" for the wide model: its step is bounded by the rows its 50000²
   * layers gather, and bfloat16 rows reach the seed's accuracy as float32 ones do.
   */
  precision?: SparseMatmulPrecision;
  /** Builds the model; the same seed gives the same connectivity and initial weights. */
  build(seed: number): Module;
}

const IN = 784;
const HIDDEN = 2000;
const CLASSES = 10;

/** Flatten, first, LayerNorm(2000), activation, output: the notebook's two-layer shape. */
function twoLayer(first: Module, activation: Module, output: Module): Sequential {
  return new Sequential(new Flatten(), first, new LayerNorm(HIDDEN), activation, output);
}

function sparsePair(seed: number, options: SparseLinearOptions): Sequential {
  const gen = new Generator(seed);
  return twoLayer(
    new SparseLinear(IN, HIDDEN, { ...options, seed: gen }),
    new ReLU(),
    new SparseLinear(HIDDEN, CLASSES, { ...options, seed: gen }),
  );
}

/**
 * The notebook's user-defined connectivity: each of the 784 inputs connected to
 * `perInput` outputs drawn uniformly with replacement, repeats dropped (as the seed's
 * coalescing does). Returns `[outputs, inputs]`, ordered by input.
 */
export function notebookUserConnectivity(
  seed: number,
  perInput = 200,
  inFeatures = IN,
  outFeatures = HIDDEN,
): [Int32Array, Int32Array] {
  const gen = new Generator(seed);
  const seen = new Uint8Array(inFeatures * outFeatures);
  const rows = new Int32Array(inFeatures * perInput);
  const cols = new Int32Array(inFeatures * perInput);
  let n = 0;
  for (let i = 0; i < inFeatures; i++) {
    for (let r = 0; r < perInput; r++) {
      const o = gen.int(outFeatures);
      if (seen[o * inFeatures + i]) continue;
      seen[o * inFeatures + i] = 1;
      rows[n] = o;
      cols[n] = i;
      n++;
    }
  }
  return [rows.slice(0, n), cols.slice(0, n)];
}

/** Options of `WideMnistNet` (defaults: the notebook's). */
export interface WideOptions {
  /** Times each pixel is repeated (default 10: 7840 inputs). */
  repeat?: number;
  /** Width of the four hidden layers and of the last layer's output (default 50000). */
  width?: number;
  /** Sparsity of every layer (default 0.999). */
  sparsity?: number;
  /** Seed of connectivity and initial weights. */
  seed?: number;
  /**
   * Value order of the four hidden layers (`SparseLinearOptions.valueOrder`, default "csr").
   * "csc" makes their CPU backward skip its two permutation passes, the same numbers bit for
   * bit; `deno task train --model wide` uses it.
   */
  valueOrder?: ValueOrder;
}

/**
 * The notebook's very wide model (`Net`): repeat each pixel, learnt per-input scale and shift,
 * four `relu(LayerNorm(SparseLinear))` blocks, a last SparseLinear, outputs summed per class.
 */
export class WideMnistNet extends Module {
  /** Times each pixel is repeated. */
  readonly repeat: number;
  /** Hidden width. */
  readonly width: number;
  readonly #sparse: SparseLinear[] = [];
  readonly #norms: LayerNorm[] = [];

  /** Builds the model (random connectivity at `sparsity` in every layer). */
  constructor(options: WideOptions = {}) {
    super();
    this.repeat = options.repeat ?? 10;
    this.width = options.width ?? 50000;
    if (this.width % CLASSES !== 0) {
      throw new RangeError(`WideMnistNet width must be a multiple of 10, got ${this.width}`);
    }
    const sparsity = options.sparsity ?? 0.999;
    const hiddenOrder = options.valueOrder ?? "csr";
    const gen = new Generator(options.seed ?? 0);
    const inputs = IN * this.repeat;
    let fanIn = inputs;
    for (let i = 1; i <= 5; i++) {
      // (The last layer's backward goes through its collapsed weights, forwardGroupSum, which
      // read the values in CSR order.)
      const valueOrder = i < 5 ? hiddenOrder : "csr";
      const layer = new SparseLinear(fanIn, this.width, { sparsity, seed: gen, valueOrder });
      this.registerModule(`sc${i}`, layer);
      this.#sparse.push(layer);
      fanIn = this.width;
    }
    this.registerParameter("input_scaling", full([inputs], 1));
    this.registerParameter("input_shifting", full([inputs], 0));
    for (let i = 1; i <= 4; i++) {
      // relu(LayerNorm(·)) fused into the normalisation's calls: one pass less over the
      // 12.8 MB activations forward and backward (same numbers, bit for bit).
      const norm = new LayerNorm(this.width, { activation: "relu" });
      this.registerModule(`ln${i}`, norm);
      this.#norms.push(norm);
    }
  }

  /** `[B, 784]` (or `[B, 1, 28, 28]`) images → `[B, 10]` logits. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) {
      throw new TypeError(`WideMnistNet.forward() needs a Tensor, got ${typeof x}`);
    }
    // (Below 2 dimensions there is no batch dimension to keep: Flatten would refuse its
    // startDim, so the model says what it takes instead.)
    const flat = x.ndim === 2 ? x : x.ndim > 2 ? new Flatten().forward(x) : null;
    if (flat === null || flat.shape[1] !== IN) {
      throw new ShapeError(
        `WideMnistNet takes 28×28 images ([B, 784]), got input of shape ${shapeString(x.shape)}`,
      );
    }
    // Each activation is freed for reuse once the next step consumed it: only this method
    // sees them, and the library's ops and modules keep no reference.
    let h = flat;
    const then = (step: (t: Tensor) => Tensor): void => {
      const next = step(h);
      releaseConsumed(h, next, x);
      h = next;
    };
    then((t) => repeatInterleave(t, this.repeat, 1));
    then((t) =>
      scaleShift(t, this.getParameter("input_scaling"), this.getParameter("input_shifting"))
    );
    for (let i = 0; i < 4; i++) {
      then((t) => this.#sparse[i].forward(t));
      then((t) => this.#norms[i].forward(t));
    }
    // The last layer's 50 000 outputs only feed the per-class sums: computed through its
    // collapsed 10 × 50 000 weights (forwardGroupSum), not its 64 × 50 000 outputs.
    const logits = this.#sparse[4].forwardGroupSum(h, CLASSES);
    releaseConsumed(h, logits, x);
    return logits;
  }

  /** Description. */
  override toString(): string {
    return `WideMnistNet(repeat=${this.repeat}, width=${this.width})`;
  }
}

// ------------------------------------------------------------------------ the models ----

/** The notebook's models, by `--model` name. */
export const MODELS: Readonly<Record<ModelName, ModelSpec>> = Object.freeze({
  dense: {
    name: "dense",
    description: "784-2000-10 dense (Linear), LayerNorm + ReLU",
    lr: 1e-2,
    nesterov: false,
    seedTestAccuracy: 98.48,
    build: (seed: number) => {
      const gen = new Generator(seed);
      return twoLayer(
        new Linear(IN, HIDDEN, { seed: gen }),
        new ReLU(),
        new Linear(HIDDEN, CLASSES, { seed: gen }),
      );
    },
  },
  sparse: {
    name: "sparse",
    description: "784-2000-10 SparseLinear at 90% (random connectivity), LayerNorm + ReLU",
    lr: 1e-1,
    nesterov: false,
    seedTestAccuracy: 98.16,
    build: (seed: number) => sparsePair(seed, {}),
  },
  user: {
    name: "user",
    description: "as sparse, first layer: user connectivity (200 random outputs per input)",
    lr: 1e-1,
    nesterov: false,
    seedTestAccuracy: 97.88,
    build: (seed: number) => {
      const gen = new Generator(seed);
      const connectivity = notebookUserConnectivity(gen.nextUint32());
      return twoLayer(
        new SparseLinear(IN, HIDDEN, { connectivity, seed: gen }),
        new ReLU(),
        new SparseLinear(HIDDEN, CLASSES, { seed: gen }),
      );
    },
  },
  dynamic: {
    name: "dynamic",
    description: "as sparse, both layers dynamic (RigL prune-and-grow, the seed's schedule)",
    lr: 5e-3,
    nesterov: false,
    seedTestAccuracy: 98.05,
    build: (seed: number) => sparsePair(seed, { dynamic: true }),
  },
  "small-world": {
    name: "small-world",
    description: "as sparse, both layers small-world connectivity",
    lr: 1e-1,
    nesterov: false,
    seedTestAccuracy: 98.22,
    build: (seed: number) => sparsePair(seed, { smallWorld: true }),
  },
  "dense-act": {
    name: "dense-act",
    description: "as dense, K-Winners activation sparsity (65%) instead of ReLU",
    lr: 5e-3,
    nesterov: false,
    seedTestAccuracy: 98.36,
    build: (seed: number) => {
      const gen = new Generator(seed);
      return twoLayer(
        new Linear(IN, HIDDEN, { seed: gen }),
        new ActivationSparsity(),
        new Linear(HIDDEN, CLASSES, { seed: gen }),
      );
    },
  },
  "sparse-act": {
    name: "sparse-act",
    description: "as sparse, K-Winners activation sparsity (65%) instead of ReLU",
    lr: 5e-2,
    nesterov: false,
    seedTestAccuracy: 98.07,
    build: (seed: number) => {
      const gen = new Generator(seed);
      return twoLayer(
        new SparseLinear(IN, HIDDEN, { seed: gen }),
        new ActivationSparsity(),
        new SparseLinear(HIDDEN, CLASSES, { seed: gen }),
      );
    },
  },
  wide: {
    name: "wide",
    description: "7840-50000x4-50000 at 99.9%, inputs repeated 10x, outputs summed per class",
    lr: 5e-5,
    nesterov: true,
    seedTestAccuracy: 98.19,
    precision: "medium",
    // Hidden layers in CSC order: ~10 % less time per step on the CPU (bench/RESULTS.md).
    build: (seed: number) => new WideMnistNet({ seed, valueOrder: "csc" }),
  },
});

/** The first SparseLinear of a model (for the connectivity picture), or null. */
export function firstSparseLayer(model: Module): { name: string; layer: SparseLinear } | null {
  for (const [name, m] of model.namedModules()) {
    if (m instanceof SparseLinear) return { name, layer: m };
  }
  return null;
}
