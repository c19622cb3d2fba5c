/**
 * Command-line plumbing of the evaluation tasks: `--ckpt=RUN_DIR` plus task
 * flags, with the run's saved config as the base that `--section.key=value`
 * overrides apply to (so `--run.backend=cpu` or `--data.root=...` work).
 *
 * @module
 */
import {
  type Config,
  ConfigError,
  loadSavedConfig,
  parseCli,
  resolveConfig,
} from "../config/mod.ts";

/** A parsed evaluation command line. */
export interface EvalArgs {
  /** `--ckpt` (or the first positional argument); "" when absent. */
  ckpt: string;
  /** The run's saved config with command-line overrides applied (defaults when no ckpt). */
  config: Readonly<Config>;
  /** Task flags, raw. */
  extras: Record<string, string>;
  /** Dotted keys given on the command line. */
  overridden: string[];
  help: boolean;
}

/** Parse an evaluation task's command line. */
export async function parseEvalArgs(
  argv: readonly string[],
  extraKeys: readonly string[],
): Promise<EvalArgs> {
  const keys = extraKeys.includes("ckpt") ? extraKeys : ["ckpt", ...extraKeys];
  const cli = parseCli(argv, { extraKeys: keys });
  const ckpt = cli.extras.ckpt ?? cli.positional[0] ?? "";
  if (cli.help) {
    return {
      ckpt,
      config: resolveConfig({ argv: [] }).config,
      extras: cli.extras,
      overridden: [],
      help: true,
    };
  }
  const base = ckpt ? await loadSavedConfig(ckpt) : undefined;
  const { config } = resolveConfig({ argv, base, extraKeys: keys });
  return { ckpt, config, extras: cli.extras, overridden: Object.keys(cli.overrides), help: false };
}

/** An integer flag (`--epochs=30`), `fallback` when absent; checks the range. */
export function intFlag(
  extras: Record<string, string>,
  key: string,
  fallback: number,
  min = 0,
): number {
  const raw = extras[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    throw new ConfigError(`--${key}=${raw}: expected an integer >= ${min}`, {
      key,
      source: "command line",
    });
  }
  return v;
}

/** A number flag (`--lr=0.1`), `fallback` when absent; must be finite and > `min` (exclusive). */
export function numFlag(
  extras: Record<string, string>,
  key: string,
  fallback: number | undefined,
  min = 0,
  inclusive = false,
): number | undefined {
  const raw = extras[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || (inclusive ? v < min : v <= min)) {
    throw new ConfigError(
      `--${key}=${raw}: expected a number ${inclusive ? ">=" : ">"} ${min}`,
      { key, source: "command line" },
    );
  }
  return v;
}

/** A boolean flag (`--force`, `--no-knn`, `--knn=false`). */
export function boolFlag(extras: Record<string, string>, key: string, fallback: boolean): boolean {
  const raw = extras[key];
  if (raw === undefined) return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`--${key}=${raw}: expected true or false`, { key, source: "command line" });
}

/** A choice flag. */
export function choiceFlag<T extends string>(
  extras: Record<string, string>,
  key: string,
  choices: readonly T[],
  fallback: T,
): T {
  const raw = extras[key];
  if (raw === undefined) return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(`--${key}=${raw}: expected one of ${choices.join(", ")}`, {
      key,
      source: "command line",
    });
  }
  return raw as T;
}

/** A pair flag (`--cropScale=0.08,1`). */
export function pairFlag(
  extras: Record<string, string>,
  key: string,
  fallback: [number, number],
): [number, number] {
  const raw = extras[key];
  if (raw === undefined) return fallback;
  const parts = raw.split(",").map(Number);
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0] > parts[1]) {
    throw new ConfigError(`--${key}=${raw}: expected two numbers a,b with a <= b`, {
      key,
      source: "command line",
    });
  }
  return [parts[0], parts[1]];
}
