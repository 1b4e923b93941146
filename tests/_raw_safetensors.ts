/**
 * A safetensors file's bytes from a raw JSON header: the 8-byte little-endian header length
 * (`declared`, or the header's real length), the header, then `data`. For tests of headers no
 * writer would produce.
 * @module
 */
export function rawSafetensors(
  header: string,
  data: Uint8Array = new Uint8Array(0),
  declared?: number,
): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declared ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
