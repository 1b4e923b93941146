/**
 * Model checkpoints as safetensors, with PyTorch's names and dtypes: `Module.stateDict()` keys
 * (`0.weights`, `0.indices`, `0.bias`, ...) become tensor names, float32 tensors are written as
 * F32 and integer tensors (SparseLinear's `indices`, shape (2, nnz)) as I64, as PyTorch stores
 * them — so a file written by the PyTorch SparseLinear (`safetensors.torch.save_file(
 * model.state_dict(), path)`) loads here and a file written here loads there.
 * @module
 */
import { IndexTensor, Tensor } from "../tensor.ts";
import type {
  LoadStateOptions,
  LoadStateResult,
  Module,
  StateDict,
  StateValue,
} from "../nn/module.ts";
import {
  int32ToInt64,
  loadSafetensors,
  type SafeTensor,
  saveSafetensors,
  toFloat32,
  toInt32,
} from "./safetensors.ts";
import { HostStorage } from "../backend/cpu.ts";
import { isModule, requireModule, requireObject } from "../errors.ts";
import { checkPath } from "./atomic_write.ts";
import { booleanOption, checkOptionKeys, enumOption } from "../options.ts";

const STATE_DICT = "a state dict (an object mapping names to tensors, e.g. model.stateDict())";

/** Options of `saveStateDict`. */
export interface SaveStateOptions {
  /** String metadata stored in the file's `__metadata__` (`format: "pt"` is always added). */
  metadata?: Record<string, string>;
  /** Dtype for integer tensors: "I64" (default, as PyTorch) or "I32" (half the size). */
  indexDType?: "I64" | "I32";
  /**
   * Save optional state (default true; see `Module.stateDict`): `false` leaves out what the
   * seed's PyTorch modules do not have (K-Winners' `dutyCycle`, `boostStrength`), so PyTorch
   * loads the file with `strict=True`; training resumed from it starts those afresh.
   */
  optional?: boolean;
}

/**
 * A state dict as safetensors entries: Tensor → F32 (copied to the host), IndexTensor → I64
 * (or I32).
 */
export function stateDictToSafetensors(
  state: StateDict,
  options: Pick<SaveStateOptions, "indexDType"> = {},
): Record<string, SafeTensor> {
  requireObject(state, "stateDictToSafetensors() state", STATE_DICT);
  checkOptionKeys(options, ["indexDType"], "stateDictToSafetensors()");
  const indexDType = enumOption(options.indexDType, "indexDType", ["I64", "I32"], "I64");
  const out = Object.create(null) as Record<string, SafeTensor>;
  for (const name of Object.keys(state)) {
    const value = state[name];
    if (value instanceof Tensor) {
      out[name] = { dtype: "F32", shape: value.shape, data: value.toArray() };
    } else if (value instanceof IndexTensor) {
      out[name] = indexDType === "I64"
        ? { dtype: "I64", shape: value.shape, data: int32ToInt64(value.data) }
        : { dtype: "I32", shape: value.shape, data: value.data };
    } else {
      throw new TypeError(`State entry "${name}" must be a Tensor or an IndexTensor`);
    }
  }
  return out;
}

/**
 * Safetensors entries as a state dict. Each entry becomes the kind that `like[name]` has
 * (float → Tensor from F32/F16/BF16; integer → IndexTensor from any integer dtype, range-checked
 * into int32); entries not in `like` follow their own dtype (with `strict: false`, those that
 * cannot be converted are dropped). Every problem is collected and reported in one error before
 * anything is returned.
 */
