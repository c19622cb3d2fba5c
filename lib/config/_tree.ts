/**
 * Applies a parsed YAML/JSON tree (any subset of the config tree) onto a
 * mutable config, checking every key and value.
 *
 * @module
 */

import type { Config } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import {
  checkFileValue,
  configSections,
  formatValue,
  keyKind,
  setConfigValue,
  unknownKeyMessage,
} from "./keys.ts";

/** Where a key path sits in its file (`configs/x.yaml:4:3`), or just the file. */
export type Locate = (path: readonly string[]) => string;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Sets every leaf of `tree` on `config`, recording `label` as the key's source.
 *
 * Accepts nested sections (`train: {epochs: 5}`) and flat dotted keys
 * (`train.epochs: 5`). Keys listed in `skip` at the top level are ignored
 * (e.g. `extends`, handled by the caller).
 */
export function applyTree(
  config: Config,
  tree: unknown,
  label: string,
  locate: Locate,
  sources: Record<string, string>,
  skip: readonly string[] = [],
): void {
  if (tree === null || tree === undefined) return;
  if (!isPlainObject(tree)) {
    throw new ConfigError(
      `${locate([])}: expected a mapping of sections (${configSections().join(":, ")}:), ` +
        `got ${formatValue(tree)}.`,
      { source: label },
    );
  }
  const sections = new Set(configSections());
  for (const [top, value] of Object.entries(tree)) {
    if (skip.includes(top)) continue;
    if (top.includes(".") && keyKind(top) !== undefined) {
      const where = locate([top]);
      setConfigValue(config, top, checkFileValue(top, value, where));
      sources[top] = label;
      continue;
    }
    if (!sections.has(top)) {
      const where = locate([top]);
      throw new ConfigError(unknownKeyMessage(top, value, where), { key: top, source: where });
    }
    if (value === null || value === undefined) continue; // "train:" with nothing under it
    if (!isPlainObject(value)) {
      const where = locate([top]);
      throw new ConfigError(
        `section "${top}" must be a mapping of keys (e.g. "${top}:" then indented "key: value" lines), ` +
          `got ${formatValue(value)} (from ${where}).`,
        { key: top, source: where },
      );
    }
    for (const [leaf, leafValue] of Object.entries(value)) {
      const key = `${top}.${leaf}`;
      const where = locate([top, leaf]);
      if (keyKind(key) === undefined) {
        throw new ConfigError(unknownKeyMessage(key, leafValue, where), { key, source: where });
      }
      setConfigValue(config, key, checkFileValue(key, leafValue, where));
      sources[key] = label;
    }
  }
}
