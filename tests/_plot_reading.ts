/**
 * Reading the plots back in tests: PNG chunks (signature and CRCs checked) and pixels, and
 * numbers from SVG attributes.
 * @module
 */
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { crc32 } from "../lib/plot/png.ts";

/** Splits PNG bytes into chunks, checking the signature and every CRC. */
export function chunks(png: Uint8Array): { type: string; data: Uint8Array }[] {
  assert.deepEqual(Array.from(png.subarray(0, 8)), [137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: { type: string; data: Uint8Array }[] = [];
  let at = 8;
  while (at < png.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(view.getUint32(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)));
    out.push({ type, data });
    at += 12 + length;
  }
  assert.equal(at, png.length);
  return out;
}

/** Decodes a PNG made by encodePng (filter 0 rows) back to pixels. */
export function decodePng(
  png: Uint8Array,
): { width: number; height: number; channels: number; pixels: Uint8Array } {
  const parts = chunks(png);
  assert.deepEqual(parts.map((c) => c.type), ["IHDR", "IDAT", "IEND"]);
  const ihdr = new DataView(parts[0].data.buffer, parts[0].data.byteOffset, 13);
  const width = ihdr.getUint32(0);
  const height = ihdr.getUint32(4);
  assert.equal(parts[0].data[8], 8, "bit depth");
  const channels = parts[0].data[9] === 6 ? 4 : 3;
  const raw = new Uint8Array(inflateSync(parts[1].data));
  const stride = width * channels;
  assert.equal(raw.length, (stride + 1) * height);
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (stride + 1)], 0, "filter type");
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, channels, pixels };
}

/** Attribute `name` of every `<tag>` in `svg`, as numbers. */
export function numbers(svg: string, tag: string, name: string): number[] {
  const elements = svg.match(new RegExp(`<${tag} [^>]*>`, "g")) ?? [];
  return elements.map((e) => Number(e.match(new RegExp(` ${name}="(.*?)"`))?.[1]));
}

/** The plot area: the frame drawn around the lines. */
export function frame(svg: string): { left: number; top: number; right: number; bottom: number } {
  const m = svg.match(/<rect x="(.*?)" y="(.*?)" width="(.*?)" height="(.*?)" fill="none"/);
  assert.ok(m, "no frame");
  const [left, top, width, height] = m.slice(1).map(Number);
  return { left, top, right: left + width, bottom: top + height };
}