export function safetensorsToStateDict(
  tensors: Record<string, SafeTensor>,
  like: StateDict = {},
  options: { strict?: boolean; source?: string } = {},
): StateDict {
  requireObject(
    tensors,
    "safetensorsToStateDict() tensors",
    "an object mapping names to safetensors entries (e.g. loadSafetensors(path).tensors)",
  );
  requireObject(like, "safetensorsToStateDict() like", STATE_DICT);
  checkOptionKeys(options, ["strict", "source"], "safetensorsToStateDict()");
  const strict = booleanOption(options.strict, "safetensorsToStateDict() strict", true);
  const source = options.source ?? "Checkpoint";
  const state = Object.create(null) as StateDict;
  const problems: string[] = [];
  for (const name of Object.keys(tensors)) {
    const t = tensors[name];
    const target: StateValue | undefined = Object.hasOwn(like, name) ? like[name] : undefined;
    const wantsFloat = target !== undefined
      ? target instanceof Tensor
      : t.dtype.startsWith("F") || t.dtype === "BF16";
    try {
      if (wantsFloat) {
        const data = toFloat32(t, `"${name}"`);
        // The file's arrays are fresh copies, so the tensor can own them.
        state[name] = new Tensor(new HostStorage(data), t.shape);
      } else {
        state[name] = new IndexTensor(toInt32(t, `"${name}"`), t.shape);
      }
    } catch (err) {
      if (target !== undefined || strict) problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) {
    throw new Error(`${source} does not fit the model, which is unchanged: ${problems.join("; ")}`);
  }
  return state;
}

/**
 * Saves a module's state dict (or a state dict) as a safetensors file, atomically: a failure
 * leaves no partial file. The metadata records `format: "pt"`, as PyTorch/transformers write.
 * @example
 * ```ts ignore
 * import { loadStateDict, saveStateDict, SparseLinear } from "@sparselinear/sparselinear";
 * const model = new SparseLinear(784, 10, { seed: 0 });
 * await saveStateDict(model, "model.safetensors");
 * await loadStateDict(model, "model.safetensors"); // validates names, shapes, dtypes first
 * ```
 */
export async function saveStateDict(
  module: Module | StateDict,
  path: string,
  options: SaveStateOptions = {},
): Promise<void> {
  if (!isModule(module)) {
    requireObject(module, "saveStateDict() module", `a Module or ${STATE_DICT}`);
  }
  checkPath(path, "saveStateDict() path");
  checkOptionKeys(options, ["metadata", "indexDType", "optional"], "saveStateDict()");
  const state = isModule(module) ? module.stateDict({ optional: options.optional }) : module;
  const metadata = { format: "pt", ...options.metadata };
  const tensors = stateDictToSafetensors(state, { indexDType: options.indexDType });
  await saveSafetensors(path, tensors, metadata);
}

/**
 * Loads a safetensors checkpoint into `module`. The file is fully validated, every entry is
 * converted to the kind of the module's tensor of the same name (F64 into a float32 parameter,
 * or a float into an index buffer, is an error), and `module.loadStateDict` checks names and
 * shapes; on any problem an error lists it and the module is untouched. Returns, as
 * `module.loadStateDict` (and PyTorch's `load_state_dict`) does, the names the file lacked and the
 * names it had that the module does not (with `strict: false`; strict loads refuse both), the
 * latter including entries of a dtype no tensor could take.
 */
export async function loadStateDict(
  module: Module,
  path: string,
  options: LoadStateOptions = {},
): Promise<LoadStateResult> {
  requireModule(module, "loadStateDict() module");
  checkPath(path, "loadStateDict() path");
  checkOptionKeys(options, ["strict"], "loadStateDict()"); // before the file is read
  booleanOption(options.strict, "loadStateDict() strict", true);
  const file = await loadSafetensors(path);
  const state = safetensorsToStateDict(file.tensors, module.stateDict(), {
    strict: options.strict,
    source: `"${path}"`,
  });
  let result: LoadStateResult;
  try {
    result = module.loadStateDict(state, options);
  } catch (err) {
    throw new Error(`"${path}": ${(err as Error).message}`, { cause: err });
  }
  // Entries safetensorsToStateDict dropped (not the module's, and of no convertible dtype) are
  // unexpected too; listed in the file's order with the others.
  const unexpected = new Set(result.unexpectedKeys);
  const unexpectedKeys = Object.keys(file.tensors).filter((name) =>
    unexpected.has(name) || !Object.hasOwn(state, name)
  );
  return { missingKeys: result.missingKeys, unexpectedKeys };
}
