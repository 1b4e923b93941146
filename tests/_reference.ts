/**
 * Plain float64 reference implementations of the tensor ops, written independently of lib/ (no
 * shared helpers) so that tests compare two implementations. Arrays are row-major.
 * @module
 */

/** Number of elements of a shape. */
export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Multi-index of flat index `i` in `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Flat index of a multi-index in `shape`. */
function ravel(idx: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + idx[d];
  return flat;
}

/** NumPy broadcast shape (assumes compatible shapes). */
export function refBroadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const nd = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < nd; i++) {
    const da = a[a.length - nd + i] ?? 1, db = b[b.length - nd + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Reads `x` of `shape` at an index of the broadcast shape `outShape`. */
function readBroadcast(
  x: ArrayLike<number>,
  shape: readonly number[],
  outIdx: readonly number[],
): number {
  const off = outIdx.length - shape.length;
  const idx = shape.map((d, i) => (d === 1 ? 0 : outIdx[i + off]));
  return x[ravel(idx, shape)];
}

/** Element-wise `f(a, b)` with broadcasting. */
export function refBinary(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  f: (x: number, y: number) => number,
): Float64Array {
  const shape = refBroadcastShape(aShape, bShape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = f(readBroadcast(a, aShape, idx), readBroadcast(b, bShape, idx));
  }
  return out;
}

/** `x` broadcast to `shape`. */
export function refExpand(
  x: ArrayLike<number>,
  xShape: readonly number[],
  shape: readonly number[],
): Float64Array {
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = readBroadcast(x, xShape, unravel(i, shape));
  return out;
}

/** Batched matrix product of [..., m, k] and [..., k, n] with equal (or absent) batch dims. */
export function refMatmul(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): Float64Array {
  const as = aShape.length === 1 ? [1, aShape[0]] : aShape;
  const bs = bShape.length === 1 ? [bShape[0], 1] : bShape;
  const m = as[as.length - 2], k = as[as.length - 1], n = bs[bs.length - 1];
  const batch = Math.max(size(as.slice(0, -2)), size(bs.slice(0, -2)));
  const aBatched = as.length > 2, bBatched = bs.length > 2;
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const ao = aBatched ? t * m * k : 0, bo = bBatched ? t * k * n : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ao + i * k + p] * b[bo + p * n + j];
        out[t * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

/** Sum over `axis` of x viewed as [outer, len, inner] (all axes when undefined). */
export function refSum(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis?: number,
): Float64Array {
  if (axis === undefined) {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i];
    return Float64Array.of(s);
  }
  const ax = axis < 0 ? axis + shape.length : axis;
  const outer = size(shape.slice(0, ax)), len = shape[ax], inner = size(shape.slice(ax + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < len; j++) {
      for (let i = 0; i < inner; i++) out[o * inner + i] += x[(o * len + j) * inner + i];
    }
  }
  return out;
}

/** `x` with dimensions permuted: output dim i is input dim perm[i]. */
export function refPermute(
  x: ArrayLike<number>,
  shape: readonly number[],
  perm: readonly number[],
): Float64Array {
  const outShape = perm.map((d) => shape[d]);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, outShape);
    const src = new Array<number>(shape.length);
    perm.forEach((d, k) => (src[d] = idx[k]));
    out[i] = x[ravel(src, shape)];
  }
  return out;
}

/** Row-wise log-softmax over the last dimension of length `cols`. */
export function refLogSoftmax(x: ArrayLike<number>, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[r * cols + j]);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[r * cols + j] - max);
    const shift = max + Math.log(s);
    for (let j = 0; j < cols; j++) out[r * cols + j] = x[r * cols + j] - shift;
  }
  return out;
}
