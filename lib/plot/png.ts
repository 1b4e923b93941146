/**
 * A minimal PNG encoder: 8-bit RGB or RGBA, no interlacing, filter 0 on every row, zlib
 * compression from `node:zlib`. Enough for plots and connectivity pictures.
 * @module
 */
import { deflateSync } from "node:zlib";
import { describeValue, requireObject } from "../errors.ts";
import { numberOption } from "../options.ts";

/** Pixels of an image, row-major from the top-left; 3 (RGB) or 4 (RGBA) bytes per pixel. */
export interface RasterImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * channels` bytes. */
  pixels: Uint8Array;
  /** 3 for RGB, 4 for RGBA. */
  channels: 3 | 4;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309), as PNG chunks use. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes an image as PNG bytes.
 * @example
 * ```ts
 * import { encodePng } from "@sparselinear/sparselinear";
 * const red = new Uint8Array([255, 0, 0]);
 * const png = encodePng({ width: 1, height: 1, channels: 3, pixels: red });
 * console.log(png.length > 0); // true
 * ```
 */
export function encodePng(image: RasterImage): Uint8Array {
  requireObject(image, "encodePng() image", "{ width, height, pixels, channels }");
  const { width, height, pixels, channels } = image;
  numberOption(width, "encodePng() width");
  numberOption(height, "encodePng() height");
  numberOption(channels, "encodePng() channels", undefined, "{3, 4}");
  if (!(pixels instanceof Uint8Array)) {
    throw new TypeError(`encodePng() pixels must be a Uint8Array, got ${describeValue(pixels)}`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers, got ${width} x ${height}`);
  }
  if (width > 0x7fffffff || height > 0x7fffffff) throw new RangeError("PNG size is too large");
  if (channels !== 3 && channels !== 4) {
    throw new RangeError(`channels must be 3 (RGB) or 4 (RGBA), got ${channels}`);
  }
  const stride = width * channels;
  if (!(pixels instanceof Uint8Array) || pixels.length !== stride * height) {
    throw new RangeError(
      `pixels must be a Uint8Array of ${
        stride * height
      } bytes (${width} x ${height} x ${channels})`,
    );
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: RGBA or RGB
  // compression 0, filter method 0, no interlace: already zero
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter type None
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const parts = [
    signature,
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
