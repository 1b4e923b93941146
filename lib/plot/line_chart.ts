/**
 * Line charts as standalone SVG (no external service or font): loss and accuracy per epoch.
 * @module
 */
import {
  clampFinite,
  escapeXml,
  formatTick,
  fraction,
  niceTicks,
  nonsingular,
  px,
  textWidth,
} from "./svg.ts";
import { describeValue, requireObject } from "../errors.ts";
import { checkOptionKeys, numberOption } from "../options.ts";

/** One line of a chart. */
export interface ChartSeries {
  /** Legend entry (cut with "…" where it would take more than a third of the width). */
  name: string;
  /** Y values; NaN or null (a value not measured) leaves a gap. */
  values: readonly number[];
  /** Stroke colour (CSS); default: from a colour-blind-friendly palette. */
  color?: string;
}

/** Options of `lineChart`. */
export interface LineChartOptions {
  /** The lines to draw. */
  series: readonly ChartSeries[];
  /** Title above the chart. */
  title?: string;
  /** X axis label (default "epoch"). */
  xLabel?: string;
  /** Y axis label. */
  yLabel?: string;
  /**
   * X value of each point (shared by all series); default 1, 2, 3, ... (epochs). A NaN or
   * infinite x leaves a gap, as a NaN y does: that point is not drawn.
   */
  x?: readonly number[];
  /** Fix the lower end of the y axis (default: from the data); a finite number. */
  yMin?: number;
  /** Fix the upper end of the y axis (default: from the data); a finite number, not below yMin. */
  yMax?: number;
  /** Width in pixels (default 720). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
}

const LINE_CHART_OPTIONS = [
  "series",
  "title",
  "xLabel",
  "yLabel",
  "x",
  "yMin",
  "yMax",
  "width",
  "height",
];

/** Tableau 10: distinct and colour-blind-friendly. */
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

function range(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/**
 * A line chart as an SVG document: title, axes with ticks and grid, axis labels, legend.
 * @example
 * ```ts
 * import { lineChart } from "@sparselinear/sparselinear";
 * const svg = lineChart({
 *   title: "Loss",
 *   yLabel: "cross-entropy",
 *   series: [{ name: "train", values: [0.9, 0.5, 0.3] }, { name: "test", values: [0.8, 0.6, 0.5] }],
 * });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function lineChart(options: LineChartOptions): string {
  requireObject(options, "lineChart() options", "an object { series: [{ name, values }], ... }");
  checkOptionKeys(options, LINE_CHART_OPTIONS, "lineChart()");
  const { series } = options;
  if (!Array.isArray(series) || series.length === 0) {
    throw new TypeError("lineChart() needs series: a non-empty array of { name, values }");
  }
  for (const s of series) {
    if (typeof s?.name !== "string" || !Array.isArray(s.values)) {
      throw new TypeError("Each series needs a name (string) and values (array of numbers)");
    }
    // NaN or null leaves a gap (a metric an epoch did not measure); another kind ("0.5")
    // would be drawn or skipped by coercion.
    s.values.forEach((v: unknown, i: number) => {
      if (v !== null) numberOption(v, `lineChart() series "${s.name}" values[${i}]`);
    });
  }
  const width = numberOption(options.width, "lineChart() width", 720);
  const height = numberOption(options.height, "lineChart() height", 420);
  if (!(width >= 200 && height >= 150)) {
    throw new RangeError(`Chart size must be at least 200 x 150, got ${width} x ${height}`);
  }
  if (!Number.isFinite(width + height)) {
    throw new RangeError(`Chart size must be finite, got ${width} x ${height}`);
  }
  const points = Math.max(...series.map((s) => s.values.length));
  const xs = options.x === undefined ? Array.from({ length: points }, (_, i) => i + 1) : options.x;
  if (!Array.isArray(xs)) {
    throw new TypeError(`lineChart() x must be an array of numbers, got ${describeValue(xs)}`);
  }
  xs.forEach((v, i) => numberOption(v, `lineChart() x[${i}]`));
  if (xs.length < points) {
    throw new RangeError(`x has ${xs.length} values, but a series has ${points}`);
  }
  for (const name of ["yMin", "yMax"] as const) {
    const v = options[name];
    if (v !== undefined) numberOption(v, `lineChart() ${name}`);
    if (v !== undefined && !Number.isFinite(v)) {
      throw new RangeError(`lineChart() ${name} must be a finite number, got ${v}`);
    }
  }
  if (options.yMin !== undefined && options.yMax !== undefined && options.yMin > options.yMax) {
    throw new RangeError(
      `lineChart() yMin (${options.yMin}) must not be above yMax (${options.yMax})`,
    );
  }

  const font = 13;
  // The legend takes at most a third of the width; longer names are cut with "…" (else the plot
  // was left a negative width: an invalid SVG, every point outside the image).
  const longest = Math.max(1, Math.floor((width / 3 - 44) / textWidth("m", font)));
  const legendName = (name: string) =>
    name.length > longest ? `${name.slice(0, longest - 1)}…` : name;
  const legendWidth = Math.max(...series.map((s) => textWidth(legendName(s.name), font))) + 44;
  const left = 72;
  const right = legendWidth + 16;
  const top = options.title ? 44 : 20;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;

  // X spans the data (epochs 1..n); one epoch gets 0..2, so its point is centred between whole
  // ticks (as matplotlib pads a single value) instead of sitting on the frame.
  const [dataX0, dataX1] = range(xs.slice(0, Math.max(points, 1)));
  const [x0, x1] = nonsingular(dataX0, dataX1, Math.max(1, Math.abs(dataX0) * 0.1));
  // Default x values are epochs, one apart: at most a tick per epoch, so never "1.5".
  const xTicks = niceTicks(x0, x1, Math.min(10, options.x ? Math.max(2, points) : x1 - x0));
  const xMin = Math.min(x0, xTicks.ticks[0] ?? x0);
  const xMax = Math.max(x1, xTicks.ticks.at(-1) ?? x1);
  // Y is widened around a constant series, by a 5 % margin at each end the data sets (so a
  // point at the extreme is not drawn on the frame, as matplotlib's margins), then to whole
  // tick steps unless fixed; rounding out stops at ±Number.MAX_VALUE (1.7e308 rounded up to a
  // step of 5e307 would be Infinity).
  const [dataLo, dataHi] = range(series.flatMap((s) => s.values));
  const [lo, hi] = nonsingular(options.yMin ?? dataLo, options.yMax ?? dataHi);
  const margin = (hi / 2 - lo / 2) * 0.1; // 5 % of the span (halves: no overflow)
  const yLo = options.yMin ?? clampFinite(lo - margin);
  const yHi = options.yMax ?? clampFinite(hi + margin);
  const yStep = niceTicks(yLo, yHi, 6).step;
  const yMin = options.yMin ?? clampFinite(Math.floor(yLo / yStep + 1e-9) * yStep);
  let yMax = options.yMax ?? clampFinite(Math.ceil(yHi / yStep - 1e-9) * yStep);
  if (!(yMax > yMin)) yMax = clampFinite(yMin + yStep);
  const yTicks = { step: yStep, ticks: [] as number[] };
  for (let i = Math.ceil(yMin / yStep - 1e-9); i <= Math.floor(yMax / yStep + 1e-9); i++) {
    yTicks.ticks.push(Number((i * yStep).toPrecision(12)) + 0);
  }
  const sx = (v: number) => left + fraction(v, xMin, xMax) * plotW;
  const sy = (v: number) => top + plotH - fraction(v, yMin, yMax) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="${font}">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  if (options.title) {
    out.push(
      `<text x="${px(left + plotW / 2)}" y="26" text-anchor="middle" font-size="16" ` +
        `font-weight="bold">${escapeXml(options.title)}</text>`,
    );
  }
  // Grid and ticks.
  for (const t of yTicks.ticks) {
    if (t < yMin - 1e-12 || t > yMax + 1e-12) continue;
    const y = px(sy(t));
    out.push(`<line x1="${left}" x2="${px(left + plotW)}" y1="${y}" y2="${y}" stroke="#e6e6e6"/>`);
    out.push(
      `<text x="${left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        escapeXml(formatTick(t, yTicks.step))
      }</text>`,
    );
  }
  for (const t of xTicks.ticks) {
    const x = px(sx(t));
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${px(top + plotH)}" stroke="#f0f0f0"/>`);
    out.push(
      `<text x="${x}" y="${px(top + plotH + 18)}" text-anchor="middle">${
        escapeXml(formatTick(t, xTicks.step))
      }</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${px(plotW)}" height="${px(plotH)}" fill="none" ` +
      `stroke="#333"/>`,
  );
  // Axis labels.
  out.push(
    `<text x="${px(left + plotW / 2)}" y="${height - 12}" text-anchor="middle">${
      escapeXml(options.xLabel ?? "epoch")
    }</text>`,
  );
  if (options.yLabel) {
    const cy = px(top + plotH / 2);
    out.push(
      `<text x="18" y="${cy}" text-anchor="middle" transform="rotate(-90 18 ${cy})">${
        escapeXml(options.yLabel)
      }</text>`,
    );
  }
  // Lines, split at missing values; markers when there are few points.
  const markers = points <= 60;
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) {
        out.push(
          `<polyline fill="none" stroke="${escapeXml(color)}" stroke-width="2" ` +
            `stroke-linejoin="round" points="${run.join(" ")}"/>`,
        );
      }
      run = [];
    };
    s.values.forEach((v: number, i: number) => {
      if (!Number.isFinite(v) || !Number.isFinite(xs[i])) return flush();
      const x = px(sx(xs[i]));
      const y = px(Math.min(Math.max(sy(v), top), top + plotH));
      run.push(`${x},${y}`);
      if (markers) out.push(`<circle cx="${x}" cy="${y}" r="3" fill="${escapeXml(color)}"/>`);
    });
    flush();
    // Legend entry.
    const ly = top + 14 + k * 22;
    const lx = left + plotW + 16;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${escapeXml(color)}" ` +
        `stroke-width="3"/>`,
    );
    out.push(
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${
        escapeXml(legendName(s.name))
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
