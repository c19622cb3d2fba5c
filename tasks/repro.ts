/**
 * `deno task repro --budget=smoke|small|full [--data.name=fashion-mnist] [--data.root=DIR]
 *  [--run.dir=DIR] [--run.backend=auto] [--only=id,id]`
 *
 * Pre-trains every run of the paper's Tables 1, 2 and 4 once, evaluates them
 * (linear probe, fine-tune, attention on the object, cost) and writes
 * `tables.md`, `tables.csv`, `results.json` and figures under `--run.dir`
 * (default `runs/repro-<budget>`). Re-running continues where it stopped.
 */
import { parseArgs } from "node:util";
import { runRepro } from "../lib/repro/mod.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      budget: { type: "string", default: "smoke" },
      "data.name": { type: "string", default: "fashion-mnist" },
      "data.root": { type: "string", default: "" },
      "run.dir": { type: "string" },
      "run.backend": { type: "string", default: "auto" },
      "run.threads": { type: "string", default: "0" },
      only: { type: "string" },
      quiet: { type: "boolean", default: false },
    },
    strict: true,
  });
  try {
    await runRepro({
      budget: values.budget!,
      dir: values["run.dir"] ?? `runs/repro-${values.budget}`,
      data: { name: values["data.name"]!, root: values["data.root"]! },
      backend: values["run.backend"]!,
      threads: Number(values["run.threads"]),
      only: values.only?.split(","),
      quiet: values.quiet,
    });
  } catch (e) {
    if (
      e instanceof RangeError || (e as Error).name === "ConfigError" ||
      (e as Error).name === "DataError"
    ) {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
