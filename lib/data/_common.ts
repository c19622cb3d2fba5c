/**
 * Private helpers shared by the readers: file checks, index checks, lines.
 *
 * @module
 */

import { join } from "node:path";
import { DataError } from "./errors.ts";

/** True when `path` is an existing directory. */
export function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** True when `path` is an existing regular file. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Size in bytes of an existing file; DataError naming it otherwise. */
export function fileSize(path: string, hint: string): number {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) throw new DataError(path, "expected a regular file, found a folder", hint);
    return st.size;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(path, `expected a file, cannot stat it (${errText(e)})`, hint, {
      cause: e,
    });
  }
}

/** The whole file; DataError naming it when missing or unreadable. */
export function readBytes(path: string, hint: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    const what = e instanceof Deno.errors.NotFound
      ? "file not found"
      : `unreadable (${errText(e)})`;
    throw new DataError(path, `expected a dataset file, ${what}`, hint, { cause: e });
  }
}

/** Non-empty, trimmed lines of a small text file, or `null` when it does not exist. */
export function readLinesIfExists(path: string): string[] | null {
  if (!isFile(path)) return null;
  return new TextDecoder().decode(Deno.readFileSync(path)).split(/\r?\n/).map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Sorted names of the sub-directories of `dir` (empty when `dir` is missing). */
export function subDirs(dir: string): string[] {
  if (!isDir(dir)) return [];
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory || (e.isSymlink && isDir(join(dir, e.name)))) out.push(e.name);
  }
  return out.sort(byCodePoint);
}

/** Locale-independent string order, so class indices never depend on the machine. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RangeError quoting `i` unless `0 <= i < length` and `i` is an integer. */
export function checkIndex(i: number, length: number, name: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new RangeError(
      `${name}: index ${i} out of range; expected an integer in [0, ${length - 1}]`,
    );
  }
}

/** Error naming the split and listing the valid ones. */
export function badSplit(dataset: string, split: string, valid: readonly string[]): Error {
  return new Error(
    `${dataset}: unknown split "${split}"; expected one of ${
      valid.map((s) => `"${s}"`).join(", ")
    } (set --data.split)`,
  );
}

/** Message of an unknown thrown value. */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
