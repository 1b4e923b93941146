/**
 * Assertions that a call is refused with exactly the documented error class and a message
 * naming what was wrong (tests/bad_input_test.ts, tests/rejected_calls_test.ts).
 * @module
 */
import assert from "node:assert/strict";

export type ErrorClass = new (...args: never[]) => Error;

/** Asserts `fn` throws exactly `cls` (not a subclass' sibling) with every pattern in its message. */
export function rejects(fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): Error {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== null, "expected an error, but the call succeeded");
  assert.ok(
    caught instanceof cls,
    `expected ${cls.name}, got ${(caught as Error)?.name}: ${caught}`,
  );
  assert.equal((caught as Error).constructor, cls, `expected exactly ${cls.name}`);
  for (const p of patterns) assert.match((caught as Error).message, p);
  return caught as Error;
}

export async function rejectsAsync(
  fn: () => Promise<unknown>,
  cls: ErrorClass,
  ...patterns: RegExp[]
): Promise<Error> {
  let caught: unknown = null;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== null, "expected an error, but the call succeeded");
  assert.ok(
    caught instanceof cls,
    `expected ${cls.name}, got ${(caught as Error)?.name}: ${caught}`,
  );
  for (const p of patterns) assert.match((caught as Error).message, p);
  return caught as Error;
}
