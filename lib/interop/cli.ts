/**
 * The three weights tasks (`deno task export | import | features`) as functions of a parsed
 * command line, so the task files stay thin.
 *
 * @module
 */
import { initBackend, usePrecision } from "../backend/mod.ts";
import {
  type CliArgs,
  type Config,
  ConfigError,
  type ResolvedConfig,
  switchOn,
} from "../config/mod.ts";
import { type ExportResult, exportRun } from "./export.ts";
import { writeFeatures, type WrittenFeatures } from "./features.ts";
import { importBase, type ImportResult, importWeights } from "./import.ts";
import { configBeside, readWeightsConfig, type WeightsConfig } from "./weights_config.ts";

/** The parsed command line a task function takes (`parseTask`'s result). */
export type InteropTaskArgs = Pick<ResolvedConfig, "config" | "extras" | "positional">;

function required(args: Pick<InteropTaskArgs, "extras">, flag: string, task: string): string {
  const v = args.extras[flag];
  if (!v || v === "true") {
    throw new ConfigError(
      `--${flag}=... is required (deno task ${task} --help lists the flags)`,
      { key: flag, source: "command line" },
    );
  }
  return v;
}

/** The run folder of `--ckpt`, else the first positional argument. */
function ckpt(args: InteropTaskArgs, task: string): string {
  return args.extras.ckpt ?? args.positional[0] ?? required(args, "ckpt", task);
}

/**
 * Takes `--config FILE` / `--config=FILE` out of a command line: for `import` it names the
 * weights' `config.json`, not a YAML experiment file as for the other tasks.
 */
export function takeConfigFlag(argv: readonly string[]): { config?: string; argv: string[] } {
  const rest: string[] = [];
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith("--config=")) config = a.slice("--config=".length);
    else if (a === "--config" && i + 1 < argv.length) config = argv[++i];
    else rest.push(a);
  }
  return { config, argv: rest };
}

/** `deno task export`: the run of `--ckpt` to `--out` (default `RUN_DIR/export`). */
export async function exportTask(args: InteropTaskArgs): Promise<ExportResult> {
  const runDir = ckpt(args, "export");
  await initBackend({ backend: "cpu", quiet: true }); // nothing is computed
  return await exportRun(runDir, { out: args.extras.out });
}

/** Where `import` reads the weights' config: `--config`, else `config.json` beside the weights. */
export interface ImportSource {
  /** `parseTask`'s `base`: the run config the weights' config gives (see `importBase`). */
  base(cli: CliArgs): Promise<Readonly<Config> | undefined>;
  /** The weights' config, once `base` has read it. */
  weightsConfig?: WeightsConfig;
}

/** The {@linkcode ImportSource} of `import`'s `--config` (undefined: beside the weights). */
export function importSource(configFile?: string): ImportSource {
  const source: ImportSource = {
    async base(cli) {
      const weights = required(cli, "weights", "import");
      source.weightsConfig = await readWeightsConfig(configFile ?? configBeside(weights));
      return importBase(source.weightsConfig);
    },
  };
  return source;
}

/** `deno task import`: `--weights` (+ its config) into the run folder `--out`. */
export async function importTask(
  args: InteropTaskArgs,
  source: ImportSource,
): Promise<ImportResult> {
  const weights = required(args, "weights", "import");
  const out = required(args, "out", "import").replace(/\/+$/, "");
  const weightsConfig = source.weightsConfig ??
    await readWeightsConfig(configBeside(weights));
  await initBackend({ backend: "cpu", quiet: true }); // the weights are only copied
  return await importWeights({
    weights,
    weightsConfig,
    out,
    config: args.config,
    force: switchOn(args.extras, "force"),
  });
}

/** `deno task features`: CLS features of `--ckpt` on a split into `--out` (`.npy`). */
export async function featuresTask(args: InteropTaskArgs): Promise<WrittenFeatures> {
  const runDir = ckpt(args, "features");
  const out = required(args, "out", "features");
  const count = (flag: string, fallback: number) => {
    const raw = args.extras[flag];
    const n = raw === undefined ? fallback : Number(raw);
    if (!(Number.isInteger(n) && n >= 0)) {
      throw new ConfigError(`--${flag}=${raw}: expected a whole number >= 0`, {
        key: flag,
        source: "command line",
      });
    }
    return n;
  };
  const { config } = args;
  await initBackend({ backend: config.run.backend, threads: config.run.threads, quiet: true });
  usePrecision(config.train.precision);
  return await writeFeatures({
    runDir,
    out,
    split: args.extras.split ?? "test",
    limit: count("limit", 0),
    batchSize: count("batchSize", 64) || 64,
    data: config.data,
  });
}
