/**
 * Erdős–Rényi(-Kernel) per-layer sparsities (Evci et al. 2020, "Rigging the Lottery"), as in
 * google-research/rigl `sparse_utils.get_sparsities_erdos_renyi`.
 *
 * Each layer's density is `ε·p_l` with `p_l = (n_in + n_out) / (n_in·n_out)` (Erdős–Rényi) or,
 * with kernels, `p_l = (Σ dims / Π dims)^powerScale` (ERK), and ε chosen so that the layers
 * together keep as many connections as a uniform `density` would. A layer whose `ε·p_l` exceeds 1
 * is made dense (sparsity 0) and ε is solved again for the rest, as RigL does: every layer with
 * the largest `p_l` turns dense in one round.
 * @module
 */
import { booleanOption, checkOptionKeys, numberOption } from "../options.ts";

/**
 * A layer's weight shape in PyTorch order: `[out, in]` for a linear layer, `[out, in, ...kernel]`
 * for a convolution (e.g. `[out, in, kh, kw]`).
 */
export type LayerShape = readonly number[];

/** Options of `erkSparsities`. */
export interface ErkOptions {
  /**
   * Include kernel dimensions (ERK, `p = (Σ dims / Π dims)^powerScale`; the default) or use
   * only `[out, in]` (ER, `p = (in + out) / (in·out)`). Both agree on 2-D shapes when
   * `powerScale` is 1.
   */
  erk?: boolean;
  /** RigL's `erk_power_scale` (ERK only): below 1 makes the distribution softer. Default 1. */
  powerScale?: number;
  /**
   * Fixed sparsities, aligned with `layers` (null/undefined: computed). Fixed layers keep their
   * value and are left out of the budget, as RigL's `custom_sparsity_map`.
   */
  custom?: readonly (number | null | undefined)[];
}

function checkLayers(layers: readonly LayerShape[]): void {
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new TypeError("layers must be a non-empty array of shapes such as [out, in]");
  }
  layers.forEach((shape, i) => {
    if (!Array.isArray(shape) || shape.length < 2) {
      throw new TypeError(
        `layers[${i}] must be a shape [out, in] or [out, in, ...kernel], got ${
          JSON.stringify(shape)
        }`,
      );
    }
    for (const d of shape) {
      numberOption(d, `layers[${i}] entries`);
      if (!Number.isInteger(d) || d < 1) {
        throw new RangeError(
          `layers[${i}] must hold positive integers, got [${shape.join(", ")}]`,
        );
      }
    }
  });
}

/**
 * Per-layer sparsities for a target overall `density` (fraction of connections kept, in (0, 1]),
 * with RigL's Erdős–Rényi(-Kernel) rule. Returns one sparsity per layer, in order.
 *
 * As in RigL, the budget counts `floor((1 − density)·N_l)` zeros per layer, so the kept total
 * `Σ (1 − s_l)·N_l` equals `Σ (N_l − floor((1 − density)·N_l))` (up to rounding when the
 * result is turned into whole connection counts).
 *
 * @example
 * ```ts
 * import { erkSparsities } from "@sparselinear/sparselinear";
 * const s = erkSparsities([[100, 50], [10, 100]], 0.1);
 * console.log(s.map((v) => v.toFixed(4))); // ["0.9308", "0.7462"]
 * ```
 * @throws TypeError for malformed shapes; RangeError for a density outside (0, 1], a custom
 *   sparsity outside [0, 1] or a powerScale that is not a positive finite number.
 */
export function erkSparsities(
  layers: readonly LayerShape[],
  density: number,
  options: ErkOptions = {},
): number[] {
  checkLayers(layers);
  checkOptionKeys(options, ["erk", "powerScale", "custom"], "erkSparsities()");
  numberOption(density, "density", undefined, "(0, 1]");
  if (!(density > 0 && density <= 1)) {
    throw new RangeError(`density must be in (0, 1], got ${density}`);
  }
  const erk = booleanOption(options.erk, "erkSparsities() erk", true);
  const powerScale = numberOption(options.powerScale, "powerScale", 1);
  if (!(Number.isFinite(powerScale) && powerScale > 0)) {
    throw new RangeError(`powerScale must be a positive finite number, got ${powerScale}`);
  }
  const custom = options.custom ?? [];
  if (!Array.isArray(custom) || custom.length > layers.length) {
    throw new TypeError(
      `custom must be an array of at most ${layers.length} entries (one per layer)`,
    );
  }
  custom.forEach((s, i) => {
    if (s !== null && s !== undefined) numberOption(s, `custom[${i}]`, undefined, "[0, 1]");
    if (s !== null && s !== undefined && !(s >= 0 && s <= 1)) {
      throw new RangeError(`custom[${i}] must be a sparsity in [0, 1], got ${s}`);
    }
  });
  const isCustom = (i: number) => custom[i] !== null && custom[i] !== undefined;

  const defaultSparsity = 1 - density;
  const nParams = layers.map((shape) => shape.reduce((a, b) => a * b, 1));
  const raw = layers.map((shape) => {
    if (erk) {
      return (shape.reduce((a, b) => a + b, 0) / shape.reduce((a, b) => a * b, 1)) ** powerScale;
    }
    const [nOut, nIn] = shape;
    return (nIn + nOut) / (nIn * nOut);
  });
  const nZeros = nParams.map((n) => Math.floor(defaultSparsity * n));

  const dense = new Set<number>();
  let eps = 0;
  for (;;) {
    let rhs = 0;
    let divisor = 0;
    let maxRaw = -Infinity;
    for (let i = 0; i < layers.length; i++) {
      if (dense.has(i)) rhs -= nZeros[i];
      else if (!isCustom(i)) {
        rhs += nParams[i] - nZeros[i];
        divisor += raw[i] * nParams[i];
        maxRaw = Math.max(maxRaw, raw[i]);
      }
    }
    if (divisor === 0) break; // every layer is dense or fixed
    eps = rhs / divisor;
    if (maxRaw * eps <= 1) break;
    for (let i = 0; i < layers.length; i++) {
      if (!dense.has(i) && !isCustom(i) && raw[i] === maxRaw) dense.add(i);
    }
  }
  return layers.map((_, i) => {
    if (isCustom(i)) return custom[i] as number;
    if (dense.has(i)) return 0;
    return 1 - eps * raw[i];
  });
}
