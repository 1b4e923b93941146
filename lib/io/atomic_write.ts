/**
 * Atomic file writes: the bytes go to a temporary file in the target's directory, are flushed
 * to disk, and the temporary file is renamed over the target. A reader sees the old file or the
 * complete new one, never a partial one; a failure (unwritable directory, full disk, crash)
 * leaves no partial file behind.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { describeValue } from "../errors.ts";

/** Makes the temporary name: hidden, next to the target (same file system, so rename is atomic). */
function temporaryPath(path: string): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  const tag = `${random[0].toString(16)}${random[1].toString(16)}`;
  return join(dirname(path), `.${basename(path)}.${tag}.tmp`);
}

function describe(path: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(`Cannot write "${path}": ${reason}`, { cause: err });
}

/**
 * A TypeError unless `path` is a non-empty string (`what` names it in the message): Deno would
 * otherwise try to open "undefined" or "" and report a missing file.
 */
export function checkPath(path: unknown, what = "Path"): asserts path is string {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`${what} must be a non-empty string, got ${describeValue(path)}`);
  }
}

/**
 * Writes `chunks` one after the other to `path`, atomically (temp file + fsync + rename).
 * Errors name the path; on failure the temporary file is removed and `path` is untouched.
 */
export async function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  checkPath(path);
  const tmp = temporaryPath(path);
  let file: Deno.FsFile | undefined;
  let created = false; // the temporary name may be taken: never remove a file not ours
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    created = true;
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.length) done += await file.write(chunk.subarray(done));
    }
    await file.syncData();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    if (created) await Deno.remove(tmp).catch(() => {});
    throw describe(path, err);
  }
}

/** Synchronous `writeFileAtomic`. */
export function writeFileAtomicSync(path: string, chunks: Iterable<Uint8Array>): void {
  checkPath(path);
  const tmp = temporaryPath(path);
  let file: Deno.FsFile | undefined;
  let created = false;
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
    created = true;
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.length) done += file.writeSync(chunk.subarray(done));
    }
    file.syncDataSync();
    file.close();
    file = undefined;
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      if (created) Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw describe(path, err);
  }
}
