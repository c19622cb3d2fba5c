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
 * stopped. `--only` / `--seeds` run a part; `--tables-only` trains nothing and
 * rebuilds the results from the record files and whatever run folders exist;
 * `--list` prints the selected `id seed` pairs. See results/README.md.
 */
import { budgetOf, parseSeeds, parseTask, planTodo, rebuildTables, reproRuns } from "../mod.ts";
import { runRepro, runTask, switchOn, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "repro",
  usage: ["--budget=smoke|small|medium|full [flags]", "--budget=B --tables-only | --list"],
  keys: ["data.name", "data.root", "run.dir", "run.backend", "run.threads", "train.precision"],
  flags: {
    "budget=NAME": "smoke (default) | small | medium | full",
    "only=ID,ID": "only these run ids",
    "seeds=0,1,2": "these seeds for every selected run instead of each run's own",
    "results=DIR": "records and tables root (default results/<budget>)",
    "tables-only": "train nothing; rebuild the results from the records and run folders",
    "list": "print the selected `id seed` pairs and exit",
    "no-figures": "write no PNG figures",
    "quiet": "print less",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const { config, extras: x, help, sources } = await parseTask(TASK, Deno.args);
    if (help) return console.log(taskHelp(TASK));
    const budget = budgetOf(x.budget ?? "smoke").name;
    const dir = config.run.dir || `runs/repro-${budget}`;
    const only = x.only?.split(","), seeds = parseSeeds(x.seeds);
    const figures = !switchOn(x, "no-figures"), data = config.data;
    if (switchOn(x, "list")) {
      for (const t of planTodo(reproRuns(budgetOf(budget)), { only, seeds })) {
        console.log(`${t.run.id} ${t.seed}`);
      }
    } else if (switchOn(x, "tables-only")) {
      await rebuildTables({ budget, results: x.results, dir, dataName: data.name, figures });
    } else {
      await runRepro({
        budget,
        dir,
        results: x.results,
        data: { name: data.name, root: data.root },
        backend: config.run.backend,
        threads: config.run.threads,
        // the budget fixes the precision unless the command line says otherwise
        precision: sources.keys["train.precision"] === "default"
          ? undefined
          : config.train.precision,
        only,
        seeds,
        figures,
        quiet: switchOn(x, "quiet"),
      });
    }
  });
}
