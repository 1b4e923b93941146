/**
 * The whole symbol table of libsparselinear.so, assembled from one file per kernel family.
 * Each entry carries its C signature as a comment in its family file.
 * @module
 */
import { coreSymbols } from "./symbols/core.ts";
import { denseSymbols } from "./symbols/dense.ts";
import { kwinnersSymbols } from "./symbols/kwinners.ts";
import { nnSymbols } from "./symbols/nn.ts";
import { optimSymbols } from "./symbols/optim.ts";
import { sparseSymbols } from "./symbols/sparse.ts";
import { topkSymbols } from "./symbols/topk.ts";
import { vectorSymbols } from "./symbols/vector.ts";

/** Every symbol the CPU library exports. */
export const symbols = {
  ...coreSymbols,
  ...denseSymbols,
  ...kwinnersSymbols,
  ...nnSymbols,
  ...optimSymbols,
  ...sparseSymbols,
  ...topkSymbols,
  ...vectorSymbols,
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbol table type. */
export type Symbols = typeof symbols;
