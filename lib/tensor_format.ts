/**
 * The values part of a tensor's printout (`Tensor.toString`, `console.log(tensor)`): nested
 * brackets as PyTorch prints them, summarised above 1000 elements.
 * @module
 */
import { numel, type Tensor } from "./tensor.ts";

/** Elements above which a printout shows only the first and last EDGE of each dimension. */
const PRINT_THRESHOLD = 1000;
const EDGE = 3;
const LINE_WIDTH = 80;

/**
 * The values of `t` as nested brackets (`indent`: the column of the first "["). A CUDA tensor's
 * values are copied to the host only when it is small: a printout must not copy megabytes.
 */
export function formatValues(t: Tensor, indent: number): string {
  const shape = t.shape;
  const count = numel(shape);
  if (count === 0) return "[]"; // PyTorch prints no brackets per row of an empty tensor
  let values: ArrayLike<number>;
  if (t.storage.host !== undefined) values = t.storage.host;
  else if (count <= PRINT_THRESHOLD) values = t.toArray();
  else return `<${count} values on ${t.device}: toArray() copies them to the host>`;
  const summarise = count > PRINT_THRESHOLD;
  // Indices shown along a dimension of `n`; null stands for "...".
  const shown = (n: number): (number | null)[] =>
    summarise && n > 2 * EDGE
      ? [0, 1, 2, null, n - 3, n - 2, n - 1]
      : Array.from({ length: n }, (_, i) => i);
  const strides = shape.map((_, d) => numel(shape.slice(d + 1)));
  // One pass collects the shown values (for a common number format), the next lays them out.
  const picked: number[] = [];
  const collect = (dim: number, offset: number): void => {
    if (dim === shape.length) {
      picked.push(values[offset]);
      return;
    }
    for (const i of shown(shape[dim])) if (i !== null) collect(dim + 1, offset + i * strides[dim]);
  };
  collect(0, 0);
  const format = numberFormat(picked);
  if (shape.length === 0) return format(picked[0]);
  let next = 0;
  const layout = (dim: number, column: number): string => {
    const last = dim === shape.length - 1;
    const items = shown(shape[dim]).map((i) =>
      i === null
        ? last ? " ..." : "..." // PyTorch's marks: " ..." among numbers, "..." between rows
        : last
        ? format(picked[next++])
        : layout(dim + 1, column + 1)
    );
    if (!last) {
      const gap = ",\n" + "\n".repeat(shape.length - dim - 2) + " ".repeat(column + 1);
      return `[${items.join(gap)}]`;
    }
    // The last dimension wraps at LINE_WIDTH as PyTorch's _vector_str: as many values of the
    // common width (plus ", ") as fit after this row's "[" column, continuing under the first.
    const perLine = Math.max(1, Math.floor((LINE_WIDTH - column) / (format.width + 2)));
    const lines: string[] = [];
    for (let i = 0; i < items.length; i += perLine) {
      lines.push(items.slice(i, i + perLine).join(", "));
    }
    return `[${lines.join(",\n" + " ".repeat(column + 1))}]`;
  };
  return layout(0, indent);
}

/** A number formatter, and the width it pads to. */
type NumberFormat = ((v: number) => string) & { width: number };

/**
 * PyTorch's `_Formatter` for float tensors: from the nonzero finite values, integers print as
 * `3.`, others with 4 decimals, and both in exponent form (`1.0000e-05`) when the largest is
 * above 1e8 or more than 1000 times the smallest (or, for non-integers, the smallest is below
 * 1e-4). Every value is padded to the widest nonzero finite one (nan, inf and zeros are not
 * counted, as in PyTorch). Rounding is Python's: to nearest, ties to even.
 */
function numberFormat(values: readonly number[]): NumberFormat {
  let integers = true;
  let max = 0;
  let min = Infinity;
  const counted: number[] = [];
  for (const v of values) {
    if (!Number.isFinite(v) || v === 0) continue;
    counted.push(v);
    if (!Number.isInteger(v)) integers = false;
    const a = Math.abs(v);
    max = Math.max(max, a);
    min = Math.min(min, a);
  }
  const exponent = counted.length > 0 &&
    (max / min > 1000 || max > 1e8 || (!integers && min < 1e-4));
  const finite = (v: number): string =>
    exponent ? exponential4(v) : integers ? `${Object.is(v, -0) ? "-0" : v}.` : fixed4(v);
  const one = (v: number): string =>
    Number.isNaN(v) ? "nan" : !Number.isFinite(v) ? (v > 0 ? "inf" : "-inf") : finite(v);
  let width = 1;
  for (const v of counted) width = Math.max(width, one(v).length);
  return Object.assign((v: number) => one(v).padStart(width), { width });
}

/**
 * A rounding of JavaScript's (which takes ties away from zero) corrected to Python's ties to
 * even. `wider` is `v` with one more digit and `exact` with many more (20 digits: enough to
 * tell a float32 value from a 6-digit decimal it is not). A tie is a value whose exact
 * expansion is `wider` ending in a 5; the even neighbour is then the one toward zero exactly
 * when the digit before the 5 is even.
 */
function halfEven(
  rounded: string,
  wider: string,
  exact: string,
  mantissaEnd: (s: string) => number,
) {
  const end = mantissaEnd(wider);
  if (wider[end - 1] !== "5") return rounded;
  const exactEnd = mantissaEnd(exact);
  if (exact.slice(0, end) !== wider.slice(0, end) || !/^0*$/.test(exact.slice(end, exactEnd))) {
    return rounded; // not a tie: JavaScript rounded to nearest
  }
  if (Number(wider[end - 2]) % 2 !== 0) return rounded;
  return wider.slice(0, end - 1) + wider.slice(end); // drop the 5: the lower magnitude
}

/** `v` with 4 decimals, as Python's "{:.4f}" (the sign of -0 kept). */
function fixed4(v: number): string {
  const s = halfEven(v.toFixed(4), v.toFixed(5), v.toFixed(20), (w) => w.length);
  return Object.is(v, -0) ? `-${s}` : s;
}

/** `v` as Python's "{:.4e}": 4 decimals, an exponent of at least two digits. */
function exponential4(v: number): string {
  const at = (w: string) => w.indexOf("e");
  const s = halfEven(v.toExponential(4), v.toExponential(5), v.toExponential(20), at);
  const out = s.replace(/e([+-])(\d)$/, "e$10$2");
  return Object.is(v, -0) ? `-${out}` : out;
}
