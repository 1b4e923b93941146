/**
 * `SparseLinear`: a linear layer `y = x · Wᵀ + b` whose weight W (outFeatures × inFeatures)
 * stores only its connections. The port of the PyTorch package SparseLinear (rain-neuromorphics)
 * in TS idiom, on native CSR kernels.
 *
 * State, as in the seed: `weights` (the nnz connection values, a parameter), `indices`
 * ((2, nnz): row 0 the output index, row 1 the input index of each connection) and `bias`.
 * Connections are kept in CSR order (by output, then input), whatever order they were given
 * in: `weights[k]` is always the value of connection (`indices[0][k]`, `indices[1][k]`). With
 * `valueOrder: "csc"` the values (and so their gradient, optimizer state and `indices`) are in
 * the order of the CSC view instead (by input, then output): the batched backward on the CPU
 * then skips its two permutation passes (see `SparseLinearOptions.valueOrder`).
 *
 * Memory: 4 bytes per connection for the value and 4 for its input index (CSR), plus O(out) row
 * pointers and the bias: 8 bytes per connection. A batched input gradient reads a CSC view
 * (row index + position of the value, 8 more bytes per connection and O(in) pointers), built on
 * the first backward that needs it: on CUDA always, on the CPU at batch > 1 (the batch-1 CPU
 * input gradient and a layer fed data read only the CSR pattern).
 * `indices` is built on first use (8 more bytes per connection while it is held) since the
 * CSR arrays already say the same thing.
 * @module
 */
import type { Device, Storage } from "../backend/backend.ts";
import { getBackend } from "../backend/mod.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { checkOptionKeys, enumOption, freezeSettings, numberOption } from "../options.ts";
import { remapParameterState } from "../optim/param_state.ts";
import { type Generator, generatorFrom } from "../random.ts";
import { checkInt32Size, MAX_INT32, SparsePattern } from "../sparsity/pattern.ts";
import { checkSparsity, randomConnectionCount, randomConnectivity } from "../sparsity/random.ts";
import { smallWorldPattern } from "../sparsity/small_world.ts";
import { type Connectivity, userConnectivity } from "../sparsity/user.ts";
import { fromFloat32, gradSlot, IndexTensor, shapeString, Tensor } from "../tensor.ts";
import { checkSparseLinearFits } from "./memory.ts";
import { Module, type StateValue } from "./module.ts";
import { groupSum } from "./group_sum.ts";
import { collapsedGroupSumPays, sparseLinearGroupSum } from "./sparse_group_sum.ts";
import { sparseLinear, sparseLinearCscValues, sparseLinearFeatureMajor } from "./sparse_ops.ts";
import { transpose } from "../ops/shape.ts";
import {
  DYNAMIC_OPTIONS,
  DynamicSparsity,
  type DynamicSparsityOptions,
  resolveDynamicOptions,
} from "../sparsity/rigl.ts";

/**
 * Options of `new SparseLinear(inFeatures, outFeatures, options)`. The dynamic-sparsity options
 * (`dynamic`, `deltaT`, `tEnd`, `alpha`, `maxSize`, `growth`: RigL / SET prune-and-grow) are
 * described in lib/sparsity/rigl.ts.
 */
export interface SparseLinearOptions extends DynamicSparsityOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /**
   * Fraction of absent connections, in [0, 1) (default 0.9). Random connectivity makes exactly
   * `round((1 - sparsity) · in · out)` connections. Ignored when `connectivity` is given: the
   * sparsity is then derived from it (`layer.sparsity` reports the real value); a given value
   * must still be in [0, 1).
   */
  sparsity?: number;
  /**
   * User-defined connections, shape (2, nnz): row 0 the output index, row 1 the input index of
   * each (IndexTensor [2, nnz], `[outputs, inputs]` arrays, or a flat row-major Int32Array /
   * BigInt64Array). Every pair must be distinct and in range. Default: random connectivity.
   */
  connectivity?: Connectivity;
  /**
   * Small-world connectivity (SparseLinear's "Generating Very Wide Small-World Bipartite
   * Networks", see `smallWorldPattern`): each pair is connected with probability
   * `(d + 1)^(-λ)`, d its distance with inputs and outputs on a line (the smaller layer centred),
   * λ set so that about `round((1 - sparsity) · in · out)` connections are drawn (the count
   * varies with the seed). Needs more than `min(in, out)` connections. Cannot be combined with
   * `connectivity`. Default false.
   */
  smallWorld?: boolean;
  /**
   * Seed (or generator) for the random connectivity and the initial values, drawn in that
   * order: connections, then weights (in CSR order), then bias. Default: a random seed.
   */
  seed?: number | Generator;
  /**
   * The order the nnz values are kept in (default "csr": by output, then input). "csc": by
   * input, then output, the order of the pattern's CSC view, which the CPU's batched backward
   * walks: it then reads the values and writes their gradient in place, where with "csr" it
   * gathers the values into that order and scatters the gradient back (one random access per
   * connection each; at 50000² and batch 64 about a third of the backward), and the forward
   * reads the values through the inverse permutation instead (4 more bytes per connection;
   * the layer builds its CSC view and that permutation when it is made). The same outputs and
   * gradients, bit for bit, per connection. `weights`, its gradient, optimizer state, `indices`
   * and the state dict all follow the layer's order. For CPU layers without dynamic sparsity;
   * `forwardFeatureMajor` and `forwardGroupSum` take their plain paths.
   */
  valueOrder?: ValueOrder;
}

