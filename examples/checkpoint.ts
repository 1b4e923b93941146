/**
 * What `deno task train --save PATH` writes next to the model so that `--resume PATH` can go on
 * exactly where the run stopped: the optimizer's state (SGD momentum per parameter) and the
 * run's bookkeeping (settings that must not change, epochs done with their metrics, each
 * dynamic layer's step count) in one safetensors file, `trainStatePath(PATH)`. The model file
 * itself stays a plain state dict that PyTorch's SparseLinear loads.
 * @module
 */
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { safetensorsToStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import type { Module } from "../lib/nn/module.ts";
import { SparseLinear, type ValueOrder } from "../lib/nn/sparse_linear.ts";
import type { Optimizer, OptimizerState } from "../lib/optim/optimizer.ts";
import { dynamicSchedules } from "../lib/sparsity/rigl.ts";
import type { EpochStats } from "../lib/train/fit.ts";
import type { ModelName } from "./models.ts";

/** The settings a resumed run must share with the saved one (else it is another run). */
export interface RunIdentity {
  /** Model name. */
  model: ModelName;
  /** Seed of connectivity, initial weights and shuffling. */
  seed: number;
  /** Batch size. */
  batchSize: number;
  /** Training images used, or null for all. */
  limitTrain: number | null;
}

/** The bookkeeping saved with the optimizer state. */
export interface TrainState extends RunIdentity {
  /** Format version of this record. */
  version: 1;
  /** Metrics of the epochs done, in order (fit's history). */
  history: EpochStats[];
  /** `dynamicSparsity` step count and SET seed of each dynamic layer, by module name. */
  dynamicSteps: Record<string, { stepCount: number; seed: number }>;
  /**
   * The value order of each SparseLinear kept in CSC order, by module name (the others: CSR).
   * The optimizer state is laid out in that order. Absent in states written before the wide
   * model's hidden layers moved to CSC order: every layer was then in CSR order.
   */
  valueOrders?: Record<string, ValueOrder>;
}

/** The metadata key that holds the `TrainState` as JSON. */
const STATE_KEY = "sparselinear_train_state";

/** The companion file of a model checkpoint: `a.safetensors` → `a.train.safetensors`. */
export function trainStatePath(modelPath: string): string {
  return modelPath.endsWith(".safetensors")
    ? `${modelPath.slice(0, -".safetensors".length)}.train.safetensors`
    : `${modelPath}.train.safetensors`;
}

/**
 * The step count and SET seed of the model's dynamic layers, by module name: neither is part of
 * a layer's state dict (the seed's PyTorch layer has no such state), and both decide its future
 * updates.
 */
function dynamicSteps(model: Module): TrainState["dynamicSteps"] {
  const steps: TrainState["dynamicSteps"] = {};
  for (const [name, dyn] of dynamicSchedules(model)) {
    steps[name] = { stepCount: dyn.stepCount, seed: dyn.seed };
  }
  return steps;
}

/** The SparseLinear layers of `model` whose values are not in CSR order, by module name. */
function valueOrders(model: Module): Record<string, ValueOrder> {
  const orders: Record<string, ValueOrder> = {};
  for (const [name, m] of model.namedModules()) {
    if (m instanceof SparseLinear && m.valueOrder !== "csr") orders[name] = m.valueOrder;
  }
  return orders;
}

/** Writes the optimizer state and the run's bookkeeping to `path` (atomically). */
export async function saveTrainState(
  path: string,
  model: Module,
  optimizer: Optimizer,
  identity: RunIdentity,
  history: readonly EpochStats[],
): Promise<void> {
  const state: TrainState = {
    version: 1,
    ...identity,
    history: [...history],
    dynamicSteps: dynamicSteps(model),
    valueOrders: valueOrders(model),
  };
  await saveStateDict(optimizer.stateDict(), path, {
    metadata: { [STATE_KEY]: JSON.stringify(state) },
  });
}

/** A training state read from its file and checked against the run that resumes it. */
export interface SavedTrainState {
  /** The bookkeeping. */
  state: TrainState;
  /** The optimizer's state, as `Optimizer.loadStateDict` takes it. */
  optimizer: OptimizerState;
  /** The file, for messages. */
  path: string;
}

/**
 * Reads what `saveTrainState` wrote and checks that `identity` is the saved run's, before
 * anything is loaded into the model (a model of another run would otherwise fail on its
 * state dict's keys, a less telling message).
 */
export async function readTrainState(
  path: string,
  identity: RunIdentity,
): Promise<SavedTrainState> {
  let file;
  try {
    file = await loadSafetensors(path);
  } catch (err) {
    throw new Error(
      `--resume needs the training state written next to the model by --save, ${path}: ` +
        (err as Error).message,
      { cause: err },
    );
  }
  const json = file.metadata?.[STATE_KEY];
  if (json === undefined) {
    throw new Error(`${path} holds no training state (${STATE_KEY} metadata): not from --save`);
  }
  let state: TrainState;
  try {
    state = JSON.parse(json);
  } catch (err) {
    throw new Error(`${path}: the training state is not valid JSON (${(err as Error).message})`);
  }
  if (state?.version !== 1) throw new Error(`${path}: unknown training state version`);
  if (
    !Array.isArray(state.history) || state.dynamicSteps === null ||
    typeof state.dynamicSteps !== "object"
  ) {
    throw new Error(`${path}: the training state is malformed (no history or dynamicSteps)`);
  }
  const differ = (Object.keys(identity) as (keyof RunIdentity)[])
    .filter((key) => state[key] !== identity[key])
    .map((key) =>
      `${key} ${JSON.stringify(state[key])} there, ${JSON.stringify(identity[key])} now`
    );
  if (differ.length > 0) {
    throw new Error(
      `--resume continues the saved run, so its settings must match: ${differ.join("; ")}`,
    );
  }
  return { state, optimizer: safetensorsToStateDict(file.tensors) as OptimizerState, path };
}

/**
 * Restores the optimizer state and the dynamic layers' step counts and SET seeds of a state
 * `readTrainState` returned. The model's own state is loaded from its checkpoint first (a
 * dynamic layer's saved topology replaces its parameters), and the optimizer made after that.
 */
export function restoreTrainState(
  saved: SavedTrainState,
  model: Module,
  optimizer: Optimizer,
): void {
  // The optimizer state holds one entry per value, in the layer's order: a layer whose order
  // changed since (a state from before this version) would restore every entry at another
  // connection, silently.
  const savedOrders = saved.state.valueOrders ?? {};
  const now = valueOrders(model);
  for (const name of new Set([...Object.keys(savedOrders), ...Object.keys(now)])) {
    const was = savedOrders[name] ?? "csr", is = now[name] ?? "csr";
    if (was !== is) {
      throw new Error(
        `${saved.path}: layer "${name}" kept its values in ${was.toUpperCase()} order there and ` +
          `keeps them in ${is.toUpperCase()} order in this version, so the optimizer state ` +
          "would not match its connections; start the run again",
      );
    }
  }
  optimizer.loadStateDict(saved.optimizer);
  const schedules = new Map(dynamicSchedules(model));
  for (const [name, entry] of Object.entries(saved.state.dynamicSteps)) {
    const dyn = schedules.get(name);
    if (dyn === undefined) {
      throw new Error(`${saved.path}: the saved dynamic layer "${name}" is not in this model`);
    }
    dyn.stepCount = entry.stepCount;
    dyn.seed = entry.seed;
  }
}

/**
 * Checks that the model checkpoint at `modelPath` was saved after the same epoch as the
 * training state `saved` (its `epoch` metadata, which `deno task train --save` writes): `--save`
 * writes the model, then the training state, so a run stopped between the two leaves the model
 * one epoch ahead, and resuming from that mix would not continue either run. Reads the file's
 * header only; call it once the checkpoint has been loaded (validated).
 */
export async function checkModelEpoch(modelPath: string, saved: SavedTrainState): Promise<void> {
  const file = await Deno.open(modelPath, { read: true });
  let metadata: Record<string, string> | undefined;
  try {
    const length = new Uint8Array(8);
    await readFull(file, length);
    const header = new Uint8Array(Number(new DataView(length.buffer).getBigUint64(0, true)));
    await readFull(file, header);
    metadata = JSON.parse(new TextDecoder().decode(header)).__metadata__;
  } finally {
    file.close();
  }
  const done = saved.state.history.length;
  if (metadata?.epoch !== String(done)) {
    throw new Error(
      `--resume ${modelPath} holds the model after epoch ${metadata?.epoch ?? "(none named)"}, ` +
        `but its training state ${saved.path} is from after epoch ${done}: the two were not ` +
        "saved together (was the run stopped while saving?); resume from a pair saved after " +
        "the same epoch",
    );
  }
}

async function readFull(file: Deno.FsFile, into: Uint8Array): Promise<void> {
  for (let done = 0; done < into.length;) {
    const n = await file.read(into.subarray(done));
    if (n === null) throw new Error("unexpected end of file");
    done += n;
  }
}
