/**
 * Element-wise arithmetic with gradients: broadcasting `add`, `sub`, `mul`, `div` (either
 * operand may be a number), `neg`, `mulScalar`, `exp`, `log`, `abs`, `sqrt`, `square`, `pow`.
 * Each forward is one native call (`sl_binary` / `sl_unary`) on the operands' device; each
 * backward is one call, plus one reduction per operand that was broadcast.
 * @module
 */
import { BinaryOp, UnaryOp } from "../../ffi/symbols/dense.ts";
import { record } from "../autograd.ts";
import type { Backend } from "../backend/backend.ts";
import { full } from "../creation.ts";
import { describeValue } from "../errors.ts";
import { Tensor } from "../tensor.ts";
import { allocateEmpty, backendOf, checkTensor, int64Arg, sameDevice } from "./_util.ts";
import { broadcastStrides, broadcastValidShapes, checkMaxDims, sumToShape } from "./broadcast.ts";

/** A tensor, or a number applied to every element. */
export type Operand = Tensor | number;

type BinaryName = keyof typeof BinaryOp;
type UnaryName = keyof typeof UnaryOp;

/**
 * `y = f(x)` for a unary operator with scalar parameters alpha, beta (see SL_UNARY_* in
 * sparselinear.h), recorded with its derivative.
 */
export function unaryOp(
  x: Tensor,
  op: UnaryName,
  name: string,
  alpha = 0,
  beta = 0,
): Tensor {
  const backend = backendOf(x);
  const k = backend.kernels;
  const code = UnaryOp[op];
  const n = BigInt(x.size);
  // sl_unary and sl_unary_bwd write every element: no fill needed.
  const y = allocateEmpty(backend, x.shape);
  backend.check(k.sl_unary(code, n, alpha, beta, x.storage.ptr(), y.storage.ptr()));
  return record(y, name, [x], (grad) => {
    const dx = allocateEmpty(backend, x.shape);
    backend.check(
      k.sl_unary_bwd(
        code,
        n,
        alpha,
        beta,
        x.storage.ptr(),
        y.storage.ptr(),
        grad.storage.ptr(),
        dx.storage.ptr(),
      ),
    );
    return [dx];
  });
}

