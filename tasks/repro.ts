/**
 * `deno task repro --budget=smoke|small|medium|full [--only=ID,ID] [--seeds=0,1,2]
 *  [--results=DIR] [--run.dir=DIR] [--data.name=fashion-mnist] [--data.root=DIR]
 *  [--run.backend=auto] [--run.threads=0] [--no-figures] [--quiet]`
 * `deno task repro --budget=B --tables-only [--results=DIR] [--run.dir=DIR]`
 * `deno task repro --budget=B --list [--only=...] [--seeds=...]`
 *
 * Pre-trains the runs of the paper's Tables 1, 2 and 4 (and probes a
 * random-init encoder), evaluates them (linear probe, kNN, fine-tune when the
 * budget has one, attention on the object, cost), and for every finished
 * (run, seed) writes a record file `<results>/records/<id>-s<seed>.json`
 * (default results root `results/<budget>`; run folders under `--run.dir`,
 * default `runs/repro-<budget>`). After each one it rebuilds
 * `<results>/results.json`, `tables.md`, `tables.csv` and figures from all
 * record files plus the finished run folders. Re-running continues where it
 * stopped.
 *
 * - `--only` / `--seeds`: run a part (the selected runs, with these seeds).
 * - `--tables-only`: train nothing; rebuild the results from the record files
 *   (e.g. copied in from other machines) and whatever run folders exist.
 * - `--list`: print the selected `id seed` pairs, one per line, and exit.
 *
 * See results/README.md for the record format, parts and merging.
 */
import { parseArgs } from "node:util";
import {
  budgetOf,
  parseSeeds,
  planTodo,
  rebuildTables,
  reproRuns,
  runRepro,
} from "../lib/repro/mod.ts";

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      budget: { type: "string", default: "smoke" },
      "data.name": { type: "string", default: "fashion-mnist" },
      "data.root": { type: "string", default: "" },
      "run.dir": { type: "string" },
      "run.backend": { type: "string", default: "auto" },
      "run.threads": { type: "string", default: "0" },
      results: { type: "string" },
      only: { type: "string" },
      seeds: { type: "string" },
      "tables-only": { type: "boolean", default: false },
      list: { type: "boolean", default: false },
      "no-figures": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
    strict: true,
  });
  try {
    const budget = budgetOf(v.budget!).name;
    const dir = v["run.dir"] ?? `runs/repro-${budget}`;
    const only = v.only?.split(","), seeds = parseSeeds(v.seeds);
    const figures = !v["no-figures"];
    if (v.list) {
      for (const t of planTodo(reproRuns(budgetOf(budget)), { only, seeds })) {
        console.log(`${t.run.id} ${t.seed}`);
      }
    } else if (v["tables-only"]) {
      await rebuildTables({ budget, results: v.results, dir, dataName: v["data.name"], figures });
    } else {
      await runRepro({
        budget,
        dir,
        results: v.results,
        data: { name: v["data.name"]!, root: v["data.root"]! },
        backend: v["run.backend"]!,
        threads: Number(v["run.threads"]),
        only,
        seeds,
        figures,
        quiet: v.quiet,
      });
    }
  } catch (e) {
    const name = (e as Error).name;
    if (e instanceof RangeError || name === "ConfigError" || name === "DataError") {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
