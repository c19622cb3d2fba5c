/**
 * Command-line parsing and config resolution:
 * defaults → YAML file (`--config`, with `extends:`) → `--section.key=value`
 * overrides, then validated and deep-frozen.
 *
 * @module
 */

import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { type Config, defaultConfig } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { closest, closestWord } from "./_suggest.ts";
import { applyTree, type Locate } from "./_tree.ts";
import {
  checkFileValue,
  configKeys,
  type ConfigValue,
  deepFreeze,
  getConfigValue,
  keyKind,
  parseCliValue,
  selectKeys,
  setConfigValue,
  unknownKeyMessage,
} from "./keys.ts";
import { validateConfig } from "./validate.ts";
import { resolveCounting } from "../mim/counts.ts";

/** The parts of a command line. */
export interface CliArgs {
  /** The `--config FILE` path, as given. */
  configFile?: string;
  /** `--section.key` overrides, as raw strings, in command-line order (last wins). */
  overrides: Record<string, string>;
  /** Task-specific flags named in `extraKeys` (`--ckpt path` → `{ckpt: "path"}`). */
  extras: Record<string, string>;
  /** Arguments that are not flags, and everything after `--`. */
  positional: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
  /** One line per deprecated spelling used (`--backend is deprecated; use --run.backend`). */
  warnings: string[];
}

/** Options of {@linkcode parseCli}. */
export interface ParseCliOptions {
  /**
   * Non-dotted flags the task accepts besides `--config` and `--help`
   * (e.g. `["ckpt", "force"]`). Given without a value they read `"true"`.
   */
  extraKeys?: readonly string[];
  /**
   * Other spellings of config keys, flag name → dotted key (`{epochs: "probe.epochs"}`):
   * `--epochs=5` sets `probe.epochs`, `--no-knn` clears a boolean one. An alias is
   * looked up before the keys, so a task may give a dotted name its own meaning.
   */
  aliases?: Readonly<Record<string, string>>;
  /** Like `aliases`, but each use adds a line to `warnings`. */
  deprecated?: Readonly<Record<string, string>>;
  /**
   * The keys the command line may set: sections (`"probe"`) or dotted keys
   * (`"run.backend"`); default every key. Another key is refused, naming these.
   */
  keys?: readonly string[];
}

const BOOLEAN_WORDS = new Set(["true", "false", "1", "0", "yes", "no", "on", "off"]);

/**
 * Splits a command line into a config file, config overrides, task extras
 * and positional arguments. Keys are checked here; values are coerced by
 * {@linkcode resolveConfig}.
 *
 * Accepted: `--config FILE`, `--config=FILE`, `--a.b=value`, `--a.b value`,
 * `--a.b` (booleans: true), `--no-a.b` (booleans: false), `--help`, `-h`,
 * `--` (the rest is positional); and the task's `aliases` and `deprecated`
 * spellings of keys, restricted to its `keys` when given.
 *
 * @throws {ConfigError} for an unknown key or flag (with the closest match),
 *   or a flag missing its value.
 * @example
 * ```ts
 * const cli = parseCli(["--config", "configs/mae.yaml", "--train.epochs=5", "--no-data.flip"]);
 * if (cli.overrides["data.flip"] !== "false") throw new Error("--no- flag not read");
 * ```
 */
