/**
 * Per-feature scale and shift over the last dimension (`scaleShift` op and `ScaleShift`
 * module): `y = x * scale + shift`, the learnt input scaling of the seed's very wide model
 * (`input_scaling * x + input_shifting`). One native call forward, one backward.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { full } from "../creation.ts";
import { ShapeError } from "../errors.ts";
import { booleanOption, checkOptionKeys, freezeSettings, numberOption } from "../options.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

const MAX_INT32 = 2147483647;

/**
 * `x * scale + shift` with `scale` and `shift` of shape `[features]` (or null: 1 and 0)
 * broadcast over the leading dimensions of `x` `(*, features)`.
 * @example
 * ```ts
 * import { scaleShift, tensor } from "@sparselinear/sparselinear";
 * const y = scaleShift(tensor([[1, 2], [3, 4]]), tensor([10, 100]), tensor([1, 0]));
 * console.log(Array.from(y.data)); // [11, 200, 31, 400]
 * ```
 */
export function scaleShift(x: Tensor, scale: Tensor | null, shift: Tensor | null): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("scaleShift() input must be a Tensor");
  if (x.ndim === 0) throw new ShapeError("scaleShift() input must have at least one dimension");
  const n = x.shape[x.ndim - 1];
  for (const [name, t] of [["scale", scale], ["shift", shift]] as const) {
    if (t === null) continue;
    if (!(t instanceof Tensor)) {
      throw new TypeError(`scaleShift() ${name} must be a Tensor or null`);
    }
    if (t.ndim !== 1 || t.size !== n) {
      throw new ShapeError(
        `scaleShift() ${name} has shape ${shapeString(t.shape)}, but the input ${
          shapeString(x.shape)
        } needs [${n}]`,
      );
    }
    if (t.device !== x.device) {
      throw new TypeError(`scaleShift() input is on ${x.device} but ${name} is on ${t.device}`);
    }
  }
  if (n > MAX_INT32) throw new RangeError(`scaleShift() has ${n} features, above the int32 limit`);
  const rows = n === 0 ? 0 : x.size / n;
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const y = backend.empty("float32", x.size);
  backend.check(
    k.sl_scale_shift_fwd(
      BigInt(rows),
      n,
      x.storage.ptr(),
      scale?.storage.ptr() ?? null,
      shift?.storage.ptr() ?? null,
      y.ptr(),
    ),
  );
  return record(new Tensor(y, x.shape), "scaleShift", [x, scale, shift], (grad) => {
    const dx = x.requiresGrad ? backend.empty("float32", x.size) : null;
    const dscale = scale?.requiresGrad ? backend.empty("float32", n) : null;
    const dshift = shift?.requiresGrad ? backend.empty("float32", n) : null;
    backend.check(
      k.sl_scale_shift_bwd(
        BigInt(rows),
        n,
        x.storage.ptr(),
        scale?.storage.ptr() ?? null,
        grad.storage.ptr(),
        dx?.ptr() ?? null,
        dscale?.ptr() ?? null,
        dshift?.ptr() ?? null,
      ),
    );
    return [
      dx === null ? null : new Tensor(dx, x.shape),
      dscale === null ? null : new Tensor(dscale, [n]),
      dshift === null ? null : new Tensor(dshift, [n]),
    ];
  });
}

/** Options of `ScaleShift`. */
export interface ScaleShiftOptions {
  /** Learn the per-feature scale (default true; else it is 1). */
  scale?: boolean;
  /** Learn the per-feature shift (default true; else it is 0). */
  shift?: boolean;
}

/**
 * Learnt per-feature affine map over the last dimension: parameters `scale` (ones) and
 * `shift` (zeros) of shape `[features]`.
 * @example
 * ```ts
 * import { ScaleShift, ones } from "@sparselinear/sparselinear";
 * const layer = new ScaleShift(7840);
 * console.log(layer.forward(ones([2, 7840])).shape); // [2, 7840]
 * ```
 */
export class ScaleShift extends Module {
  /** Number of features (the last dimension of the input). */
  readonly features: number;

  /** Creates the layer as the identity map (scale 1, shift 0). */
  constructor(features: number, options: ScaleShiftOptions = {}) {
    super();
    numberOption(features, "ScaleShift features");
    if (!Number.isInteger(features) || features < 1 || features > MAX_INT32) {
      throw new RangeError(`ScaleShift features must be an integer in [1, 2^31), got ${features}`);
    }
    this.features = features;
    checkOptionKeys(options, ["scale", "shift"], "ScaleShift");
    const scale = booleanOption(options.scale, "ScaleShift scale", true);
    const shift = booleanOption(options.shift, "ScaleShift shift", true);
    this.registerParameter("scale", scale ? full([features], 1) : null);
    this.registerParameter("shift", shift ? full([features], 0) : null);
    freezeSettings(this, ["features"]);
  }

  /** The per-feature scale, or null. */
  get scale(): Tensor | null {
    return this.getParameter("scale");
  }

  /** The per-feature shift, or null. */
  get shift(): Tensor | null {
    return this.getParameter("shift");
  }

  /** `x * scale + shift` over the last dimension. */
  forward(x: Tensor): Tensor {
    return scaleShift(x, this.scale, this.shift);
  }

  /** Description. */
  override toString(): string {
    return `ScaleShift(${this.features})`;
  }
}
