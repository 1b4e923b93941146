/**
 * sparselinear: train neural networks whose linear layers are extremely wide and sparse, on a
 * native (C/OpenMP, optional CUDA) kernel library.
 *
 * @example
 * ```ts
 * import { tensor } from "@sparselinear/sparselinear";
 * const x = tensor([[1, 2, 3]], undefined, { requiresGrad: true });
 * console.log(x.shape); // [1, 3]
 * ```
 * @module
 */

// Tensors and autograd
export { IndexTensor, Tensor } from "./lib/tensor.ts";
export {
  type CreateOptions,
  full,
  type NestedNumbers,
  ones,
  rand,
  randn,
  type RandomOptions,
  tensor,
  zeros,
} from "./lib/creation.ts";
export { type BackwardOptions, isGradEnabled, noGrad } from "./lib/autograd.ts";
export { Generator } from "./lib/random.ts";
export type { Device } from "./lib/backend/backend.ts";
export { LibraryError, NativeError, NonFiniteLossError, ShapeError } from "./lib/errors.ts";
export { getNumThreads, setNumThreads } from "./ffi/library.ts";

// Modules
export { type LoadStateOptions, Module, type StateDict, type StateValue } from "./lib/nn/module.ts";

// Sparsity: connectivity builders and per-layer budgets
export {
  smallWorldConnectivity,
  smallWorldDistance,
  type SmallWorldOptions,
  type SmallWorldPattern,
  smallWorldPattern,
} from "./lib/sparsity/small_world.ts";
export { type ErkOptions, erkSparsities, type LayerShape } from "./lib/sparsity/erk.ts";

// Activation sparsity (K-Winners)
export {
  ActivationSparsity,
  type ActivationSparsityOptions,
  kWinners,
  type KWinnersOptions,
} from "./lib/nn/activation_sparsity.ts";
