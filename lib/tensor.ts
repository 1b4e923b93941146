/**
 * `Tensor`: a float32 n-d array on a device, with an optional gradient and the op that made
 * it. Memory is contiguous and row-major. Ops live in lib/ops/ and are also reachable as
 * methods (see lib/tensor_methods.ts).
 * @module
 */
import { type BackwardOptions, type GradFn, noGrad, runBackward } from "./autograd.ts";
import type { Device, Storage } from "./backend/backend.ts";
import { getBackend } from "./backend/mod.ts";
import { elementCount, HostStorage } from "./backend/cpu.ts";
import { describeValue, ShapeError } from "./errors.ts";
import { formatValues } from "./tensor_format.ts";

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that every dimension is a non-negative integer; returns a frozen copy. */
export function checkShape(shape: readonly number[], what = "shape"): readonly number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${what} must be an array of integers`);
  for (const d of shape) {
    if (typeof d !== "number") {
      throw new TypeError(
        `${what} must hold numbers, got ${typeof d} ${JSON.stringify(String(d))} in [${
          shape.join(", ")
        }]`,
      );
    }
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${what} must hold non-negative integers, got [${shape.join(", ")}]`);
    }
  }
  return Object.freeze([...shape]);
}

/** Formats a shape as `[2, 3]` for messages. */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Gradients that backward() allocated and no code outside the library has read. */
const privateGrads = new WeakSet<Tensor>();
let peek: (t: Tensor) => Tensor | null;
let assign: (t: Tensor, g: Tensor | null) => void;

/** A float32 n-d array on a device, with autograd. */
export class Tensor {
  // Private with getters, so that they are read-only at run time too (TypeScript's readonly is
  // erased): an assigned shape larger than the storage made the kernels read past its end.
  #shape: readonly number[];
  #storage: Storage;
  #requiresGrad = false;
  #grad: Tensor | null = null;
  /** The op that produced this tensor, or null for a leaf. Internal to autograd. */
  gradFn: GradFn | null = null;

  static {
    peek = (t) => t.#grad;
    assign = (t, g) => {
      t.#grad = g;
    };
  }

  /**
   * Whether gradients flow to this tensor. Only a leaf's may be switched off: a computed
   * tensor's is fixed by its graph (as PyTorch; `detach()` gives a tensor cut from it).
   */
  get requiresGrad(): boolean {
    return this.#requiresGrad;
  }
  set requiresGrad(value: boolean) {
    if (typeof value !== "boolean") {
      throw new TypeError(`requiresGrad must be true or false, got ${describeValue(value)}`);
    }
    if (!value && this.gradFn !== null) {
      throw new TypeError(
        `requiresGrad can only be switched off on a leaf tensor; this one was computed by ` +
          `${this.gradFn.name} (use detach() for a tensor cut from the graph)`,
      );
    }
    this.#requiresGrad = value;
  }

  /**
   * Accumulated gradient (leaf tensors only), or null. A gradient that `backward()` allocated
   * is freed by `zeroGrad()` as long as nothing has read it here; once read it is yours, and
   * the garbage collector (or your `dispose()`) frees it.
   */
  get grad(): Tensor | null {
    // Handed out: from now on only the garbage collector may free it.
    if (this.#grad !== null) privateGrads.delete(this.#grad);
    return this.#grad;
  }

  /** Sets the gradient; as PyTorch, it must be a tensor of this shape on this device, or null. */
  set grad(g: Tensor | null) {
    if (g !== null) {
      if (!(g instanceof Tensor)) {
        throw new TypeError(`grad must be a Tensor or null, got ${typeof g}`);
      }
      if (g.shape.join() !== this.shape.join()) {
        throw new ShapeError(
          `Cannot assign a gradient of shape ${shapeString(g.shape)} to a tensor of shape ` +
            `${shapeString(this.shape)}`,
        );
      }
      if (g.device !== this.device) {
        throw new TypeError(
          `Cannot assign a gradient on ${g.device} to a tensor on ${this.device}`,
        );
      }
    }
    this.#grad = g;
  }
  /** Wraps storage; prefer the creators (`tensor`, `zeros`, ...). */
  constructor(storage: Storage, shape: readonly number[], requiresGrad = false) {
    if (typeof (storage as Partial<Storage> | null)?.toHost !== "function") {
      throw new TypeError(
        `Tensor storage must be a Storage, got ${describeValue(storage)} (for numbers or a ` +
          "Float32Array use tensor() or fromFloat32())",
      );
    }
    const checked = checkShape(shape);
    if (numel(checked) !== storage.length) {
      throw new ShapeError(
        `Shape ${shapeString(checked)} holds ${
          numel(checked)
        } elements, but the storage has ${storage.length}`,
      );
    }
    if (storage.dtype !== "float32") throw new TypeError("Tensor storage must be float32");
    this.#storage = storage;
    this.#shape = checked;
    this.requiresGrad = requiresGrad;
  }

  /** Dimensions, outermost first. */
  get shape(): readonly number[] {
    return this.#shape;
  }

  /** The memory holding the elements. */
  get storage(): Storage {
    return this.#storage;
  }

  /** Device of the memory. */
  get device(): Device {
    return this.storage.device;
  }
  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }
  /** Number of elements. */
  get size(): number {
    return this.storage.length;
  }