/** The order a SparseLinear keeps its values in (see `SparseLinearOptions.valueOrder`). */
export type ValueOrder = "csr" | "csc";

const VALUE_ORDERS: readonly ValueOrder[] = ["csr", "csc"];

const SPARSE_LINEAR_OPTIONS = [
  "bias",
  "sparsity",
  "connectivity",
  "smallWorld",
  "seed",
  ...DYNAMIC_OPTIONS,
  "valueOrder",
] as const;

/** A read-only look at a SparseLinear's weight: the COO connections and their values. */
export interface SparseWeightView {
  /** `[outFeatures, inFeatures]`, the shape of the dense matrix W. */
  readonly shape: readonly [number, number];
  /** Number of connections. */
  readonly nnz: number;
  /** (2, nnz): output indices, then input indices, in the values' order (`layer.indices`). */
  readonly indices: IndexTensor;
  /** The nnz values (the live `weights` parameter). */
  readonly values: Tensor;
  /** W as a dense `[outFeatures, inFeatures]` CPU tensor (zeros where there is no connection). */
  toDense(): Tensor;
}

/** Bytes held by a SparseLinear, by part (see `SparseLinear.memoryBreakdown`). */
export interface SparseLinearMemory {
  /** The nnz weight values. */
  values: number;
  /**
   * CSR (row pointers, column indices), plus the CSC view (column pointers, row indices,
   * positions) once a backward has built it (at batch > 1 on the CPU, at any batch on CUDA).
   */
  pattern: number;
  /** The bias values (0 without bias). */
  bias: number;
  /** Gradients currently held by `weights` and `bias` (0 when cleared). */
  gradients: number;
  /** The materialised `indices` (0 until it is first read). */
  indices: number;
  /** Sum of the above. */
  total: number;
}

/**
 * A sparse linear layer: `y = x · Wᵀ + b` with only the connections of W stored.
 *
 * Forward is one native SpMM call. Backward computes the input and weight gradients in one
 * pass over the pattern's CSC view (on the CPU at batch > 1, and on CUDA), or at batch 1 on
 * the CPU the input gradient from the CSR pattern and the weight gradient as an SDDMM over the
 * connections; the bias gradient as column sums. A gradient nothing needs is not computed.
 *
 * @example
 * ```ts
 * import { randn, SparseLinear } from "@sparselinear/sparselinear";
 * const layer = new SparseLinear(784, 1000, { sparsity: 0.99, seed: 0 });
 * const y = layer.forward(randn([32, 784], { seed: 1 }));
 * console.log(y.shape, layer.nnz); // [32, 1000] 7840
 * ```
 */
export class SparseLinear extends Module {
  /** Number of input features. */
  readonly inFeatures: number;
  /** Number of output features. */
  readonly outFeatures: number;
  #pattern: SparsePattern;
  #indices: IndexTensor | null = null;

