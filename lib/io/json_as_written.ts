/**
 * JSON read as it was written, for checking a safetensors header as the reference (Rust,
 * serde_json into typed structs) does: serde sees more than `JSON.parse` shows — a number's
 * literal (4.0 is no usize), repeated keys (an error for a struct field, last-wins for a map),
 * nesting depth. After `JSON.parse` has checked the syntax, `readJson` reads the text again
 * into a form that keeps them.
 * @module
 */
import { FormatError } from "./format_error.ts";

/** A JSON number as written. */
export class JsonNumber {
  /** Keeps `literal`, the number exactly as written. */
  constructor(readonly literal: string) {}
}

/** A JSON object as written: every entry in order, repeated keys included. */
export class JsonObject {
  /** Keeps every entry in order. */
  constructor(readonly entries: [string, Json][]) {}
}

/** A JSON value as written: numbers keep their literal, objects their repeated keys. */
export type Json = null | boolean | string | JsonNumber | JsonObject | Json[];

/** serde_json's recursion limit: the most arrays and objects that may be open at once. */
const MAX_JSON_DEPTH = 127;

/** Reads text that JSON.parse accepted into `Json`, refusing what serde_json would refuse. */
export function readJson(text: string, source: string): Json {
  let i = 0;
  const space = () => {
    while (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r") i++;
  };
  const string = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    const s = JSON.parse(text.slice(start, ++i)) as string;
    // JSON.parse lets "\ud800" through; Rust strings cannot hold it.
    if (!s.isWellFormed()) {
      throw new FormatError(
        `${source} has a header string with an unpaired surrogate escape ` +
          `(header character ${start})`,
      );
    }
    return s;
  };
  const value = (depth: number): Json => {
    space();
    const open = text[i];
    if (open === '"') return string();
    if (open !== "{" && open !== "[") {
      const start = i;
      while (i < text.length && !",]} \t\n\r".includes(text[i])) i++;
      const word = text.slice(start, i);
      if (word === "null") return null;
      if (word === "true" || word === "false") return word === "true";
      return new JsonNumber(word);
    }
    if (depth === MAX_JSON_DEPTH) {
      throw new FormatError(
        `${source} has a header nested more than ${MAX_JSON_DEPTH} levels deep ` +
          `(header character ${i})`,
      );
    }
    const entries: [string, Json][] = [];
    const items: Json[] = [];
    i++;
    space();
    if (text[i] === "}" || text[i] === "]") i++;
    else {
      do {
        space();
        if (open === "{") {
          const key = string();
          space();
          i++; // the ":"
          entries.push([key, value(depth + 1)]);
        } else items.push(value(depth + 1));
        space();
      } while (text[i++] === ",");
    }
    return open === "{" ? new JsonObject(entries) : items;
  };
  return value(0);
}

/** A `Json` value as it was written, shortened for an error message. */
export function show(v: Json): string {
  const full = v instanceof JsonNumber
    ? v.literal
    : v instanceof JsonObject
    ? `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${show(x)}`).join(",")}}`
    : Array.isArray(v)
    ? `[${v.map(show).join(",")}]`
    : JSON.stringify(v);
  return full.length > 100 ? `${full.slice(0, 100)}...` : full;
}
