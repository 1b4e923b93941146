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
    const items = shown(shape[dim]).map((i) =>
      i === null
        ? "..."
        : dim === shape.length - 1
        ? format(picked[next++])
        : layout(dim + 1, column + 1)
    );
    if (dim < shape.length - 1) {
      const gap = ",\n" + "\n".repeat(shape.length - dim - 2) + " ".repeat(column + 1);
      return `[${items.join(gap)}]`;
    }
    // The last dimension wraps at LINE_WIDTH, continuing under the first value.
    const perLine = Math.max(
      1,
      Math.floor((LINE_WIDTH - column - 1) / ((items[0]?.length ?? 1) + 2)),
    );
    const lines: string[] = [];
    for (let i = 0; i < items.length; i += perLine) {
      lines.push(items.slice(i, i + perLine).join(", "));
    }
    return `[${lines.join(",\n" + " ".repeat(column + 1))}]`;
  };
  return layout(0, indent);
}

/**
 * A formatter giving every value the same width: integers as `3.`, others with 4 decimals, or
 * in exponent form when the magnitudes span too much for that (as PyTorch).
 */
function numberFormat(values: readonly number[]): (v: number) => string {
  let integers = true;
  let max = 0;
  let min = Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (!Number.isInteger(v)) integers = false;
    const a = Math.abs(v);
    max = Math.max(max, a);
    if (a > 0) min = Math.min(min, a);
  }
  const exponent = max >= 1e8 || (!integers && min < 1e-4);
  const finite = (v: number): string =>
    exponent ? v.toExponential(4) : integers ? `${v}.` : v.toFixed(4);
  const one = (v: number): string =>
    Number.isNaN(v)
      ? "nan"
      : !Number.isFinite(v)
      ? (v > 0 ? "inf" : "-inf")
      : Object.is(v, -0)
      ? `-${finite(0)}` // as PyTorch: the sign of a zero is kept (JS would print 0)
      : finite(v);
  let width = 0;
  for (const v of values) width = Math.max(width, one(v).length);
  return (v) => one(v).padStart(width);
}
