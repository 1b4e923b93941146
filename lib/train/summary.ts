/**
 * A model summary as a text table, as Keras' `model.summary()`: one row per layer with its
 * parameters, connections (nnz) and bytes, then totals.
 * @module
 */
import type { Module } from "../nn/module.ts";
import { IndexTensor, type Tensor } from "../tensor.ts";
import { describeValue, isModule, requireModule } from "../errors.ts";
import { checkOptionKeys, numberOption } from "../options.ts";

/** One layer's row of the summary. */
export interface LayerSummary {
  /** Dotted name in the model (e.g. "1"). */
  name: string;
  /** The layer's description (its `toString()`). */
  description: string;
  /**
   * Trainable values of the layer itself (not of its children; one it shares with an earlier
   * layer is counted there).
   */
  parameters: number;
  /** Connections of a linear layer (nnz for SparseLinear, in·out for Linear), or null. */
  connections: number | null;
  /** Bytes held by the layer: parameters, buffers and, for sparse layers, the index arrays. */
  bytes: number;
}

/** The whole summary. */
export interface ModelSummary {
  /** One entry per layer that holds state or computes something (containers are skipped). */
  layers: LayerSummary[];
  /** Sum of `parameters`. */
  parameters: number;
  /** Sum of `connections`. */
  connections: number;
  /** Sum of `bytes` (the model's own memory, without gradients or optimizer state). */
  bytes: number;
}

/** A SparseLinear-like layer: reports its own memory by part. */
interface HasMemoryBreakdown {
  memoryBreakdown(): { values: number; pattern: number; bias: number };
  nnz: number;
}

function hasMemoryBreakdown(m: unknown): m is HasMemoryBreakdown {
  return typeof (m as HasMemoryBreakdown).memoryBreakdown === "function" &&
    typeof (m as HasMemoryBreakdown).nnz === "number";
}

/** Own (not inherited from children) parameters of a module. */
function ownParameters(m: Module): Tensor[] {
  return m.namedParameters().filter(([name]) => !name.includes(".")).map(([, p]) => p);
}

/** `seen`: the parameters of earlier layers, which a layer sharing one does not count again. */
function summarizeLayer(name: string, m: Module, seen: Set<Tensor>): LayerSummary {
  const params = ownParameters(m).filter((p) => !seen.has(p));
  for (const p of params) seen.add(p);
  const parameters = params.reduce((n, p) => n + p.size, 0);
  let connections: number | null = null;
  let bytes: number;
  if (hasMemoryBreakdown(m)) {
    // Sparse layer: values + CSR index arrays (+ the CSC view on CUDA) + bias. Its `indices`
    // is built on demand, so namedBuffers() is not called here (that would materialise it).
    const mem = m.memoryBreakdown();
    connections = m.nnz;
    bytes = mem.values + mem.pattern + mem.bias;
  } else {
    bytes = 4 * parameters;
    for (const [bufferName, b] of m.namedBuffers()) {
      if (bufferName.includes(".")) continue;
      bytes += b instanceof IndexTensor ? b.data.byteLength : 4 * (b as Tensor).size;
    }
    const weight = params.find((p) => p.ndim === 2);
    if (weight !== undefined) connections = weight.size;
  }
  return { name, description: String(m), parameters, connections, bytes };
}

/** Summarises `model`: its layers (leaves and containers with own state) and totals. */
export function summarize(model: Module): ModelSummary {
  requireModule(model, "summarize() model");
  const layers: LayerSummary[] = [];
  const seen = new Set<Tensor>(); // a shared (tied) parameter counts once, as in parameters()
  for (const [name, m] of model.namedModules()) {
    const isLeaf = m.namedChildren().length === 0;
    if (!isLeaf && ownParameters(m).length === 0) continue;
    layers.push(summarizeLayer(name === "" ? "(model)" : name, m, seen));
  }
  return {
    layers,
    parameters: layers.reduce((n, l) => n + l.parameters, 0),
    connections: layers.reduce((n, l) => n + (l.connections ?? 0), 0),
    bytes: layers.reduce((n, l) => n + l.bytes, 0),
  };
}

/** Formats a byte count as `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB`. */
export function formatBytes(bytes: number): string {
  numberOption(bytes, "formatBytes() bytes");
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = bytes / 1024;
  let u = 0;
  // Judged on the printed value: 1,048,575 B is "1.00 MiB", not "1024.0 KiB".
  while (+v.toFixed(1) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(+v.toFixed(2) < 10 ? 2 : 1)} ${units[u]}`;
}

function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** Options of `summaryTable`. */
export interface SummaryTableOptions {
  /**
   * Optimizer state per parameter in bytes, added as a line of its own (e.g. 4 for SGD with
   * momentum, 8 for Adam). Default 0 (no line).
   */
  optimizerBytesPerParameter?: number;
}

/** Whether `value` is what `summarize()` returns (a module has no `layers` array of its own). */
function isModelSummary(value: unknown): value is ModelSummary {
  const s = value as Partial<ModelSummary> | null;
  return typeof s === "object" && s !== null && Array.isArray(s.layers) &&
    typeof s.parameters === "number" && typeof s.connections === "number" &&
    typeof s.bytes === "number";
}

/**
 * The summary as a text table (layer, description, parameters, connections, memory), then the
 * totals; gradients take as many bytes as the parameters during training. Takes the model or,
 * for a model already summarised, the result of `summarize(model)`.
 * @example
 * ```ts
 * import { Linear, ReLU, Sequential, summaryTable } from "@sparselinear/sparselinear";
 * const model = new Sequential(new Linear(4, 8, { seed: 0 }), new ReLU());
 * console.log(summaryTable(model).includes("Total")); // true
 * ```
 */
export function summaryTable(
  model: Module | ModelSummary,
  options: SummaryTableOptions = {},
): string {
  // A module is recognised first: a Module subclass may well have a `layers` field.
  const asModule = isModule(model);
  if (!asModule && !isModelSummary(model)) {
    throw new TypeError(
      `summaryTable() model must be a Module or the result of summarize(model), got ${
        describeValue(model)
      }`,
    );
  }
  checkOptionKeys(options, ["optimizerBytesPerParameter"], "summaryTable()");
  const perParam = numberOption(
    options.optimizerBytesPerParameter,
    "summaryTable() optimizerBytesPerParameter",
    0,
  );
  if (!(perParam >= 0 && Number.isFinite(perParam))) {
    throw new RangeError(
      `summaryTable() optimizerBytesPerParameter must be a finite number >= 0, got ${perParam}`,
    );
  }
  const s = asModule ? summarize(model) : model as ModelSummary;
  const rows = s.layers.map((l) => [
    l.name,
    l.description.split("\n")[0],
    formatCount(l.parameters),
    l.connections === null ? "-" : formatCount(l.connections),
    formatBytes(l.bytes),
  ]);
  const header = ["Layer", "Description", "Parameters", "Connections", "Memory"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c >= 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  ")
      .trimEnd();
  const rule = "-".repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  const out = [line(header), rule, ...rows.map(line), rule];
  out.push(
    `Total: ${formatCount(s.parameters)} parameters, ${formatCount(s.connections)} connections, ${
      formatBytes(s.bytes)
    }`,
  );
  const training = 4 * s.parameters + perParam * s.parameters;
  out.push(
    `Training adds ${formatBytes(training)} (gradients${
      perParam > 0 ? " + optimizer state" : ""
    }) plus the activations of one batch`,
  );
  return out.join("\n");
}
