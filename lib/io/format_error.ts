/**
 * `FormatError`: a file (or byte buffer) is not what its format promises — a safetensors
 * checkpoint or an IDX data file that is truncated, corrupt or inconsistent.
 * @module
 */

/** A file's contents break its format; the message names the file and what is wrong. */
export class FormatError extends Error {
  /** Creates a format error with the given message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FormatError";
  }
}