  /**
   * The live elements as a `Float32Array` (CPU only; writes change the tensor). For a CUDA
   * tensor use `toArray()`, which copies to the host.
   */
  get data(): Float32Array {
    const host = this.storage.host;
    if (host === undefined) {
      throw new Error(`Tensor is on ${this.device}: use toArray() to copy it to the host`);
    }
    return host as Float32Array;
  }

  /** A host copy of the elements. */
  toArray(): Float32Array {
    return this.storage.toHost() as Float32Array;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new ShapeError(
        `item() needs a tensor of one element, got shape ${shapeString(this.shape)}`,
      );
    }
    return this.storage.host !== undefined ? this.storage.host[0] : this.toArray()[0];
  }

  /** Nested arrays of numbers (for printing and tests). */
  toNested(): unknown {
    const flat = Array.from(this.toArray());
    if (this.ndim === 0) return flat[0];
    const build = (dim: number, offset: number): unknown => {
      const n = this.shape[dim];
      const stride = numel(this.shape.slice(dim + 1));
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        out.push(dim === this.ndim - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }

  /** A tensor sharing this memory but cut from the graph (requiresGrad false). */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, false);
  }

  /** A copy on `device` (this tensor itself when already there). Not recorded by autograd. */
  to(device: Device): Tensor {
    if (device === this.device) return this;
    const host = this.toArray();
    const storage = getBackend(device).fromHost(host);
    return new Tensor(storage, this.shape, this.requiresGrad);
  }

  /** Releases device memory now (CUDA); a no-op on the CPU. The tensor must not be used after. */
  dispose(): void {
    this.storage.dispose();
  }

  /**
   * Backpropagates from this tensor. Without `grad` the tensor must hold one element (a loss)
   * and its gradient is 1. Options may come alone: `loss.backward({ retainGraph: true })`.
   */
  backward(grad?: Tensor | BackwardOptions, options: BackwardOptions = {}): void {
    if (grad !== undefined && !(grad instanceof Tensor)) {
      if (grad === null || typeof grad !== "object" || Array.isArray(grad)) {
        throw new TypeError(
          `backward() takes a gradient Tensor and/or options ({ retainGraph }), got ${
            grad === null ? "null" : Array.isArray(grad) ? "an array" : typeof grad
          }`,
        );
      }
      return this.backward(undefined, grad);
    }
    if (!this.requiresGrad) {
      throw new Error(
        "backward() called on a tensor that does not require grad: no input of the computation " +
          "had requiresGrad set (or it ran inside noGrad)",
      );
    }
    let seed = grad;
    if (seed !== undefined && seed.device !== this.device) {
      // The ops' backwards hand the gradient's memory to this tensor's device's kernels.
      throw new TypeError(
        `backward() got a gradient on ${seed.device} for a tensor on ${this.device}; move it ` +
          `with .to("${this.device}")`,
      );
    }
    if (seed === undefined) {
      if (this.size !== 1) {
        throw new ShapeError(
          `backward() without a gradient needs a one-element tensor, got shape ${
            shapeString(this.shape)
          }; ` +
            "pass the gradient of the output",
        );
      }
      seed = fullLike(this, 1);
    } else if (seed.shape.join() !== this.shape.join()) {
      // The same shape, as PyTorch ("Mismatch in shape"): an equal element count is not enough,
      // the ops' backwards read the gradient with this tensor's strides.
      throw new ShapeError(
        `Gradient shape ${shapeString(seed.shape)} does not match tensor shape ${
          shapeString(this.shape)
        }`,
      );
    }
    noGrad(() => runBackward(this, seed, accumulateGrad, options));
  }

  /**
   * A printout as PyTorch's: the values (summarised with "..." above 1000 elements), then
   * shape, device and `requiresGrad` or `gradFn`. Never throws: a tensor whose memory was
   * released says so instead of its values.
   */
  toString(): string {
    const flags = this.gradFn !== null
      ? `, gradFn=${this.gradFn.name}`
      : this.requiresGrad
      ? ", requiresGrad=true"
      : "";
    const tail = `shape=${shapeString(this.shape)}, device=${this.device}${flags})`;
    let values: string;
    try {
      values = formatValues(this, "Tensor(".length);
    } catch (err) {
      values = `<values unreadable: ${(err as Error).message}>`;
    }
    return `Tensor(${values}, ${tail}`;
  }

  /** What `console.log(tensor)` prints in Deno: the `toString()` printout. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** A tensor of `like`'s shape and device filled with `value`. */