  /**
   * Creates the layer with random (default) or user-defined connectivity and values drawn from
   * U(-1/√in, 1/√in) for weights and bias, as PyTorch's nn.Linear.
   */
  constructor(inFeatures: number, outFeatures: number, options: SparseLinearOptions = {}) {
    super();
    checkFeatures(inFeatures, "inFeatures");
    checkFeatures(outFeatures, "outFeatures");
    checkOptionKeys(options, SPARSE_LINEAR_OPTIONS, "SparseLinear"); // an object, known keys
    const hasBias = options.bias === undefined ? true : options.bias;
    if (typeof hasBias !== "boolean") {
      throw new TypeError(`bias must be a boolean, got ${describeValue(hasBias)}`);
    }
    if (options.sparsity !== undefined) checkSparsity(options.sparsity);
    const smallWorld = options.smallWorld === undefined ? false : options.smallWorld;
    if (typeof smallWorld !== "boolean") {
      throw new TypeError(`smallWorld must be a boolean, got ${describeValue(smallWorld)}`);
    }
    if (smallWorld && options.connectivity !== undefined) {
      throw new TypeError(
        "SparseLinear takes either smallWorld: true or a user-defined connectivity, not both",
      );
    }
    const dynamic = resolveDynamicOptions(options, inFeatures);
    const valueOrder = enumOption(options.valueOrder, "valueOrder", VALUE_ORDERS, "csr");
    if (valueOrder === "csc" && dynamic !== null) {
      throw new TypeError(
        'SparseLinear takes valueOrder: "csc" or dynamic sparsity, not both (prune-and-grow ' +
          "keeps its values in CSR order)",
      );
    }
    // Before anything is allocated: a layer this machine cannot hold is a RangeError, not an
    // out-of-memory kill (lib/nn/memory.ts).
    checkSparseLinearFits(inFeatures, outFeatures, { ...options, bias: hasBias });
    const gen = generatorFrom(options.seed);

    // Connectivity. Other builders (e.g. small-world) plug in here as further branches.
    let pattern: SparsePattern;
    if (options.connectivity !== undefined) {
      pattern = userConnectivity(options.connectivity, inFeatures, outFeatures).pattern;
    } else if (smallWorld) {
      const sw = smallWorldPattern(inFeatures, outFeatures, options.sparsity ?? 0.9, { seed: gen });
      pattern = SparsePattern.fromCsr(outFeatures, inFeatures, sw.rowPtr, sw.colIdx);
    } else {
      const sparsity = options.sparsity ?? 0.9;
      const nnz = randomConnectionCount(inFeatures, outFeatures, sparsity);
      pattern = randomConnectivity(inFeatures, outFeatures, nnz, { seed: gen });
    }

    // Drawn in CSR order whatever the value order, so both orders make the same layer.
    const bound = 1 / Math.sqrt(inFeatures);
    const values = gen.fillUniform(new Float32Array(pattern.nnz), -bound, bound);
    const bias = hasBias ? gen.fillUniform(new Float32Array(outFeatures), -bound, bound) : null;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.valueOrder = valueOrder;
    this.#pattern = pattern;
    this.registerParameter(
      "weights",
      fromFloat32(this.#toValueOrder(values, pattern), [pattern.nnz]),
    );
    this.registerParameter("bias", bias === null ? null : fromFloat32(bias, [outFeatures]));
    // Drawn after the initial values, so a dynamic layer starts exactly as a static one.
    this.dynamicSparsity = dynamic === null
      ? null
      : new DynamicSparsity(this, dynamic, gen.nextUint32());
    freezeSettings(this, ["inFeatures", "outFeatures", "valueOrder", "dynamicSparsity"]);
  }

  /** The order the values are kept in: "csr" (default) or "csc" (see `SparseLinearOptions`). */
  readonly valueOrder: ValueOrder;

  /**
   * CSR-ordered `values` of `pattern` in this layer's value order (the array itself for CSR).
   * For CSC order it also builds the pattern's CSC view and inverse permutation, which every
   * forward and backward reads: the layer's memory is what `memoryBytes` says from the start.
   */
  #toValueOrder(values: Float32Array, pattern: SparsePattern): Float32Array {
    if (this.valueOrder === "csr") return values;
    pattern.csrToCsc();
    const toCsr = hostInts(pattern.cscView().cscToCsr);
    const out = new Float32Array(values.length);
    for (let k = 0; k < out.length; k++) out[k] = values[toCsr[k]];
    return out;
  }

  /** The values in CSR order (a host copy). */
  #csrValues(): Float32Array {
    const stored = this.weights.toArray();
    if (this.valueOrder === "csr") return stored;
    const toCsr = hostInts(this.#pattern.cscView().cscToCsr);
    const out = new Float32Array(stored.length);
    for (let k = 0; k < out.length; k++) out[toCsr[k]] = stored[k];
    return out;
  }

