/**
 * `metrics.jsonl`: one JSON object per line, appended. A torn last line (a
 * kill mid-write) is ignored when reading.
 *
 * @module
 */
import { writeFileAtomic } from "../util/fs.ts";

/** One logged record (step or epoch). */
export type MetricRecord = Record<string, number | string | boolean | null>;

/** Append records to a JSONL file (one write call per batch of lines). */
export async function appendMetrics(path: string, records: MetricRecord[]): Promise<void> {
  if (records.length === 0) return;
  const text = records.map((r) => JSON.stringify(r)).join("\n") + "\n";
  await Deno.writeTextFile(path, text, { append: true, create: true });
}

/** Read all complete records; lines that do not parse are skipped. */
export async function readMetrics(path: string): Promise<MetricRecord[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: MetricRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // torn line from an interrupted write
    }
  }
  return out;
}

/**
 * Keep only records up to global step `step` (used on resume, so steps redone
 * after the last checkpoint are not logged twice). Rewritten atomically.
 */
export async function truncateMetrics(path: string, step: number): Promise<MetricRecord[]> {
  const kept = (await readMetrics(path)).filter((r) =>
    typeof r.step !== "number" || r.step <= step
  );
  await writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return kept;
}
