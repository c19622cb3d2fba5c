/**
 * The command line of every `deno task`: one parser (the config's, with a
 * task's keys, aliases and flags), its `--help`, and one error handler.
 *
 * A task file is then three steps:
 *
 * ```ts ignore
 * const TASK: TaskSpec = { name: "knn", usage: "--ckpt=RUN_DIR [--knn.key=value ...]", keys: ["knn"] };
 * await runTask(async () => {
 *   const args = await parseTask(TASK, Deno.args);
 *   if (args.help) return console.log(taskHelp(TASK));
 *   await someExperiment(args.config);
 * });
 * ```
 *
 * @module
 */

import type { Config } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { type CliArgs, parseCli, resolveConfig, type ResolvedConfig } from "./load.ts";
import { formatHelp } from "./help.ts";
import { DataError } from "../data/errors.ts";

/** What a task's command line takes, and how its `--help` describes it. */
export interface TaskSpec {
  /** The task name: `deno task <name>`. */
  name: string;
  /** What follows `deno task <name>` on the usage line; several lines for several forms. */
  usage: string | readonly string[];
  /** A paragraph under the usage line. */
  about?: string;
  /**
   * The config keys the command line may set, as sections (`"probe"`) or dotted
   * keys (`"run.backend"`); default every key. `--help` lists these.
   */
  keys?: readonly string[];
  /** Other spellings of keys, flag → dotted key (`{epochs: "probe.epochs"}`). */
  aliases?: Readonly<Record<string, string>>;
  /** Old spellings that still work and print a one-line warning, flag → dotted key. */
  deprecated?: Readonly<Record<string, string>>;
  /**
   * Flags that are not config keys, with their help text: `"ckpt=RUN_DIR"` takes a
   * value, `"force"` is a switch (`--no-force` clears it). Read from `extras`.
   */
  flags?: Readonly<Record<string, string>>;
  /**
   * What a positional argument is (`"RUN_DIR"`), when the task takes one;
   * otherwise arguments that are not flags are refused.
   */
  positional?: string;
}

/** Options of {@linkcode parseTask}. */
export interface ParseTaskOptions {
  /**
   * The values the file and command line apply to, instead of the defaults (an
   * evaluation's base is the run's saved config). Called with the parsed command
   * line, so it may read a flag such as `--ckpt`; not called for `--help`.
   */
  base?: (cli: CliArgs) => Readonly<Config> | undefined | Promise<Readonly<Config> | undefined>;
  /** Folder that relative `--config` paths are taken from (default `Deno.cwd()`). */
  cwd?: string;
  /** Where deprecation warnings go (default `console.warn`). */
  warn?: (line: string) => void;
}

/** The flag names of a spec's `flags` (`"ckpt=RUN_DIR"` → `"ckpt"`). */
function flagNames(spec: TaskSpec): string[] {
  return Object.keys(spec.flags ?? {}).map((f) => f.split("=")[0]);
}

/**
 * Parses a task's command line with the config parser: defaults (or `base`) →
 * `--config FILE` → `--section.key=value` and the spec's aliases, restricted to
 * the spec's keys; validated and frozen unless `--help` was given.
 *
 * @throws {ConfigError} for an unknown or refused flag, a bad value or a failed check.
 * @example
 * ```ts
 * const spec = { name: "t", usage: "", keys: ["knn"], aliases: { T: "knn.temperature" } };
 * const { config } = await parseTask(spec, ["--T=0.1"]);
 * if (config.knn.temperature !== 0.1) throw new Error();
 * ```
 */
export async function parseTask(
  spec: TaskSpec,
  argv: readonly string[],
  opts: ParseTaskOptions = {},
): Promise<ResolvedConfig> {
  const cliOpts = {
    extraKeys: flagNames(spec),
    aliases: spec.aliases,
    deprecated: spec.deprecated,
    keys: spec.keys,
  };
  const cli = parseCli(argv, cliOpts);
  if (spec.positional === undefined && cli.positional.length > 0) {
    throw new ConfigError(
      `unexpected argument "${cli.positional[0]}": deno task ${spec.name} takes only flags ` +
        `(--section.key=value; run with --help to list them).`,
      { source: "command line" },
    );
  }
  const base = cli.help ? undefined : await opts.base?.(cli);
  const resolved = resolveConfig({ ...cliOpts, argv, base, cwd: opts.cwd });
  const warn = opts.warn ?? ((line: string) => console.warn(`warning: ${line}`));
  for (const line of resolved.warnings) warn(line);
  return resolved;
}

/**
 * A switch flag of `TaskSpec.flags` (`--force`, `--no-force`, `--force=yes`):
 * false when absent.
 *
 * @throws {ConfigError} for a value that is not a boolean word.
 */
export function switchOn(extras: Readonly<Record<string, string>>, name: string): boolean {
  const raw = extras[name];
  if (raw === undefined || /^(false|0|no|off)$/i.test(raw)) return false;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  throw new ConfigError(`--${name}=${raw}: expected true or false`, {
    key: name,
    source: "command line",
  });
}

/**
 * The `--help` text of a task: usage, its flags, and its config keys with
 * their values (`values`, default the defaults), descriptions and aliases.
 */
export function taskHelp(spec: TaskSpec, values?: Readonly<Config>): string {
  const forms = typeof spec.usage === "string" ? [spec.usage] : spec.usage;
  const usage = forms.map((u, i) => `${i === 0 ? "" : "       "}deno task ${spec.name} ${u}`)
    .join("\n");
  return formatHelp({
    usage,
    about: spec.about,
    rows: [
      ...(spec.positional ? [["ARG", spec.positional] as const] : []),
      ...Object.entries(spec.flags ?? {}).map(([flag, text]) => [`--${flag}`, text] as const),
    ],
    keys: spec.keys,
    aliases: spec.aliases,
    deprecated: spec.deprecated,
    values,
  });
}

/**
 * Whether an error is the user's to fix (a bad config or flag, bad data, a
 * value out of range, a run folder another process holds): printed as one
 * line, with no stack trace.
 */
export function isTaskError(e: unknown): e is Error {
  // RunLockedError lives in lib/run, above this package: matched by name
  return e instanceof ConfigError || e instanceof DataError || e instanceof RangeError ||
    (e instanceof Error && (e.name === "RunLockedError" || e.name === "DataError"));
}

/** Options of {@linkcode runTask} (for tests; tasks take the defaults). */
export interface RunTaskOptions {
  /** Where the one-line message goes (default `console.error`). */
  error?: (line: string) => void;
  /** How to exit (default `Deno.exit`). */
  exit?: (code: number) => void;
}

/**
 * Runs a task's body and is its one exit path: a {@linkcode isTaskError} error
 * prints `error: <message>` on stderr and exits with status 2; anything else
 * is rethrown (a bug: Deno prints the stack and exits with 1).
 *
 * @example
 * ```ts
 * let code = -1;
 * await runTask(() => {
 *   throw new RangeError("bad");
 * }, { error: () => {}, exit: (c) => void (code = c) });
 * if (code !== 2) throw new Error();
 * ```
 */
export async function runTask(
  main: () => unknown | Promise<unknown>,
  opts: RunTaskOptions = {},
): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (!isTaskError(e)) throw e;
    (opts.error ?? console.error)(`error: ${e.message}`);
    (opts.exit ?? Deno.exit)(2);
  }
}
