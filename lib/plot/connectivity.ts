/**
 * Pictures of a sparse layer's connectivity: the `nOut × nIn` connection matrix binned into
 * pixels, each coloured by the fraction of its possible connections that are present, so ten
 * million connections render as a heat map in milliseconds. Random connectivity looks evenly
 * grey-blue; a small-world layer shows its diagonal band.
 * @module
 */
import { checkOptionKeys, enumOption, numberOption } from "../options.ts";
import { encodePng, type RasterImage } from "./png.ts";
import { base64, escapeXml, formatTick, niceTicks, px } from "./svg.ts";

/** Options of the connectivity pictures. */
export interface ConnectivityOptions {
  /** Image width in pixels (default: 512 for the longer side, proportional for the other). */
  width?: number;
  /** Image height in pixels (default: see `width`). */
  height?: number;
  /** How density maps to colour (default "linear"; "sqrt" brings out sparse regions). */
  scale?: "linear" | "sqrt";
}

const IMAGE_OPTIONS = ["width", "height", "scale"];

/** Connection density per pixel bin. */
export interface ConnectivityDensity {
  /** Bins along the input axis (image columns). */
  binsX: number;
  /** Bins along the output axis (image rows). */
  binsY: number;
  /** Fraction of possible connections present in each bin, row-major `[binsY, binsX]`. */
  density: Float64Array;
  /** Largest value of `density`. */
  maxDensity: number;
  /**
   * Top of the colour scale: the 99th percentile of the non-empty bins' densities (robust to a
   * few dense outliers); bins above it get the darkest colour.
   */
  scaleMax: number;
  /** Number of connections. */
  nnz: number;
}

