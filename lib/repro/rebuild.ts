/**
 * Rebuild a budget's `results.json`, `tables.md`, `tables.csv` and figures
 * from its record files plus whatever finished run folders exist: what
 * `deno task repro --tables-only` does, and what every finished (run, seed)
 * of a repro invocation triggers.
 *
 * @module
 */
import { writeFileAtomic } from "../util/fs.ts";
import { budgetOf, type ReproBudget, reproRuns } from "./plan.ts";
import {
  mergeRecords,
  readRecords,
  recordFileName,
  type ReproRecord,
  scanRunFolders,
  writeRecord,
} from "./records.ts";
import { writeReproFigures, writeTables } from "./tables.ts";
import { knobOfRecord, type RunMaps, writeStudy, writeStudyMaps } from "./study.ts";
import { type Dataset, openDataset, type Raster } from "../data/mod.ts";
import { MONITOR_MAP_IMAGES, readMonitorMaps } from "../pretrain/mod.ts";
import { dirname } from "node:path";

/** Options of {@link rebuildResults}. */
export interface RebuildOptions {
  budget: ReproBudget;
  /** Output root: `records/` is read (and completed), the rest written here. */
  resultsDir: string;
  /** A repro run folder whose `runs/<id>-s<seed>/` count too (optional). */
  runDir?: string;
  /** Dataset for the title when there are no records. */
  dataName?: string;
  /** Write the PNG figures (default true). */
  figures?: boolean;
  log?: (s: string) => void;
  /** Also log the run folders left out as unfinished (default true). */
  logUnfinished?: boolean;
}

/** `results.json`. */
export interface ResultsFile {
  budget: string;
  /** Sorted by id, then seed. */
  runs: ReproRecord[];
}

/** What {@link rebuildResults} found. */
export interface RebuildSummary {
  results: ResultsFile;
  /** Record files read. */
  fromRecords: number;
  /** Records written from run folders (new, or replacing a disagreeing record). */
  fromFolders: number;
  disagreements: number;
}

/**
 * Merge `<resultsDir>/records/*.json` with the finished run folders under `runDir` (a run
 * folder without a record, or disagreeing with it, writes its record), then write
 * `results.json`, `tables.md`, `tables.csv` and figures into `resultsDir`.
 */
export async function rebuildResults(o: RebuildOptions): Promise<RebuildSummary> {
  const log = o.log ?? (() => {});
  const files = await readRecords(`${o.resultsDir}/records`, o.budget.name, log);
  const folders = o.runDir
    ? await scanRunFolders(
      o.runDir,
      reproRuns(o.budget),
      o.budget,
      o.logUnfinished === false ? () => {} : log,
    )
    : [];
  const merged = mergeRecords(files, folders.map((f) => f.record), log);
  for (const r of merged.fromFolders) await writeRecord(o.resultsDir, r);
  const results: ResultsFile = { budget: o.budget.name, runs: merged.runs };
  await writeFileAtomic(`${o.resultsDir}/results.json`, JSON.stringify(results, null, 2) + "\n");
  await writeTables(o.resultsDir, {
    budget: o.budget,
    records: merged.runs,
    dataName: o.dataName,
  });
  if (o.figures !== false) {
    const dirs = new Map(folders.map((f) => [`${f.record.id}-s${f.record.seed}`, f.runDir]));
    await writeReproFigures(o.resultsDir, merged.runs, dirs);
  }
  if (o.budget.monitorEvery) {
    // the attention monitor's kept maps travel with the records (run folders do not)
    for (const f of folders) {
      const from = `${f.runDir}/eval/attention_monitor.json`;
      const to = `${o.resultsDir}/maps/${recordFileName(f.record.id, f.record.seed)}`;
      const text = await Deno.readTextFile(from).catch(() => null);
      if (text !== null) await writeFileAtomic(to, text);
    }
    const dir = studyDir(o.budget, o.resultsDir);
    await writeStudy(dir, merged.runs, o.budget);
    if (o.figures !== false) {
      await writeStudyFigure(dir, o.resultsDir, merged.runs, o.dataName, log);
    }
  }
  return {
    results,
    fromRecords: files.length,
    fromFolders: merged.fromFolders.length,
    disagreements: merged.disagreements.length,
  };
}

/**
 * Where a budget's saliency study goes: `results/saliency` beside the budget's results folder
 * for the budget the study is run at (`studyBeside`), else `<results>/saliency`.
 */
export function studyDir(budget: ReproBudget, resultsDir: string): string {
  return budget.studyBeside ? `${dirname(resultsDir)}/saliency` : `${resultsDir}/saliency`;
}

async function writeStudyFigure(
  dir: string,
  resultsDir: string,
  records: readonly ReproRecord[],
  dataName: string | undefined,
  log: (s: string) => void,
): Promise<void> {
  const runs: RunMaps[] = [];
  for (const r of records) {
    const knob = knobOfRecord(r.id);
    if (knob === null) continue;
    const file = await readMonitorMaps(`${resultsDir}/maps/${recordFileName(r.id, r.seed)}`);
    if (file) runs.push({ knob, seed: r.seed, grid: file.grid, entries: file.entries });
  }
  if (runs.length === 0) return;
  const name = records[0]?.dataset || dataName || "fashion-mnist";
  let ds: Dataset;
  try {
    ds = await openDataset({ name, root: "", split: "train", limit: MONITOR_MAP_IMAGES });
  } catch (e) {
    log(`${dir}/maps.png: not drawn (${name} did not open: ${(e as Error).message})`);
    return;
  }
  try {
    const images: Raster[] = [];
    for (let i = 0; i < Math.min(MONITOR_MAP_IMAGES, ds.length); i++) {
      images.push((await ds.get(i)).image);
    }
    await writeStudyMaps(`${dir}/maps.png`, runs, images);
  } finally {
    ds.close?.();
  }
}

/** Options of {@link rebuildTables}. */
export interface RebuildTablesOptions {
  budget: string;
  /** Records and tables root (default `results/<budget>`). */
  results?: string;
  /** Run folder root whose finished runs count too (skipped when missing). */
  dir?: string;
  dataName?: string;
  figures?: boolean;
  quiet?: boolean;
}

/** `--tables-only`: rebuild results.json, tables and figures; trains nothing. */
export async function rebuildTables(o: RebuildTablesOptions): Promise<RebuildSummary> {
  const budget = budgetOf(o.budget);
  const log = o.quiet ? () => {} : (s: string) => console.log(s);
  const resultsDir = o.results ?? `results/${budget.name}`;
  const r = await rebuildResults({
    budget,
    resultsDir,
    runDir: o.dir,
    dataName: o.dataName,
    figures: o.figures,
    log,
  });
  log(
    `${resultsDir}: ${r.results.runs.length} record(s) (${r.fromRecords} record file(s), ` +
      `${r.fromFolders} written from run folders, ${r.disagreements} disagreement(s)) → ` +
      `${resultsDir}/results.json, ${resultsDir}/tables.md`,
  );
  return r;
}