export function parseCli(argv: readonly string[], opts: ParseCliOptions = {}): CliArgs {
  const extraKeys = opts.extraKeys ?? [];
  for (const extra of extraKeys) {
    if (keyKind(extra) !== undefined || extra === "config" || extra === "help") {
      throw new Error(
        `parseCli: extra key "${extra}" collides with a config key or a built-in flag`,
      );
    }
  }
  const aliases = new Map<string, { key: string; deprecated: boolean }>();
  for (const [table, deprecated] of [[opts.aliases, false], [opts.deprecated, true]] as const) {
    for (const [name, key] of Object.entries(table ?? {})) {
      if (keyKind(key) === undefined) {
        throw new Error(`parseCli: alias "--${name}" names "${key}", which is not a config key`);
      }
      if (extraKeys.includes(name) || name === "config" || name === "help" || aliases.has(name)) {
        throw new Error(`parseCli: alias "--${name}" collides with another flag`);
      }
      aliases.set(name, { key, deprecated });
    }
  }
  const allowed = opts.keys ? new Set(selectKeys(opts.keys)) : undefined;
  const out: CliArgs = { overrides: {}, extras: {}, positional: [], help: false, warnings: [] };
  /** The config key a flag name sets (an alias first), or undefined. */
  const keyOf = (flag: string): string | undefined => {
    const alias = aliases.get(flag);
    if (alias) return alias.key;
    return keyKind(flag) !== undefined ? flag : undefined;
  };
  /** Refuses a key outside `opts.keys`; notes a deprecated spelling. */
  const accept = (flag: string, key: string): void => {
    if (allowed && !allowed.has(key)) {
      const shown = opts.keys!.map((p) => (p.includes(".") ? p : `${p}.*`)).join(", ");
      throw new ConfigError(
        `--${flag}: "${key}" is not a setting of this task; its command line takes ${shown} ` +
          `(run with --help to list them).`,
        { key, source: "command line" },
      );
    }
    if (aliases.get(flag)?.deprecated) {
      out.warnings.push(`--${flag} is deprecated; use --${key}`);
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (token === "-h") {
      out.help = true;
      continue;
    }
    if (!token.startsWith("--")) {
      if (token.length > 1 && token.startsWith("-") && !Number.isFinite(Number(token))) {
        throw new ConfigError(
          `unknown option "${token}" on the command line. Flags are long: --config FILE, ` +
            `--section.key=value, --help.`,
          { source: "command line" },
        );
      }
      out.positional.push(token);
      continue;
    }
    const body = token.slice(2);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    const next = i + 1 < argv.length ? argv[i + 1] : undefined;
    const nextIsValue = next !== undefined && !next.startsWith("--");
    /** The flag's value: inline, else the next token (consumed). */
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      if (nextIsValue) {
        i++;
        return next;
      }
      return undefined;
    };

    if (name === "help") {
      out.help = inline === undefined || !/^(false|0|no|off)$/i.test(inline);
      continue;
    }
    if (name === "config") {
      const file = takeValue();
      if (file === undefined || file === "") {
        throw new ConfigError(`--config needs a file path, e.g. --config configs/mae.yaml.`, {
          source: "command line",
        });
      }
      out.configFile = file;
      continue;
    }
    if (extraKeys.includes(name)) {
      out.extras[name] = takeValue() ?? "true";
      continue;
    }
    if (name.startsWith("no-") && inline === undefined && keyOf(name) === undefined) {
      const negated = name.slice(3);
      const negatedKey = keyOf(negated);
      if (negatedKey !== undefined && keyKind(negatedKey) === "boolean") {
        accept(negated, negatedKey);
        out.overrides[negatedKey] = "false";
        continue;
      }
      if (extraKeys.includes(negated)) {
        out.extras[negated] = "false";
        continue;
      }
      if (negatedKey !== undefined) {
        throw new ConfigError(
          `--${name}: "${negated}" is not a boolean key, so it cannot be negated; ` +
            `write --${negated}=VALUE instead.`,
          { key: negatedKey, source: "command line" },
        );
      }
    }
    const key = keyOf(name);
    if (key !== undefined) {
      accept(name, key);
      const kind = keyKind(key)!;
      let value: string | undefined;
      if (kind === "boolean") {
        if (inline !== undefined) value = inline;
        else if (nextIsValue && BOOLEAN_WORDS.has(next.toLowerCase())) value = argv[++i];
        else value = "true";
      } else {
        value = takeValue();
      }
      if (value === undefined) {
        const d = getConfigValue(defaultConfig(), key);
        throw new ConfigError(
          `--${name} needs a value, e.g. --${name}=${Array.isArray(d) ? d.join(",") : String(d)}.`,
          { key, source: "command line" },
        );
      }
      out.overrides[key] = value;
      continue;
    }
    // Unknown: name what was typed, with its value when one follows.
    const shown = inline !== undefined ? token : nextIsValue ? `${token} ${next}` : token;
    if (name.includes(".")) {
      throw new ConfigError(unknownKeyMessage(name, undefined, `the command line: ${shown}`), {
        key: name,
        source: "command line",
      });
    }
    const flags = ["config", "help", ...extraKeys, ...aliases.keys()];
    const guess = closest(name, [...flags, ...(allowed ?? configKeys())]);
    throw new ConfigError(
      `unknown option "--${name}" (from the command line: ${shown}). ` +
        (guess !== undefined ? `Did you mean "--${guess}"? ` : "") +
        `Options: ${flags.map((f) => "--" + f).join(", ")}; config keys are ` +
        `--section.key=value (run with --help to list them).`,
      { key: name, source: "command line" },
    );
  }
  return out;
}