  /**
   * The prune-and-grow schedule of a dynamic layer (`dynamic: true`), or null. Call its
   * `step()` once per training iteration after `loss.backward()` (or `stepDynamicSparsity`
   * for a whole model).
   */
  readonly dynamicSparsity: DynamicSparsity | null;

  /**
   * The nnz connection values (a trainable parameter of shape [nnz]), in CSR order, or in the
   * CSC view's order for `valueOrder: "csc"`.
   */
  get weights(): Tensor {
    return this.getParameter("weights")!;
  }

  /** The bias (shape [outFeatures]), or null when the layer has none. */
  get bias(): Tensor | null {
    return this.getParameter("bias");
  }

  /**
   * The connections, shape [2, nnz]: row 0 the output index, row 1 the input index, in the
   * values' order (CSR, or CSC for `valueOrder: "csc"`) so that `weights[k]` belongs to
   * (`indices[0][k]`, `indices[1][k]`). Built on first read and kept until the topology changes. Read-only: writing into it changes neither the
   * layer nor its state dict (both follow the pattern); change connectivity with `setPattern`
   * or `loadStateDict`.
   */
  get indices(): IndexTensor {
    this.#indices ??= this.#indicesFromPattern();
    return this.#indices;
  }

  #indicesFromPattern(): IndexTensor {
    const p = this.#pattern;
    const data = new Int32Array(2 * p.nnz);
    if (this.valueOrder === "csr") {
      data.set(p.cooRows(), 0);
      data.set(p.hostColIdx, p.nnz);
    } else {
      const view = p.cscView();
      data.set(hostInts(view.rowIdx), 0);
      const colPtr = hostInts(view.colPtr);
      for (let c = 0; c < p.nCols; c++) data.fill(c, p.nnz + colPtr[c], p.nnz + colPtr[c + 1]);
    }
    return new IndexTensor(data, [2, p.nnz]);
  }

  /** The current pattern (CSR, CSC view on demand), for kernels and topology updates. Immutable. */
  get pattern(): SparsePattern {
    return this.#pattern;
  }

  /** Number of connections. */
  get nnz(): number {
    return this.#pattern.nnz;
  }

  /** The real fraction of absent connections: 1 - nnz / (in · out). */
  get sparsity(): number {
    return 1 - this.#pattern.nnz / (this.inFeatures * this.outFeatures);
  }

  /** Device of the parameters and the pattern. */
  get device(): Device {
    return this.weights.device;
  }

  /** A read-only view of W: connections, values, shape and a dense copy on demand. */
  get weight(): SparseWeightView {
    const shape = Object.freeze([this.outFeatures, this.inFeatures]) as readonly [number, number];
    const indices = (): IndexTensor => this.indices;
    return {
      shape,
      nnz: this.nnz,
      get indices(): IndexTensor {
        return indices();
      },
      values: this.weights,
      toDense: () => this.#toDense(),
    };
  }

  #toDense(): Tensor {
    const total = this.outFeatures * this.inFeatures;
    if (total > MAX_INT32) {
      throw new RangeError(
        `toDense() would need ${this.outFeatures} · ${this.inFeatures} = ${total} floats ` +
          `(${
            (total * 4 / 2 ** 30).toFixed(1)
          } GiB); dense copies are limited to ${MAX_INT32} elements`,
      );
    }
    const dense = new Float32Array(total);
    const values = this.#csrValues();
    const rp = this.#pattern.hostRowPtr;
    const ci = this.#pattern.hostColIdx;
    for (let o = 0; o < this.outFeatures; o++) {
      const base = o * this.inFeatures;
      for (let k = rp[o]; k < rp[o + 1]; k++) dense[base + ci[k]] = values[k];
    }
    return fromFloat32(dense, [this.outFeatures, this.inFeatures]);
  }

  /**
   * `x · Wᵀ + b` for `x` of shape `(N, *, inFeatures)` or `[inFeatures]`; returns
   * `(N, *, outFeatures)` (or `[outFeatures]`).
   */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) {
      throw new TypeError(`SparseLinear.forward() needs a Tensor, got ${typeof x}`);
    }
    if (x.ndim === 0 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new ShapeError(
        `SparseLinear(${this.inFeatures} → ${this.outFeatures}).forward() got input of shape ` +
          `${shapeString(x.shape)}; expected (N, *, ${this.inFeatures}) or [${this.inFeatures}]`,
      );
    }
    if (x.size === 0) {
      throw new ShapeError(
        `SparseLinear.forward() got an empty batch (input shape ${shapeString(x.shape)}); ` +
          "every dimension must be at least 1",
      );
    }
    if (this.valueOrder === "csc") {
      return sparseLinearCscValues(x, this.weights, this.bias, this.#pattern);
    }
    const y = sparseLinear(x, this.weights, this.bias, this.#pattern);
    return this.dynamicSparsity === null ? y : this.dynamicSparsity.observe(x, y);
  }

  /**
   * The layer on feature-major activations: `yᵀ = W xᵀ + b` for `xT` of shape
   * `[inFeatures, batch]` (one row per feature, one column per sample, as in scipy's `W @ X`)
   * or `[inFeatures]`; returns `[outFeatures, batch]` (or `[outFeatures]`). Equal to
   * `transpose(this.forward(transpose(xT)))`, and on the CPU faster: the kernels compute in
   * this layout, so the transposes they make at the boundary of `forward` are skipped (see
   * bench/RESULTS.md). Layers with dynamic sparsity go through `forward` and the transposes
   * (RigL observes batch-major activations).
   * @example
   * ```ts
   * import { randn, SparseLinear } from "@sparselinear/sparselinear";
   * const layer = new SparseLinear(500, 5000, { sparsity: 0.99, seed: 0 });
   * console.log(layer.forwardFeatureMajor(randn([500, 64], { seed: 1 })).shape); // [5000, 64]
   * ```
   */
  forwardFeatureMajor(xT: Tensor): Tensor {
    if (!(xT instanceof Tensor)) {
      throw new TypeError(`SparseLinear.forwardFeatureMajor() needs a Tensor, got ${typeof xT}`);
    }
    if ((xT.ndim !== 1 && xT.ndim !== 2) || xT.shape[0] !== this.inFeatures || xT.size === 0) {
      throw new ShapeError(
        `SparseLinear(${this.inFeatures} → ${this.outFeatures}).forwardFeatureMajor() got ` +
          `input of shape ${shapeString(xT.shape)}; expected [${this.inFeatures}, batch] ` +
          `(feature-major, batch >= 1) or [${this.inFeatures}]`,
      );
    }
    if (this.dynamicSparsity !== null || this.valueOrder === "csc") {
      return xT.ndim === 1 ? this.forward(xT) : transpose(this.forward(transpose(xT)));
    }
    return sparseLinearFeatureMajor(xT, this.weights, this.bias, this.#pattern);
  }

  /**
   * `groupSum(this.forward(x), size)`: the outputs summed in interleaved groups, output c the
   * sum of outputs c, c + size, c + 2·size, … (the seed's wide model: 50 000 outputs → 10
   * classes). Where it pays (on the CPU, batch ≥ 2 and `size · inFeatures` ≤ nnz / 2) it is
   * computed through the layer's collapsed weights (lib/nn/sparse_group_sum.ts): same result
   * up to float rounding, a fraction of the work; a result with a NaN or inf is computed again
   * the plain way, whose non-finite values are the unfused computation's. Layers with dynamic
   * sparsity (RigL needs every output's gradient), batch 1 and CUDA take the plain path. The
   * backward is not re-checked: an incoming gradient with an inf (no loss of this library gives
   * one for finite logits) reaches the input gradient through the collapsed weights too, NaN
   * where the plain path's sum skips unconnected inputs. Returns `(N, *, size)`.
   * @example
   * ```ts
   * import { randn, SparseLinear } from "@sparselinear/sparselinear";
   * const layer = new SparseLinear(500, 5000, { sparsity: 0.99, seed: 0 });
   * console.log(layer.forwardGroupSum(randn([64, 500], { seed: 1 }), 10).shape); // [64, 10]
   * ```
   */
  forwardGroupSum(x: Tensor, size: number): Tensor {
    numberOption(size, "SparseLinear.forwardGroupSum() size");
    if (!Number.isInteger(size) || size < 1 || this.outFeatures % size !== 0) {
      throw new RangeError(
        `SparseLinear.forwardGroupSum() size must be an integer >= 1 dividing outFeatures ` +
          `(${this.outFeatures}), got ${String(size)}`,
      );
    }
    const batch = x instanceof Tensor && x.ndim > 0 ? x.size / x.shape[x.ndim - 1] : 0;
    if (
      this.dynamicSparsity !== null || this.valueOrder === "csc" || !(x instanceof Tensor) ||
      x.device !== this.device ||
      x.ndim === 0 || x.shape[x.ndim - 1] !== this.inFeatures || x.size === 0 ||
      !collapsedGroupSumPays(this.#pattern, size, batch)
    ) {
      return groupSum(this.forward(x), size); // (forward reports a bad input)
    }
    const y = sparseLinearGroupSum(x, this.weights, this.bias, this.#pattern, size);
    // The collapsed form multiplies every input by every group's summed weights, so a NaN or
    // infinite input would reach groups the layer does not connect it to (0 · inf = NaN) and
    // infinities of opposite sign would meet in another order: with a non-finite result, the
    // plain layer's values instead (what the unfused computation and PyTorch give).
    return y.data.every(Number.isFinite) ? y : groupSum(this.forward(x), size);
  }

  /**
   * Replaces the connectivity (e.g. after a prune-and-grow step). `rows[k]`, `cols[k]` are the
   * output and input index of connection k (any order, distinct, in range), `values[k]` its
   * value, and `oldIndexOf[k]` its position in the current CSR order or -1 for a new
   * connection (default: found by matching (output, input) pairs). Optimizer state follows:
   * kept connections keep theirs, new ones start at 0 (see `remapParameterState`). With the
   * same nnz, `weights` is updated in place, so optimizers keep working; a different nnz
   * creates a new `weights` tensor (re-create the optimizer then). Validates everything before
   * changing anything; clears the weight gradient.
   */
  setPattern(
    rows: Int32Array,
    cols: Int32Array,
    values: Float32Array,
    oldIndexOf?: Int32Array,
  ): void {
    const { pattern, perm } = userConnectivity(
      [rows, cols],
      this.inFeatures,
      this.outFeatures,
      "setPattern() connections",
    );
    const nnz = pattern.nnz;
    checkPerConnection(values, Float32Array, nnz, "setPattern() values");
    if (oldIndexOf !== undefined) this.#checkOldIndexOf(oldIndexOf, nnz);
    const csrValues = new Float32Array(nnz);
    for (let p = 0; p < nnz; p++) csrValues[p] = values[perm[p]];
    let csrOld: Int32Array | undefined;
    if (oldIndexOf !== undefined) {
      csrOld = new Int32Array(nnz);
      for (let p = 0; p < nnz; p++) csrOld[p] = oldIndexOf[perm[p]];
    }
    this.#applyPattern(pattern, csrValues, true, csrOld);
  }

  /**
   * Low-level `setPattern` for a pattern already in CSR form (built with
   * `SparsePattern.fromCsr`): `values` and `oldIndexOf` (optional, see `setPattern`) are in
   * the new pattern's CSR order.
   */
  replacePattern(pattern: SparsePattern, values: Float32Array, oldIndexOf?: Int32Array): void {
    if (!(pattern instanceof SparsePattern)) {
      throw new TypeError("replacePattern() needs a SparsePattern");
    }
    if (pattern.nRows !== this.outFeatures || pattern.nCols !== this.inFeatures) {
      throw new ShapeError(
        `replacePattern() got a ${pattern.nRows}×${pattern.nCols} pattern for a layer whose ` +
          `weight is ${this.outFeatures}×${this.inFeatures} (outFeatures × inFeatures)`,
      );
    }
    checkPerConnection(values, Float32Array, pattern.nnz, "replacePattern() values");
    if (oldIndexOf !== undefined) this.#checkOldIndexOf(oldIndexOf, pattern.nnz);
    // The layer keeps neither array: values are copied into the weights (or, for another
    // connection count, copied here before the new weights adopt them), and oldIndexOf is only
    // read, now. (Copying both up front cost a 10 M-connection SET update ~0.1 s.)
    const adopted = pattern.nnz !== this.weights.size;
    this.#applyPattern(pattern, adopted ? values.slice() : values, true, oldIndexOf);
  }

  #checkOldIndexOf(oldIndexOf: Int32Array, nnz: number): void {
    checkPerConnection(oldIndexOf, Int32Array, nnz, "oldIndexOf", ["entry", "entries"]);
    const oldNnz = this.nnz;
    for (let k = 0; k < nnz; k++) {
      const j = oldIndexOf[k];
      if (j < -1 || j >= oldNnz) {
        throw new RangeError(
          `oldIndexOf[${k}] = ${j} is outside [-1, ${oldNnz}) (-1 marks a new connection)`,
        );
      }
    }
  }

  /**
   * Swaps in a validated pattern with CSR-ordered values; nothing can fail after the checks.
   * `remapState`: move optimizer state along with the connections (a topology change during
   * training), or leave it as it is (a state-dict load, as PyTorch's `load_state_dict`, which
   * never touches optimizer state: an optimizer state dict loaded before or after it is
   * already laid out for the loaded pattern).
   */
  #applyPattern(
    next: SparsePattern,
    values: Float32Array,
    remapState: boolean,
    oldIndexOf?: Int32Array,
  ): void {
    const device = this.device;
    const moved = next.to(device);
    const weights = this.weights;
    values = this.#toValueOrder(values, next);
    if (next.nnz === weights.size) {
      // The values first: replacePattern passes the caller's array itself, which could be an
      // optimizer state's own array that the remap is about to rewrite.
      weights.storage.write(values);
      if (remapState) {
        remapParameterState(weights, this.#storedIndexOf(next, oldIndexOf));
      }
      gradSlot.clear(weights);
    } else {
      // Optimizer state cannot follow a change of size: optimizers must be re-created. The new
      // tensor keeps the old one's requiresGrad, so frozen weights stay frozen.
      const storage = getBackend(device).fromHost(values);
      const replacement = new Tensor(storage, [next.nnz]);
      this.registerParameter("weights", replacement);
      replacement.requiresGrad = weights.requiresGrad;
    }
    this.#pattern = moved;
    this.#indices = null;
  }

  /**
   * For each value of `next` in this layer's order, the position of the same connection's
   * value now (-1 for a new one), from `oldIndexOf` (CSR positions, as `setPattern` takes them)
   * or by matching the connections.
   */
  #storedIndexOf(next: SparsePattern, oldIndexOf?: Int32Array): Int32Array {
    const csrOld = oldIndexOf ?? this.#pattern.matchInto(next);
    if (this.valueOrder === "csr") return csrOld;
    const nextToCsr = hostInts(next.cscView().cscToCsr);
    const nowToCsc = hostInts(this.#pattern.csrToCsc());
    const out = new Int32Array(next.nnz);
    for (let k = 0; k < out.length; k++) {
      const q = csrOld[nextToCsr[k]];
      out[k] = q < 0 ? -1 : nowToCsc[q];
    }
    return out;
  }

  /**
   * Adds `indices` to the buffers: a fresh copy from the pattern, so a state dict always
   * describes the connections the layer computes with (not a cached `indices` someone wrote
   * into), and editing one state dict does not change the next.
   */
  protected override ownNamedBuffers(): [string, StateValue][] {
    return [["indices", this.#indicesFromPattern()], ...super.ownNamedBuffers()];
  }

  /** Own state keys: `weights`, `bias` (when present) and `indices`. */
  protected override ownStateKeys(): string[] {
    return [...super.ownStateKeys(), "indices"];
  }

  /**
   * Validates `weights`, `indices`, `bias` of a state dict (kinds, shapes, ranges, duplicates,
   * one value per connection) and returns the function that applies them. `indices` may have
   * any nnz and any order (e.g. a PyTorch state dict); the pattern is rebuilt in CSR order with
   * `weights` permuted along (into the layer's value order). Loading indices needs weights;
   * weights alone must match the current nnz (they are then in this layer's value order).
   */
  protected override prepareOwnState(
    state: Record<string, StateValue>,
    prefix: string,
  ): () => void {
    const names = { w: `${prefix}weights`, i: `${prefix}indices`, b: `${prefix}bias` };
    const { weights: w, indices: idx, bias: b } = state;
    const applies: (() => void)[] = [];

    if (idx !== undefined) {
      if (!(idx instanceof IndexTensor)) {
        throw new TypeError(`"${names.i}" must be an integer IndexTensor of shape [2, nnz]`);
      }
      const { pattern, perm } = userConnectivity(
        idx,
        this.inFeatures,
        this.outFeatures,
        `"${names.i}"`,
      );
      if (w === undefined) {
        throw new Error(
          `"${names.i}" needs "${names.w}" with it (one value per connection, in the same order)`,
        );
      }
      const src = floatValues(w, names.w, pattern.nnz, `one per connection of "${names.i}"`);
      const values = new Float32Array(pattern.nnz);
      for (let p = 0; p < pattern.nnz; p++) values[p] = src[perm[p]];
      applies.push(() => this.#applyPattern(pattern, values, false));
    } else if (w !== undefined) {
      const values = floatValues(w, names.w, this.nnz, "the current number of connections");
      applies.push(() => {
        this.weights.storage.write(values);
      });
    }

    if (b !== undefined && this.bias !== null) {
      const values = floatValues(b, names.b, this.outFeatures, "outFeatures");
      applies.push(() => this.bias!.storage.write(values));
    }
    return () => applies.forEach((apply) => apply());
  }

  /** Moves the pattern's arrays along with the parameters. */
  protected override onDeviceChange(device: Device): void {
    this.#pattern = this.#pattern.to(device);
  }

  /**
   * Bytes held by the layer, by part, on its device. (On CUDA the CSR arrays are also mirrored
   * on the host for TS-side bookkeeping: 4 bytes per connection + O(out) of host memory, not
   * counted here.)
   */
  memoryBreakdown(): SparseLinearMemory {
    const bias = this.bias;
    const values = 4 * this.nnz;
    const pattern = this.#pattern.memoryBytes();
    const biasBytes = bias === null ? 0 : 4 * bias.size;
    // peek, not .grad: reading .grad hands a gradient out, and zeroGrad() then leaves it to
    // the garbage collector instead of recycling it.
    const gradSize = (t: Tensor | null) => t === null ? 0 : gradSlot.peek(t)?.size ?? 0;
    const gradients = 4 * (gradSize(this.weights) + gradSize(bias));
    const indices = this.#indices === null ? 0 : 4 * this.#indices.data.length;
    return {
      values,
      pattern,
      bias: biasBytes,
      gradients,
      indices,
      total: values + pattern + biasBytes + gradients + indices,
    };
  }

  /**
   * Bytes the layer holds: values, CSR (column indices, row pointers), bias, the CSC view once
   * built, and gradients and `indices` while they exist. About 8 bytes per connection + O(out)
   * (16 + O(in + out) once a batched input gradient has built the CSC view; 20 for
   * `valueOrder: "csc"`, which builds it and its inverse permutation with the layer).
   */
  memoryBytes(): number {
    return this.memoryBreakdown().total;
  }

  /**
   * E.g. `SparseLinear(inFeatures=784, outFeatures=100, bias=true, sparsity=0.9, nnz=7840)`
   * (the seed's repr with this library's names, as `Linear`'s), plus `dynamic=rigl` or
   * `dynamic=set` for a prune-and-grow layer and `valueOrder=csc` for a CSC-ordered one.
   */
  override toString(): string {
    const dynamic = this.dynamicSparsity === null ? "" : `, dynamic=${this.dynamicSparsity.growth}`;
    const order = this.valueOrder === "csr" ? "" : `, valueOrder=${this.valueOrder}`;
    return `SparseLinear(inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, ` +
      `bias=${this.bias !== null}, sparsity=${+this.sparsity.toPrecision(6)}, nnz=${this.nnz}` +
      `${dynamic}${order})`;
  }
}

function checkFeatures(value: unknown, name: string): void {
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a positive integer, got ${describeValue(value)}`);
  }
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  checkInt32Size(value, name);
}

/**
 * An array of kind `kind` with one `unit` (a value, an entry) per connection: a TypeError for
 * another kind, a ShapeError for another count.
 */
function checkPerConnection(
  array: unknown,
  kind: typeof Float32Array | typeof Int32Array,
  nnz: number,
  name: string,
  [unit, units] = ["value", "values"],
): void {
  if (!(array instanceof kind)) {
    throw new TypeError(
      `${name} must be ${kind === Int32Array ? "an" : "a"} ${kind.name} (one ${unit} per ` +
        `connection, ${nnz}), got ` +
        describeValue(array),
    );
  }
  if (array.length !== nnz) {
    throw new ShapeError(
      `${name} must hold one ${unit} per connection (${nnz}), got ${array.length} ${units}`,
    );
  }
}

/** An int32 storage's contents on the host: the live array on the CPU, else a copy. */
function hostInts(storage: Storage): Int32Array {
  return (storage.host ?? storage.toHost()) as Int32Array;
}

/** Host copy of a float state entry after checking its kind and element count. */
function floatValues(v: StateValue, name: string, count: number, what: string): Float32Array {
  if (!(v instanceof Tensor)) {
    throw new TypeError(`"${name}" must be a float32 Tensor, got an integer IndexTensor`);
  }
  if (v.shape.length !== 1 || v.size !== count) {
    throw new ShapeError(
      `"${name}" has shape ${shapeString(v.shape)}, expected [${count}] (${what})`,
    );
  }
  return v.toArray();
}
