/**
 * The one error type of the data readers.
 *
 * Every message names the file (or folder), what was expected (size, magic
 * number, layout) against what was found, and what to do about it.
 *
 * @module
 */

/**
 * A dataset file or folder that is missing, malformed or inconsistent.
 *
 * @example
 * ```ts
 * import { DataError } from "./errors.ts";
 * const e = new DataError("/d/train.bin", "expected 3073-byte records, found 10 bytes", "re-download it");
 * if (!e.message.includes("/d/train.bin")) throw new Error("message must name the file");
 * ```
 */
export class DataError extends Error {
  /** The file or folder at fault. */
  readonly path: string;

  /**
   * @param path the file or folder at fault (quoted first in the message)
   * @param problem what was expected against what was found
   * @param hint what to do about it
   */
  constructor(path: string, problem: string, hint: string, options?: ErrorOptions) {
    super(`${path}: ${problem}. ${hint}`, options);
    this.name = "DataError";
    this.path = path;
  }
}

/** `n` bytes as "1234 bytes (1.2 KB)" for size mismatch messages. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${n} bytes (${v.toFixed(1)} ${units[u]})`;
}