/** Output and input features. */
function checkSizes(rows: Int32Array, cols: Int32Array, nOut: number, nIn: number): void {
  if (!(rows instanceof Int32Array) || !(cols instanceof Int32Array)) {
    throw new TypeError("rows and cols must be Int32Arrays (the two rows of indices)");
  }
  if (rows.length !== cols.length) {
    throw new RangeError(
      `rows and cols must have the same length (one entry per connection), got ${rows.length} ` +
        `and ${cols.length}`,
    );
  }
  for (const [name, n] of [["nOut", nOut], ["nIn", nIn]] as const) {
    numberOption(n, name);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${n}`);
    }
  }
}

function defaultSize(nOut: number, nIn: number, options: ConnectivityOptions): [number, number] {
  const long = 512;
  let { width, height } = options;
  if (width !== undefined) numberOption(width, "width");
  if (height !== undefined) numberOption(height, "height");
  if (width === undefined && height === undefined) {
    if (nIn >= nOut) {
      width = long;
      height = Math.max(96, Math.round((long * nOut) / nIn));
    } else {
      height = long;
      width = Math.max(96, Math.round((long * nIn) / nOut));
    }
  } else if (width === undefined) {
    width = Math.max(1, Math.round(((height as number) * nIn) / nOut));
  } else if (height === undefined) {
    height = Math.max(1, Math.round((width * nOut) / nIn));
  }
  for (const [name, v] of [["width", width as number], ["height", height as number]] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > 8192) {
      throw new RangeError(`${name} must be an integer in [1, 8192], got ${v}`);
    }
  }
  return [width as number, height as number];
}

/** How many of `n` indices fall in each of `bins` bins (index i goes to floor(i * bins / n)). */
function binSizes(n: number, bins: number): Float64Array {
  const sizes = new Float64Array(bins);
  for (let b = 0; b < bins; b++) {
    sizes[b] = Math.ceil(((b + 1) * n) / bins) - Math.ceil((b * n) / bins);
  }
  return sizes;
}

/**
 * Bins connections `(rows[k], cols[k])` of an `nOut × nIn` layer into at most `binsY × binsX`
 * cells and returns the fraction of possible connections present in each. Indices outside the
 * layer are a `RangeError` naming the entry.
 */
export function connectivityDensity(
  rows: Int32Array,
  cols: Int32Array,
  nOut: number,
  nIn: number,
  bins: { binsX: number; binsY: number },
): ConnectivityDensity {
  checkSizes(rows, cols, nOut, nIn);
  if (bins === null || typeof bins !== "object") {
    throw new TypeError("connectivityDensity() bins must be { binsX, binsY }");
  }
  checkOptionKeys(bins, ["binsX", "binsY"], "connectivityDensity() bins");
  for (const name of ["binsX", "binsY"] as const) {
    const n = bins[name];
    numberOption(n, `connectivityDensity() ${name}`);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`connectivityDensity() ${name} must be a positive integer, got ${n}`);
    }
  }
  const binsX = Math.min(bins.binsX, nIn);
  const binsY = Math.min(bins.binsY, nOut);
  const counts = new Float64Array(binsX * binsY);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    const c = cols[k];
    if (r < 0 || r >= nOut) throw new RangeError(`rows[${k}] = ${r} is outside [0, ${nOut})`);
    if (c < 0 || c >= nIn) throw new RangeError(`cols[${k}] = ${c} is outside [0, ${nIn})`);
    counts[Math.floor((r * binsY) / nOut) * binsX + Math.floor((c * binsX) / nIn)]++;
  }
  const rowSizes = binSizes(nOut, binsY);
  const colSizes = binSizes(nIn, binsX);
  let maxDensity = 0;
  for (let y = 0; y < binsY; y++) {
    for (let x = 0; x < binsX; x++) {
      const d = counts[y * binsX + x] / (rowSizes[y] * colSizes[x]);
      counts[y * binsX + x] = d;
      if (d > maxDensity) maxDensity = d;
    }
  }
  const nonEmpty = counts.filter((d) => d > 0).sort();
  const scaleMax = nonEmpty.length === 0
    ? 0
    : nonEmpty[Math.min(nonEmpty.length - 1, Math.floor(0.99 * nonEmpty.length))];
  return { binsX, binsY, density: counts, maxDensity, scaleMax, nnz: rows.length };
}

/** White → yellow-green → teal → blue → navy (after ColorBrewer YlGnBu). */
const RAMP: [number, number, number][] = [
  [255, 255, 255],
  [237, 248, 177],
  [127, 205, 187],
  [44, 127, 184],
  [37, 52, 148],
  [8, 29, 88],
];

/** The colour of `t` in [0, 1]. */
export function rampColor(t: number): [number, number, number] {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  const a = RAMP[i];
  const b = RAMP[i + 1];
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

/**
 * Bins for a `width × height` picture: at most one per pixel and per feature, and few enough
 * that a bin holds about 16 connections on average — otherwise, at high sparsity, per-bin counts
 * are mostly noise (a random layer at 1 connection per bin looks like static, not grey).
 */
function chooseBins(nnz: number, nOut: number, nIn: number, width: number, height: number) {
  const fullX = Math.min(width, nIn);
  const fullY = Math.min(height, nOut);
  const most = Math.max(1, Math.floor(nnz / 16));
  if (fullX * fullY <= most) return { binsX: fullX, binsY: fullY };
  // Shrink both axes alike, but keep at least 16 bins (or every feature) along each.
  const shrink = Math.sqrt(most / (fullX * fullY));
  const floorX = Math.min(fullX, 16);
  const floorY = Math.min(fullY, 16);
  let binsX = Math.max(floorX, Math.floor(fullX * shrink));
  let binsY = Math.max(floorY, Math.floor(fullY * shrink));
  if (binsY === floorY) binsX = Math.max(floorX, Math.min(fullX, Math.floor(most / binsY)));
  else if (binsX === floorX) binsY = Math.max(floorY, Math.min(fullY, Math.floor(most / binsX)));
  return { binsX, binsY };
}

/**
 * The connectivity heat map as RGB pixels: row 0 (top) is output 0, column 0 is input 0;
 * colour is the bin's density relative to `density.scaleMax` (white = no connection). Bins are
 * sized so each holds about 16 connections on average, and drawn as blocks when there are
 * fewer bins than pixels.
 */
export function connectivityImage(
  rows: Int32Array,
  cols: Int32Array,
  nOut: number,
  nIn: number,
  options: ConnectivityOptions = {},
): RasterImage & { density: ConnectivityDensity } {
  checkOptionKeys(options, IMAGE_OPTIONS, "connectivityImage()");
  checkSizes(rows, cols, nOut, nIn);
  const [width, height] = defaultSize(nOut, nIn, options);
  const bins = chooseBins(rows.length, nOut, nIn, width, height);
  const density = connectivityDensity(rows, cols, nOut, nIn, bins);
  const scale = enumOption(options.scale, "scale", ["linear", "sqrt"], "linear");
  const pixels = new Uint8Array(width * height * 3);
  const max = density.scaleMax || 1;
  // Small layers have fewer bins than pixels: each bin is drawn as a block (nearest neighbour).
  for (let y = 0; y < height; y++) {
    const by = Math.floor((y * density.binsY) / height);
    for (let x = 0; x < width; x++) {
      const bx = Math.floor((x * density.binsX) / width);
      const d = Math.min(1, density.density[by * density.binsX + bx] / max);
      const [r, g, b] = rampColor(scale === "sqrt" ? Math.sqrt(d) : d);
      const at = (y * width + x) * 3;
      pixels[at] = r;
      pixels[at + 1] = g;
      pixels[at + 2] = b;
    }
  }
  return { width, height, channels: 3, pixels, density };
}

/**
 * The connectivity heat map as PNG bytes (see `connectivityImage`), inside a 1-pixel grey frame
 * so that the matrix's extent shows on a white page: the file is `width + 2` × `height + 2`.
 */
export function connectivityPng(
  rows: Int32Array,
  cols: Int32Array,
  nOut: number,
  nIn: number,
  options: ConnectivityOptions = {},
): Uint8Array {
  checkOptionKeys(options, IMAGE_OPTIONS, "connectivityPng()");
  const image = connectivityImage(rows, cols, nOut, nIn, options);
  const width = image.width + 2;
  const height = image.height + 2;
  const pixels = new Uint8Array(width * height * 3).fill(128);
  for (let y = 0; y < image.height; y++) {
    const from = image.pixels.subarray(y * image.width * 3, (y + 1) * image.width * 3);
    pixels.set(from, ((y + 1) * width + 1) * 3);
  }
  return encodePng({ width, height, channels: 3, pixels });
}

/**
 * The connectivity heat map as an SVG document with a title, axes (input index across, output
 * index down, as the weight matrix is written) and a colour bar in "% connected".
 * @example
 * ```ts
 * import { connectivitySvg } from "@sparselinear/sparselinear";
 * const rows = new Int32Array([0, 1, 2]);
 * const cols = new Int32Array([0, 1, 2]);
 * const svg = connectivitySvg(rows, cols, 3, 3, { title: "diagonal" });
 * console.log(svg.includes("<image")); // true
 * ```
 */
export function connectivitySvg(
  rows: Int32Array,
  cols: Int32Array,
  nOut: number,
  nIn: number,
  options: ConnectivityOptions & { title?: string } = {},
): string {
  checkOptionKeys(options, [...IMAGE_OPTIONS, "title"], "connectivitySvg()");
  const { title: _, ...imageOptions } = options;
  const image = connectivityImage(rows, cols, nOut, nIn, imageOptions);
  const { width, height } = image;
  const left = 72;
  const top = options.title ? 56 : 36;
  const right = 116;
  const bottom = 52;
  const W = left + width + right;
  const H = top + height + bottom;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (options.title) {
    out.push(
      `<text x="${px(left + width / 2)}" y="26" text-anchor="middle" font-size="16" ` +
        `font-weight="bold">${escapeXml(options.title)}</text>`,
    );
  }
  out.push(
    `<text x="${px(left + width / 2)}" y="${top - 12}" text-anchor="middle" font-size="12" ` +
      `fill="#555">${nOut} outputs × ${nIn} inputs, ${rows.length} connections</text>`,
  );
  out.push(
    `<image x="${left}" y="${top}" width="${width}" height="${height}" ` +
      `preserveAspectRatio="none" style="image-rendering:pixelated" ` +
      `href="data:image/png;base64,${base64(encodePng(image))}"/>`,
  );
  out.push(
    `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#333"/>`,
  );
  // Axis ticks: index values at their pixel positions.
  const xt = niceTicks(0, nIn, Math.max(2, Math.min(8, Math.floor(width / 70))));
  for (const t of xt.ticks) {
    if (t > nIn) continue;
    const x = px(left + (t / nIn) * width);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${top + height}" y2="${top + height + 5}" stroke="#333"/>`,
    );
    out.push(
      `<text x="${x}" y="${top + height + 19}" text-anchor="middle">${
        formatTick(t, xt.step)
      }</text>`,
    );
  }
  const yt = niceTicks(0, nOut, Math.max(2, Math.min(8, Math.floor(height / 40))));
  for (const t of yt.ticks) {
    if (t > nOut) continue;
    const y = px(top + (t / nOut) * height);
    out.push(`<line x1="${left - 5}" x2="${left}" y1="${y}" y2="${y}" stroke="#333"/>`);
    out.push(
      `<text x="${left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        formatTick(t, yt.step)
      }</text>`,
    );
  }
  out.push(
    `<text x="${px(left + width / 2)}" y="${H - 10}" text-anchor="middle">input index</text>`,
  );
  const cy = px(top + height / 2);
  out.push(
    `<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">output index</text>`,
  );
  // Colour bar: from 0 to the top of the scale, in percent of possible connections.
  const barX = left + width + 24;
  const barH = Math.min(height, 240);
  const steps = 32;
  for (let i = 0; i < steps; i++) {
    const t = 1 - i / (steps - 1);
    const [r, g, b] = rampColor(options.scale === "sqrt" ? Math.sqrt(t) : t);
    out.push(
      `<rect x="${barX}" y="${px(top + (i * barH) / steps)}" width="16" ` +
        `height="${px(barH / steps + 0.5)}" fill="rgb(${r},${g},${b})"/>`,
    );
  }
  out.push(`<rect x="${barX}" y="${top}" width="16" height="${barH}" fill="none" stroke="#333"/>`);
  const { scaleMax, maxDensity } = image.density;
  out.push(
    `<text x="${barX + 22}" y="${top + 5}" dominant-baseline="middle">${
      scaleMax < maxDensity ? "≥ " : ""
    }${formatPercent(scaleMax * 100)}</text>`,
  );
  out.push(`<text x="${barX + 22}" y="${top + barH}" dominant-baseline="middle">0 %</text>`);
  const labelX = barX + 78;
  const labelY = px(top + barH / 2);
  out.push(
    `<text x="${labelX}" y="${labelY}" text-anchor="middle" font-size="11" ` +
      `transform="rotate(90 ${labelX} ${labelY})">connected</text>`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function formatPercent(p: number): string {
  if (p >= 10) return `${p.toFixed(0)} %`;
  if (p >= 1) return `${p.toFixed(1)} %`;
  return `${p.toPrecision(2)} %`;
}