function checkScalar(value: unknown, what: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be a Tensor or a number, got ${describeValue(value)}`);
  }
  return value;
}

/** The two operands' broadcast strides, as host arrays for sl_binary / sl_binary_bwd. */
function layout(a: Tensor, b: Tensor, op: string) {
  const shape = broadcastValidShapes(a.shape, b.shape, op);
  checkMaxDims(shape, op);
  return {
    shape,
    aStrides: broadcastStrides(a.shape, shape),
    bStrides: broadcastStrides(b.shape, shape),
  };
}

/** Gradients of a mul/div in the output shape (null where not needed), by sl_binary_bwd. */
function binaryGradients(
  backend: Backend,
  op: BinaryName,
  a: Tensor,
  b: Tensor,
  grad: Tensor,
  l: ReturnType<typeof layout>,
): [Tensor | null, Tensor | null] {
  const da = a.requiresGrad ? allocateEmpty(backend, l.shape) : null;
  const db = b.requiresGrad ? allocateEmpty(backend, l.shape) : null;
  backend.check(
    backend.kernels.sl_binary_bwd(
      BinaryOp[op],
      l.shape.length,
      int64Arg(0, l.shape),
      a.storage.ptr(),
      BigInt(a.size),
      int64Arg(1, l.aStrides),
      b.storage.ptr(),
      BigInt(b.size),
      int64Arg(2, l.bStrides),
      grad.storage.ptr(),
      da === null ? null : da.storage.ptr(),
      db === null ? null : db.storage.ptr(),
    ),
  );
  return [da, db];
}

function binaryTensors(op: BinaryName, a: Tensor, b: Tensor): Tensor {
  sameDevice(op, ["a", "b"], [a, b]);
  const backend = backendOf(a);
  const l = layout(a, b, op);
  const out = allocateEmpty(backend, l.shape);
  backend.check(
    backend.kernels.sl_binary(
      BinaryOp[op],
      l.shape.length,
      int64Arg(0, l.shape),
      a.storage.ptr(),
      BigInt(a.size),
      int64Arg(1, l.aStrides),
      b.storage.ptr(),
      BigInt(b.size),
      int64Arg(2, l.bStrides),
      out.storage.ptr(),
    ),
  );
  return record(out, op, [a, b], (grad) => {
    if (op === "add" || op === "sub") {
      return [
        a.requiresGrad ? sumToShape(grad, a.shape) : null,
        b.requiresGrad ? sumToShape(grad, b.shape, op === "sub" ? -1 : 1) : null,
      ];
    }
    const [da, db] = binaryGradients(backend, op, a, b, grad, l);
    return [
      da === null ? null : sumToShape(da, a.shape),
      db === null ? null : sumToShape(db, b.shape),
    ];
  });
}

/** Whether `v` (a float32 value) is 0, ±infinity's reciprocal, or a normal float32. */
function isNormalOrZero(v: number): boolean {
  return v === 0 || (Number.isFinite(v) && Math.abs(v) >= 2 ** -126);
}

/** Dispatches a binary op whose operands may be numbers to sl_binary or to sl_unary. */
function binary(op: BinaryName, a: Operand, b: Operand): Tensor {
  const aIsTensor = a instanceof Tensor, bIsTensor = b instanceof Tensor;
  if (aIsTensor && bIsTensor) return binaryTensors(op, a, b);
  if (!aIsTensor && !bIsTensor) {
    checkScalar(a, `${op}() a`);
    checkScalar(b, `${op}() b`);
    throw new TypeError(`${op}() needs at least one Tensor operand, got two numbers`);
  }
  if (aIsTensor) {
    const s = checkScalar(b, `${op}() b`);
    switch (op) {
      case "add":
        return unaryOp(a, "affine", op, 1, s);
      case "sub":
        return unaryOp(a, "affine", op, 1, -s);
      case "mul":
        return unaryOp(a, "affine", op, s, -0);
      case "div": {
        // x · (1/s) is within an ulp of x / s only while s and 1/s are normal float32s; past
        // that (|s| below ~1.2e-38 or above ~8.5e37) divide by s itself.
        const r = Math.fround(1 / s);
        if (isNormalOrZero(Math.fround(s)) && isNormalOrZero(r)) {
          return unaryOp(a, "affine", op, r, -0);
        }
        return binaryTensors(op, a, full([], s, { device: a.device }));
      }
    }
  }
  const s = checkScalar(a, `${op}() a`);
  const t = b as Tensor;
  switch (op) {
    case "add":
      return unaryOp(t, "affine", op, 1, s);
    case "sub":
      return unaryOp(t, "affine", op, -1, s);
    case "mul":
      return unaryOp(t, "affine", op, s, -0);
    case "div":
      return unaryOp(t, "reciprocal", op, s, 0);
  }
}

/**
 * `a + b` element-wise with broadcasting; either operand may be a number.
 * @example
 * ```ts
 * import { add, tensor } from "@sparselinear/sparselinear";
 * const y = add(tensor([[1, 2], [3, 4]]), tensor([10, 20]));
 * console.log(y.toNested()); // [[11, 22], [13, 24]]
 * ```
 */
export function add(a: Operand, b: Operand): Tensor {
  return binary("add", a, b);
}

/**
 * `a - b` element-wise with broadcasting; either operand may be a number.
 * @example
 * ```ts
 * import { sub, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(sub(1, tensor([1, 2])).data)); // [0, -1]
 * ```
 */
export function sub(a: Operand, b: Operand): Tensor {
  return binary("sub", a, b);
}

/**
 * `a * b` element-wise with broadcasting; either operand may be a number.
 * @example
 * ```ts
 * import { mul, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(mul(tensor([1, 2]), tensor([3, 4])).data)); // [3, 8]
 * ```
 */
export function mul(a: Operand, b: Operand): Tensor {
  return binary("mul", a, b);
}

/**
 * `a / b` element-wise with broadcasting; either operand may be a number.
 * @example
 * ```ts
 * import { div, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(div(tensor([1, 2]), 2).data)); // [0.5, 1]
 * ```
 */
export function div(a: Operand, b: Operand): Tensor {
  return binary("div", a, b);
}

/** `x * s` for a number `s` (one native call). */
export function mulScalar(x: Tensor, s: number): Tensor {
  checkTensor(x, "mulScalar() x");
  return unaryOp(x, "affine", "mulScalar", checkScalar(s, "mulScalar() s"), -0);
}

/** `-x`. */
export function neg(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "neg() x"), "neg", "neg");
}

/** `e^x` element-wise. */
export function exp(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "exp() x"), "exp", "exp");
}

/** Natural logarithm element-wise (NaN below 0, -Infinity at 0). */
export function log(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "log() x"), "log", "log");
}

/** `|x|` element-wise (gradient 0 at 0). */
export function abs(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "abs() x"), "abs", "abs");
}

/** Square root element-wise. */
export function sqrt(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "sqrt() x"), "sqrt", "sqrt");
}

/** `x * x` element-wise. */
export function square(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "square() x"), "square", "square");
}

/**
 * `x ^ exponent` element-wise for a number `exponent`.
 * @example
 * ```ts
 * import { pow, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(pow(tensor([2, 3]), 2).data)); // [4, 9]
 * ```
 */
export function pow(x: Tensor, exponent: number): Tensor {
  checkTensor(x, "pow() x");
  return unaryOp(x, "pow", "pow", checkScalar(exponent, "pow() exponent"), 0);
}
