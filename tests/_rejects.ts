/**
 * Assertions that a call is refused with exactly the documented error class and a message
 * naming what was wrong (tests/bad_input_test.ts, tests/rejected_calls_test.ts).
 * @module
 */
import assert from "node:assert/strict";

export type ErrorClass = new (...args: never[]) => Error;

/** Asserts `fn` throws exactly `cls` (not a subclass' sibling) with every pattern in its message. */
export function rejects(fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): Error {
  try {
    fn();
  } catch (err) {
    assert.equal((err as Error)?.constructor, cls, `expected exactly ${cls.name}, got ${err}`);
    return checkCaught(err, cls, patterns);
  }
  assert.fail("expected an error, but the call succeeded");
}

/** Asserts the promise `fn` returns rejects with `cls` (or a subclass) matching every pattern. */
export async function rejectsAsync(
  fn: () => Promise<unknown>,
  cls: ErrorClass,
  ...patterns: RegExp[]
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return checkCaught(err, cls, patterns);
  }
  assert.fail("expected an error, but the call succeeded");
}

function checkCaught(caught: unknown, cls: ErrorClass, patterns: RegExp[]): Error {
  assert.ok(
    caught instanceof cls,
    `expected ${cls.name}, got ${(caught as Error)?.name}: ${caught}`,
  );
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}