function fullLike(like: Tensor, value: number): Tensor {
  const backend = getBackend(like.device);
  if (value === 0) return new Tensor(backend.zeros("float32", like.size), like.shape);
  const storage = backend.empty("float32", like.size);
  backend.check(backend.kernels.sl_fill(BigInt(like.size), value, storage.ptr()));
  return new Tensor(storage, like.shape);
}

/** `into + add` as a new tensor (or a copy of `add` when `into` is null). */
function accumulateGrad(into: Tensor | null, add: Tensor): Tensor {
  const backend = getBackend(add.device);
  const storage = backend.empty("float32", add.size); // sl_copy writes it whole
  const k = backend.kernels;
  backend.check(k.sl_copy(BigInt(add.size), add.storage.ptr(), storage.ptr()));
  if (into !== null) {
    if (into.device !== add.device || into.size !== add.size) {
      throw new ShapeError(
        `Cannot accumulate a gradient of shape ${
          shapeString(add.shape)
        } on ${add.device} into one of ` +
          `shape ${shapeString(into.shape)} on ${into.device}`,
      );
    }
    backend.check(k.sl_axpy(BigInt(add.size), 1, into.storage.ptr(), storage.ptr()));
  }
  return new Tensor(storage, add.shape);
}

/** Wraps a host Float32Array (no copy) as a CPU tensor. */
export function fromFloat32(
  data: Float32Array,
  shape: readonly number[],
  requiresGrad = false,
): Tensor {
  return new Tensor(new HostStorage(data), shape, requiresGrad);
}

/**
 * An int32 array with a shape, for indices and labels (no gradient). `SparseLinear.indices`
 * is one of shape [2, nnz].
 */
export class IndexTensor {
  /** Dimensions. */
  readonly shape: readonly number[];
  /** The elements, row-major. */
  readonly data: Int32Array;
  /** Wraps `data` (no copy) with `shape`. */
  constructor(data: Int32Array, shape: readonly number[]) {
    if (!(data instanceof Int32Array)) {
      // Native code reads 4-byte integers: another array kind would be misread or overrun.
      throw new TypeError(`IndexTensor data must be an Int32Array, got ${describeValue(data)}`);
    }
    const checked = checkShape(shape);
    if (elementCount(data) !== data.length) {
      throw new TypeError(
        `IndexTensor data's length (${data.length}) is not its element count ` +
          `(${elementCount(data)})`,
      );
    }
    if (numel(checked) !== data.length) {
      throw new ShapeError(`Shape ${shapeString(checked)} does not match ${data.length} elements`);
    }
    this.data = data;
    this.shape = checked;
    Object.freeze(this); // read-only at run time too: a larger shape would be read past data
  }
}

/**
 * Library-internal access to a leaf's gradient. Reading `tensor.grad` hands the gradient to
 * user code; these do not, so that a gradient nobody outside the library has seen can be freed
 * at once when it is cleared (device memory need not wait for the garbage collector).
 */
export const gradSlot = {
  /** The gradient, without handing it out. */
  peek(t: Tensor): Tensor | null {
    return peek(t);
  },
  /** Installs a gradient that backward() allocated and holds no other reference to. */
  adopt(t: Tensor, g: Tensor): void {
    assign(t, g);
    privateGrads.add(g);
  },
  /**
   * Adds `g` into the gradient in place when that gradient never left the library (no new
   * buffer, as PyTorch accumulates); false, changing nothing, when it did or does not match.
   */
  addInPlace(t: Tensor, g: Tensor): boolean {
    const current = peek(t);
    if (
      current === null || !privateGrads.has(current) || current.device !== g.device ||
      current.size !== g.size || current.storage === g.storage
    ) {
      return false;
    }
    const backend = getBackend(g.device);
    backend.check(
      backend.kernels.sl_axpy(BigInt(g.size), 1, g.storage.ptr(), current.storage.ptr()),
    );
    return true;
  },
  /** Clears the gradient, freeing its memory now when it never left the library. */
  clear(t: Tensor): void {
    const g = peek(t);
    if (g !== null && privateGrads.has(g)) {
      privateGrads.delete(g);
      getBackend(g.device).recycle(g.storage);
    }
    assign(t, null);
  },
};