/** Where each value of a resolved config came from. */
export interface ConfigSources {
  /** YAML files read, base first (the `extends` chain, then the `--config` file). */
  files: string[];
  /** Per dotted key: `"default"`, a file path, or `"command line"`. */
  keys: Record<string, string>;
}

/** Options of {@linkcode resolveConfig}. */
export interface ResolveOptions extends ParseCliOptions {
  /** The command line (e.g. `Deno.args`); default none. */
  argv?: readonly string[];
  /** Starting values instead of `defaultConfig()` (not modified). */
  base?: Readonly<Config>;
  /** A YAML file read before the command line's `--config` (as if given first). */
  file?: string;
  /**
   * Typed values set in code, after the files and before the command line:
   * `{"train.epochs": 2}` (the way a library builds a run's config without
   * writing argv strings). Checked like values read from a file.
   */
  set?: Readonly<Record<string, ConfigValue>>;
  /** What `sources` and messages call the `set` values (default `"code"`). */
  setSource?: string;
  /** Folder that relative `--config` paths and `configs/` are taken from (default `Deno.cwd()`). */
  cwd?: string;
}

/** A resolved, validated, deep-frozen config and the rest of the command line. */
export interface ResolvedConfig {
  config: Readonly<Config>;
  extras: Record<string, string>;
  positional: string[];
  /**
   * `--help` was given. The file and overrides are still applied (so help
   * can show the effective values), but the result is not validated: print
   * help and exit rather than run.
   */
  help: boolean;
  sources: ConfigSources;
  /** Deprecated spellings used on the command line, one line each (see {@linkcode parseCli}). */
  warnings: string[];
}

/**
 * Resolves the experiment config: defaults → YAML file → CLI overrides,
 * validated with {@linkcode validateConfig} and deep-frozen.
 *
 * @throws {ConfigError} for a missing or malformed file, an unknown key, a
 *   value of the wrong type, or a failed check.
 * @example
 * ```ts
 * const { config } = resolveConfig({ argv: ["--train.epochs=3"] });
 * if (config.train.epochs !== 3 || !Object.isFrozen(config.train)) throw new Error();
 * ```
 */
export function resolveConfig(opts: ResolveOptions): ResolvedConfig {
  const cwd = opts.cwd ?? Deno.cwd();
  const cli = parseCli(opts.argv ?? [], opts);
  const config: Config = structuredClone(opts.base ?? defaultConfig()) as Config;
  const sources: ConfigSources = { files: [], keys: {} };
  for (const key of configKeys()) sources.keys[key] = "default";

  for (const file of [opts.file, cli.configFile]) {
    if (file === undefined) continue;
    const path = isAbsolute(file) ? file : join(cwd, file);
    for (const layer of loadYamlLayers(resolve(path), cwd, [], undefined)) {
      applyTree(config, layer.tree, layer.label, layer.locate, sources.keys, ["extends"]);
      sources.files.push(layer.label);
    }
  }
  const setSource = opts.setSource ?? "code";
  for (const [key, value] of Object.entries(opts.set ?? {})) {
    setConfigValue(config, key, checkFileValue(key, value, setSource));
    sources.keys[key] = setSource;
  }
  for (const [key, text] of Object.entries(cli.overrides)) {
    setConfigValue(config, key, parseCliValue(key, text, `the command line: --${key}=${text}`));
    sources.keys[key] = "command line";
  }
  if (!cli.help) {
    validateConfig(config, sources.keys);
    resolveDerived(config, sources.keys);
  }
  return {
    config: deepFreeze(config),
    extras: cli.extras,
    positional: cli.positional,
    help: cli.help,
    sources,
    warnings: cli.warnings,
  };
}

/**
 * Settings whose default depends on others, resolved so that `config.json`
 * shows what the run uses: `amt.counting: auto` becomes the method's rule.
 */
