/**
 * `--help` text: every config key with its default (or current value) and a
 * one-line description.
 *
 * @module
 */

import type { Config } from "./schema.ts";
import { defaultConfig } from "./schema.ts";
import { describeKey, getConfigValue, keyKind, selectKeys } from "./keys.ts";
import { CHOICES } from "./choices.ts";

/** Options of {@linkcode formatHelp}. */
export interface HelpOptions {
  /** First line, e.g. `"deno task pretrain [--config FILE] [--section.key=value ...]"`. */
  usage?: string;
  /** Task-specific flags and their descriptions (`{ckpt: "checkpoint to resume"}`). */
  extras?: Readonly<Record<string, string>>;
  /** More option rows, shown as given (`["--ckpt=RUN_DIR", "the run to evaluate"]`). */
  rows?: readonly (readonly [string, string])[];
  /** Values to show instead of the defaults (e.g. the resolved config). */
  values?: Readonly<Config>;
  /** The keys to list: sections or dotted keys (default all; see `ParseCliOptions.keys`). */
  keys?: readonly string[];
  /** Other spellings, flag → dotted key; shown after the key's description. */
  aliases?: Readonly<Record<string, string>>;
  /** Deprecated spellings, flag → dotted key; shown as such. */
  deprecated?: Readonly<Record<string, string>>;
  /** A paragraph shown under the usage line. */
  about?: string;
}

function show(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => +Number(v).toFixed(4)).join(",");
  if (value === "") return '""';
  return String(value);
}

/**
 * A readable list of all flags and config keys with their values and
 * descriptions, grouped by section.
 *
 * @example
 * ```ts
 * const text = formatHelp({ extras: { ckpt: "checkpoint to resume from" } });
 * if (!text.includes("--train.epochs=10")) throw new Error("missing key");
 * ```
 */
export function formatHelp(opts: HelpOptions = {}): string {
  const values = opts.values ?? defaultConfig();
  const rows: [string, string][] = [
    [
      "--config FILE",
      "YAML experiment config (configs/*.yaml); may start with `extends: base.yaml`",
    ],
    ["--help, -h", "show this help"],
  ];
  for (const [name, text] of Object.entries(opts.extras ?? {})) {
    rows.push([`--${name} VALUE`, text]);
  }
  for (const [flag, text] of opts.rows ?? []) rows.push([flag, text]);
  const spellings = (table: Readonly<Record<string, string>> | undefined, key: string) =>
    Object.entries(table ?? {}).filter(([, k]) => k === key).map(([flag]) => `--${flag}`);
  const keyRows = new Map<string, [string, string][]>();
  for (const key of selectKeys(opts.keys)) {
    const kind = keyKind(key)!;
    let text = describeKey(key);
    const choices = CHOICES[key];
    if (choices) text += `${text ? ": " : ""}${choices.join(" | ")}`;
    text += ` [${kind}]`;
    const also = spellings(opts.aliases, key);
    if (also.length > 0) text += ` (also ${also.join(", ")})`;
    const old = spellings(opts.deprecated, key);
    if (old.length > 0) text += ` (deprecated: ${old.join(", ")})`;
    const section = key.slice(0, key.indexOf("."));
    if (!keyRows.has(section)) keyRows.set(section, []);
    keyRows.get(section)!.push([
      `--${key}=${show(getConfigValue(values, key))}`,
      text,
    ]);
  }
  const width = Math.min(
    40,
    Math.max(...[...rows, ...[...keyRows.values()].flat()].map(([flag]) => flag.length)),
  );
  const line = ([flag, text]: [string, string]) => `  ${flag.padEnd(width)}  ${text}`;
  const out: string[] = [];
  if (opts.usage) out.push(`Usage: ${opts.usage}`, "");
  if (opts.about) out.push(opts.about, "");
  out.push("Options:", ...rows.map(line), "");
  out.push(
    `Config keys (${opts.values ? "current values" : "defaults"}; ` +
      "set them in the YAML file as `section: {key: value}` or here as --section.key=value):",
  );
  for (const [section, lines] of keyRows) {
    out.push("", `${section}:`, ...lines.map(line));
  }
  return out.join("\n") + "\n";
}
