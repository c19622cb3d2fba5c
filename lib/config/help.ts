/**
 * `--help` text: every config key with its default (or current value) and a
 * one-line description.
 *
 * @module
 */

import type { Config } from "./schema.ts";
import { defaultConfig } from "./schema.ts";
import { configKeys, configSections, describeKey, getConfigValue, keyKind } from "./keys.ts";
import { CHOICES } from "./validate.ts";

/** Options of {@linkcode formatHelp}. */
export interface HelpOptions {
  /** First line, e.g. `"deno task pretrain [--config FILE] [--section.key=value ...]"`. */
  usage?: string;
  /** Task-specific flags and their descriptions (`{ckpt: "checkpoint to resume"}`). */
  extras?: Readonly<Record<string, string>>;
  /** Values to show instead of the defaults (e.g. the resolved config). */
  values?: Readonly<Config>;
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
  const keyRows = new Map<string, [string, string][]>();
  for (const section of configSections()) keyRows.set(section, []);
  for (const key of configKeys()) {
    const kind = keyKind(key)!;
    let text = describeKey(key);
    const choices = CHOICES[key];
    if (choices) text += `${text ? ": " : ""}${choices.join(" | ")}`;
    text += ` [${kind}]`;
    keyRows.get(key.slice(0, key.indexOf(".")))!.push([
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