function resolveDerived(config: Config, keys: Record<string, string>): void {
  if (config.amt.counting === "auto") {
    config.amt.counting = resolveCounting("auto", config.mim.method);
    keys["amt.counting"] = `${keys["amt.counting"]} (auto: mim.method ${config.mim.method})`;
  }
}

interface Layer {
  label: string;
  tree: unknown;
  locate: Locate;
}

/** A path as the user would write it: relative to `cwd` when inside it. */
function display(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

function listYaml(dir: string): string[] | undefined {
  try {
    const names: string[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile && /\.ya?ml$/i.test(entry.name)) names.push(entry.name);
    }
    return names.sort();
  } catch {
    return undefined;
  }
}

function missingFileError(path: string, cwd: string, extendedBy?: string): ConfigError {
  const shown = display(path, cwd);
  let message = `config file not found: "${shown}"` +
    (extendedBy ? ` (named by "extends:" in ${extendedBy})` : "") +
    (shown !== path ? ` (looked for ${path})` : "") + ".";
  const configsDir = join(cwd, "configs");
  const available = listYaml(configsDir);
  if (available === undefined) {
    message +=
      ` There is no configs/ folder in ${cwd}; give a path relative to ${cwd} or an absolute one.`;
  } else if (available.length === 0) {
    message += ` The configs/ folder in ${cwd} holds no .yaml files.`;
  } else {
    const base = path.slice(dirname(path).length + 1);
    const guess = closestWord(base, available);
    message += ` Files in configs/: ${available.join(", ")}.` +
      (guess !== undefined ? ` Did you mean "configs/${guess}"?` : "");
  }
  return new ConfigError(message, { source: shown });
}

/** Reads a YAML config and, first, the files it `extends`, base first. */
function loadYamlLayers(
  path: string,
  cwd: string,
  chain: readonly string[],
  extendedBy: string | undefined,
): Layer[] {
  const label = display(path, cwd);
  if (chain.includes(path)) {
    const cycle = [...chain, path].map((p) => display(p, cwd)).join(" → ");
    throw new ConfigError(`"extends:" cycle: ${cycle}. Remove one of these "extends:" lines.`, {
      source: label,
    });
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw missingFileError(path, cwd, extendedBy);
    if (err instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(`config path "${label}" is a folder; give a .yaml file inside it.`, {
        source: label,
      });
    }
    throw new ConfigError(`cannot read config file "${label}": ${(err as Error).message}`, {
      source: label,
    });
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, lineCounter });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const pos = first.linePos?.[0];
    const where = pos ? `${label}:${pos.line}:${pos.col}` : label;
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more)` : "";
    throw new ConfigError(
      `YAML syntax error in ${where}` +
        (pos && !first.message.includes("at line")
          ? ` (line ${pos.line}, column ${pos.col})`
          : "") +
        `${more}: ${first.message.trimEnd()}`,
      { source: where },
    );
  }
  let tree: unknown;
  try {
    tree = doc.toJS();
  } catch (err) {
    throw new ConfigError(`cannot read YAML in ${label}: ${(err as Error).message}`, {
      source: label,
    });
  }

  const locate: Locate = (keyPath) => {
    let node: unknown = doc.contents;
    let offset: number | undefined;
    for (const part of keyPath) {
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (!pair || !isScalar(pair.key) || !pair.key.range) break;
      offset = pair.key.range[0];
      node = pair.value;
    }
    if (offset === undefined) return label;
    const { line, col } = lineCounter.linePos(offset);
    return `${label}:${line}:${col}`;
  };

  const layer: Layer = { label, tree, locate };
  if (tree === null || typeof tree !== "object" || Array.isArray(tree) || !("extends" in tree)) {
    return [layer];
  }
  const parent = (tree as Record<string, unknown>).extends;
  if (typeof parent !== "string" || parent.trim() === "") {
    throw new ConfigError(
      `"extends" in ${locate(["extends"])} must be a file path relative to ${label}, ` +
        `e.g. "extends: base.yaml"; got ${JSON.stringify(parent)}.`,
      { key: "extends", source: locate(["extends"]) },
    );
  }
  const parentPath = resolve(dirname(path), parent);
  return [...loadYamlLayers(parentPath, cwd, [...chain, path], label), layer];
}
