/**
 * Small helpers shared by the SVG plots: XML escaping, "nice" axis ticks, tick labels.
 * @module
 */

/** Characters that XML 1.0 forbids: C0 controls but tab and newlines, lone surrogates, U+FFFE/F. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * Escapes text for SVG content and attribute values. Characters that XML cannot hold at all
 * (e.g. an ANSI escape in a run's name) become U+FFFD, so the file stays well-formed.
 */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML, "\uFFFD").replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

/** `value` limited to ±Number.MAX_VALUE: axis ends rounded out past it would be infinite. */
export function clampFinite(value: number): number {
  return Math.min(Math.max(value, -Number.MAX_VALUE), Number.MAX_VALUE);
}

/**
 * `[lo, hi]`, widened by `pad` on both sides when it is a single value, so that the value is
 * drawn mid-axis rather than on the frame (default pad: 10 % of the value, or 1 at 0).
 */
export function nonsingular(
  lo: number,
  hi: number,
  pad = lo === 0 ? 1 : Math.abs(lo) * 0.1,
): [number, number] {
  return hi > lo ? [lo, hi] : [clampFinite(lo - pad), clampFinite(hi + pad)];
}

/** Where `value` lies in [lo, hi], from 0 to 1, also when hi - lo overflows (-1e308 to 1e308). */
export function fraction(value: number, lo: number, hi: number): number {
  const span = hi - lo;
  if (span === 0) return 0; // an empty axis: everything at its start, not 0 / 0 = NaN
  return Number.isFinite(span) ? (value - lo) / span : (value / 2 - lo / 2) / (hi / 2 - lo / 2);
}

/** Axis ticks covering [min, max]: steps of 1, 2 or 5 × 10^k, about `target` of them. */
export function niceTicks(min: number, max: number, target = 6): { ticks: number[]; step: number } {
  if (!(max > min)) return niceTicks(...nonsingular(min, max), target);
  // A span within 1e-9 of the values (0.9812 to 0.9812 + 1 ulp) is ticked as one value: steps
  // that fine put i · step at i > 2^53, where i++ no longer moves i and the ticks never ended.
  if (max - min <= Math.max(Math.abs(min), Math.abs(max)) * 1e-9) {
    const mid = min / 2 + max / 2;
    return niceTicks(...nonsingular(mid, mid), target);
  }
  const n = Math.max(1, target);
  // Divided first where the span overflows (-1e308 to 1e308), and steps kept finite (at most
  // 1e308) and non-zero (10 ** -324 is 0), else the ticks would be NaN or never end.
  const raw = Number.isFinite(max - min) ? (max - min) / n : max / n - min / n;
  const power = Math.max(10 ** Math.floor(Math.log10(raw)), Number.MIN_VALUE);
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw && s < Infinity) ?? power;
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  // Rounded to the step's precision, so ticks read 0.6, not 0.6000000000000001 (and 0, not -0).
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)) + 0);
  return { ticks, step };
}

/** A tick label with just the digits that the step needs. */
export function formatTick(value: number, step: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  const exponent = (v: number) => Math.floor(Math.log10(v) + 1e-9);
  if (magnitude >= 1e6 || magnitude < 1e-4) {
    // Enough digits that ticks a step apart differ (1.00e20, 1.05e20), at least one.
    const digits = Math.max(1, Math.min(6, exponent(magnitude) - exponent(step)));
    return value.toExponential(digits).replace("e+", "e");
  }
  return value.toFixed(Math.max(0, Math.min(6, -exponent(step))));
}

/** A number rounded for attributes (keeps SVG files small and stable). */
export function px(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** Approximate width in pixels of `text` at `fontSize` in a sans-serif font. */
export function textWidth(text: string, fontSize: number): number {
  return text.length * fontSize * 0.6;
}

/** Base64 of bytes (for embedding PNGs in SVG). */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
