/**
 * The saliency study (issue 16): where the CLS attention lands over pre-training, per knob
 * (`STUDY_KNOBS`, each changed alone from MAE random) and per map (`cls-last`, `rollout`), from
 * the attention monitor's points in the records (`attnCurve`, on the first training images)
 * and the test-set attention on the object; and the pre-training comparison (linear, kNN,
 * wall-clock) of the strategies at the default setting.
 *
 * Written by every rebuild of a budget that monitors attention: `results/saliency/results.json`,
 * `tables.md` and `maps.png` (the kept maps of each row's lowest monitored seed, on the same
 * images). Besides the knobs, the rows include the untrained encoder and the runs that mask by
 * the map (`strategy=...`).
 *
 * @module
 */
import type { Raster } from "../data/mod.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { imageGridPng, overlay } from "../viz/mod.ts";
import { type ReproBudget, STUDY_KNOBS } from "./plan.ts";
import type { ReproRecord } from "./records.ts";
import {
  formatPaired,
  mean,
  type OneWayAnova,
  oneWayAnova,
  pairedDifference,
  sampleSd,
  tQuantile,
  welchDifference,
} from "./stats.ts";

/** The MAE random run whose settings every knob changes one of. */
export const STUDY_DEFAULT_ID = "mae-random-75";

/** The runs at the default setting the pre-training comparison reads. */
const PRETRAIN_IDS: Readonly<Record<string, { strategy: string; saliency: string | null }>> = {
  "mae-random-75": { strategy: "none", saliency: null },
  "mae-attn-75": { strategy: "attn-mask", saliency: "cls-last" },
  "mae-amt-45-40": { strategy: "amt", saliency: "cls-last" },
  "mae-amt-rollout-45-40": { strategy: "amt", saliency: "rollout" },
};

/** One measured map of one run: `results/saliency/results.json` `variants[]`. */
export interface StudyVariant {
  /** `cls-last`, `rollout`, or `registers` (the CLS map of an encoder with registers). */
  saliency: string;
  knob: string;
  seed: number;
  /** Finished epochs. */
  epoch: number;
  /** `train:N` (the monitor's first N training images) or `test` (every test image). */
  images: string;
  attnOnObject: number;
  objectArea: number;
}

/** One pre-training run at the default setting: `pretrain[]`. */
export interface StudyPretrain {
  /** `amt.strategy` (`none` = random masking). */
  strategy: string;
  saliency: string | null;
  knob: string;
  seed: number;
  linear: number | null;
  knn: number | null;
  /** Wall-clock, saliency passes included. */
  pretrainSeconds: number;
  saliencySeconds: number;
}

/** `results/saliency/results.json`. */
export interface StudyResults {
  budget: string;
  variants: StudyVariant[];
  pretrain: StudyPretrain[];
}

/** The knob a record's run changes (`default` for the MAE random run), or null. */
export function knobOfRecord(id: string): string | null {
  if (id === STUDY_DEFAULT_ID) return "default";
  return STUDY_KNOBS.find((k) => k.id === id)?.knob ?? OTHER_ROWS[id]?.knob ?? null;
}

/**
 * The other rows of the study: the untrained encoder (where the map starts), the masking runs at
 * the default setting, whose monitored maps say where the attention lands when training masks by
 * it (what AMT's premise needs to hold while it runs), and SimMIM at its own recipe (another
 * method: every patch reaches the encoder).
 */
const OTHER_ROWS: Readonly<Record<string, { knob: string; why: string }>> = {
  "random-init": { knob: "untrained", why: "the same encoder at initialisation, not pre-trained" },
  "mae-attn-75": { knob: "strategy=attn-mask", why: "MAE masking the most attended 75 %" },
  "mae-amt-45-40": { knob: "strategy=amt", why: "MAE+AMT 45/40 (cls-last map)" },
  "mae-amt-rollout-45-40": { knob: "strategy=amt+rollout", why: "MAE+AMT 45/40, rollout map" },
  "simmim-random-60": {
    knob: "method=simmim",
    why: "SimMIM random 60 % with its own recipe (all patches in the encoder)",
  },
  "simmim-attn-60": {
    knob: "method=simmim+attn-mask",
    why: "SimMIM masking the most attended 60 %",
  },
  "simmim-amt-44-26": { knob: "method=simmim+amt", why: "SimMIM+AMT 44/26 (cls-last map)" },
  "simmim-amt-33-50": { knob: "method=simmim+amt 33/50", why: "SimMIM+AMT 33/50 (cls-last map)" },
};

/** Every row of the study in table order: the default, the knobs, the others. */
const ROW_ORDER: readonly { knob: string; why: string }[] = [
  { knob: "default", why: "MAE random, the budget's settings" },
  ...STUDY_KNOBS.map((k) => ({ knob: k.knob, why: k.why })),
  ...Object.values(OTHER_ROWS),
];

/** The study's rows from a budget's records. */
export function studyResults(records: readonly ReproRecord[], budget: ReproBudget): StudyResults {
  const variants: StudyVariant[] = [];
  const pretrain: StudyPretrain[] = [];
  const train = `train:${budget.monitorImages ?? 256}`;
  for (const r of records) {
    const knob = knobOfRecord(r.id);
    if (knob !== null) {
      const cls = knob.startsWith("registers=") ? "registers" : "cls-last";
      for (const p of r.attnCurve) {
        const row = { knob, seed: r.seed, epoch: p.epoch, images: train, objectArea: p.objectArea };
        variants.push({ saliency: cls, ...row, attnOnObject: p.attnOnObject });
        if (p.attnOnObjectRollout !== undefined) {
          variants.push({ saliency: "rollout", ...row, attnOnObject: p.attnOnObjectRollout });
        }
      }
      if (r.attnOnObject !== null && r.objectArea !== null) {
        variants.push({
          saliency: cls,
          knob,
          seed: r.seed,
          epoch: budget.epochs,
          images: "test",
          attnOnObject: r.attnOnObject,
          objectArea: r.objectArea,
        });
      }
    }
    const p = PRETRAIN_IDS[r.id];
    if (p) {
      pretrain.push({
        ...p,
        knob: "default",
        seed: r.seed,
        linear: r.linear,
        knn: r.knn,
        pretrainSeconds: r.pretrainSeconds,
        saliencySeconds: r.saliencySeconds,
      });
    }
  }
  return { budget: budget.name, variants, pretrain };
}

/** The map a variant reads: an encoder with registers has its CLS map under `registers`. */
const mapOf = (v: StudyVariant) => v.saliency === "registers" ? "cls-last" : v.saliency;

/**
 * Each seed's excess over the object's area of one row's `source` map after the last epoch, on
 * the monitor's training images or the test images.
 */
function lastExcess(
  s: StudyResults,
  budget: ReproBudget,
  knob: string,
  source: string,
  images: "train" | "test",
): number[] {
  return s.variants.filter((v) =>
    v.knob === knob && v.epoch === budget.epochs && mapOf(v) === source &&
    (v.images === "test") === (images === "test")
  ).map((v) => v.attnOnObject - v.objectArea);
}

const row = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
const pct = (v: number, d = 1) => (Number.isFinite(v) ? (100 * v).toFixed(d) : "-");

/** `mean ± sd (s0 v0, s1 v1, ...)` in points, or `v (s2)` for one run; "-" for none. */
function meanSd(vs: readonly StudyVariant[]): string {
  const xs = vs.map((v) => v.attnOnObject - v.objectArea);
  const each = vs.map((v, i) => `s${v.seed} ${pct(xs[i])}`).join(", ");
  if (xs.length === 0) return "-";
  if (xs.length === 1) return `${pct(xs[0])} (s${vs[0].seed})`;
  return `${pct(mean(xs))} ± ${pct(sampleSd(xs))} (${each})`;
}

/** The one-sample 95 % t interval of the mean, in points, or "-" under 2 values. */
function interval(xs: readonly number[]): string {
  if (xs.length < 2) return "-";
  const half = tQuantile(0.975, xs.length - 1) * sampleSd(xs) / Math.sqrt(xs.length);
  return `[${pct(mean(xs) - half)}, ${pct(mean(xs) + half)}]`;
}

/** Markdown for `results/saliency/tables.md`. */
export function renderStudyTables(s: StudyResults, budget: ReproBudget): string {
  const out: string[] = [];
  const knobs = ROW_ORDER.map((r) => r.knob);
  const epochs = [...new Set(s.variants.filter((v) => v.images !== "test").map((v) => v.epoch))]
    .sort((a, b) => a - b);
  out.push(
    `# Does the attention find the object? (budget \`${budget.name}\`)`,
    "",
    "MAE random masking with one setting changed at a time (the knobs), then the runs that mask " +
      "by the map at the default setting (`strategy=...`), and another method at its own recipe " +
      "(`method=...`). The share of each map's mass on the " +
      "object (patches' pixels above 0.1), minus the object's area (what a uniform map scores), " +
      `in points: mean ± sd over seeds, on the first ${
        budget.monitorImages ?? 256
      } training images after each monitored epoch, and on all test images after the last; ` +
      "each seed's value in brackets. Above 0: the map prefers the object. Intervals: one-sample 95 % t intervals of the " +
      "excess over the seeds.",
    "",
  );
  const sources = [
    ...new Set(s.variants.map(mapOf)),
  ];
  for (const source of sources) {
    out.push(
      `## ${
        source === "cls-last"
          ? "CLS map of the last block (`cls-last`, AMT's)"
          : "Attention rollout (`rollout`)"
      }`,
      "",
      row([
        "knob",
        ...epochs.map((e) => `epoch ${e}`),
        `epoch ${budget.epochs} interval`,
        `test, epoch ${budget.epochs}`,
        "object area",
        "seeds above area",
      ]),
      row(Array(epochs.length + 5).fill("---")),
    );
    for (const knob of knobs) {
      const rows = s.variants.filter((v) => v.knob === knob && mapOf(v) === source);
      if (rows.length === 0) continue;
      const excess = (vs: StudyVariant[]) => vs.map((v) => v.attnOnObject - v.objectArea);
      const at = (e: number) => rows.filter((v) => v.images !== "test" && v.epoch === e);
      const last = at(budget.epochs);
      const test = rows.filter((v) => v.images === "test");
      const area = [...last, ...test].map((v) => v.objectArea);
      const above = last.filter((v) => v.attnOnObject > v.objectArea).length;
      out.push(row([
        knob,
        ...epochs.map((e) => meanSd(at(e))),
        interval(excess(last)),
        meanSd(test),
        area.length ? pct(mean(area)) : "-",
        last.length ? `${above}/${last.length}` : "-",
      ]));
    }
    out.push("");
  }
  // each knob against the default at the last epoch (different runs: Welch's interval)
  const lastOf = (knob: string) => lastExcess(s, budget, knob, "cls-last", "train");
  const base = lastOf("default");
  const vs = ROW_ORDER.slice(1).map((k) => ({ knob: k.knob, why: k.why, xs: lastOf(k.knob) }))
    .filter((k) => k.xs.length > 0);
  if (vs.length > 0 && base.length > 0) {
    out.push(
      `## Each knob against the default (\`cls-last\`, epoch ${budget.epochs}, training images)`,
      "",
      "| knob | what it changes | excess − default's (points) | Welch 95 % interval | reading |",
      "|---|---|---|---|---|",
    );
    for (const k of vs) {
      const d = welchDifference(k.xs, base);
      out.push(
        `| ${k.knob} | ${k.why} | ${pct(d.mean)} | ${
          Number.isFinite(d.lo) ? `[${pct(d.lo)}, ${pct(d.hi)}]` : "-"
        } | ${d.reading} |`,
      );
    }
    out.push("");
  }
  const anovas = (["cls-last", "rollout"] as const).flatMap((source) =>
    (["train", "test"] as const).flatMap((images) => {
      const a = knobAnova(s, budget, source, images);
      return a ? [{ source, images, a }] : [];
    })
  );
  if (anovas.length > 0) {
    out.push(
      `## Seed against knob (MAE random: the default and each knob, epoch ${budget.epochs})`,
      "",
      "One-way analysis of variance of the excess over the MAE random rows, each run at its " +
        "seeds: whether the knobs move the map more than the seeds do, and the share of the " +
        "spread that lies between the knobs (ICC(1); 0 when the knobs differ no more than seeds).",
      "",
      "| map | images | rows (runs) | F (df) | p | share between knobs | reading |",
      "|---|---|---|---|---|---|---|",
    );
    for (const { source, images, a: r } of anovas) {
      out.push(row([
        source,
        images === "test" ? "test" : `train:${budget.monitorImages ?? 256}`,
        `${r.groups} (${r.n})`,
        `${r.f.toFixed(2)} (${r.df1}, ${r.df2})`,
        r.p.toFixed(3),
        `${pct(r.betweenShare, 0)} %`,
        r.p < 0.05 ? "the knobs differ" : "no difference between knobs detected",
      ]));
    }
    out.push("");
  }
  if (s.pretrain.length > 0) {
    out.push(
      "## Pre-training at the default setting",
      "",
      "Linear probe and kNN in %, mean ± sd over seeds; against MAE random the paired " +
        'difference over the seeds both have, with its 95 % t interval ("no difference ' +
        'detected" when it contains 0).',
      "",
      row([
        "strategy",
        "map",
        "seeds",
        "linear %",
        "kNN %",
        "linear − random",
        "kNN − random",
        "pre-train min (saliency min)",
      ]),
      row(Array(8).fill("---")),
    );
    const arm = (p: StudyPretrain) => `${p.strategy} ${p.saliency ?? "-"}`;
    const arms = [...new Set(s.pretrain.map(arm))]
      .sort((a, b) =>
        Number(b.startsWith("none")) - Number(a.startsWith("none")) || a.localeCompare(b)
      );
    const bySeed = (ps: StudyPretrain[], k: "linear" | "knn") =>
      new Map(ps.filter((p) => p[k] !== null).map((p) => [p.seed, p[k] as number]));
    const random = s.pretrain.filter((p) => p.strategy === "none");
    const f = (xs: (number | null)[]) => {
      const v = xs.filter((x): x is number => x !== null);
      return v.length
        ? `${mean(v).toFixed(2)}${v.length > 1 ? ` ± ${sampleSd(v).toFixed(2)}` : ""}`
        : "-";
    };
    const vsRandom = (ps: StudyPretrain[], k: "linear" | "knn") =>
      ps[0].strategy === "none"
        ? "-"
        : formatPaired(pairedDifference(bySeed(ps, k), bySeed(random, k)), 2);
    for (const name of arms) {
      const ps = s.pretrain.filter((p) => arm(p) === name);
      out.push(row([
        ps[0].strategy,
        ps[0].saliency ?? "-",
        ps.map((p) => p.seed).join(", "),
        f(ps.map((p) => p.linear)),
        f(ps.map((p) => p.knn)),
        vsRandom(ps, "linear"),
        vsRandom(ps, "knn"),
        `${(mean(ps.map((p) => p.pretrainSeconds)) / 60).toFixed(1)} (${
          (mean(ps.map((p) => p.saliencySeconds)) / 60).toFixed(1)
        })`,
      ]));
    }
    out.push("");
  }
  return out.join("\n");
}

/**
 * The one-way ANOVA of the map's excess over the object's area after the last epoch across the
 * MAE random rows (the default and each knob; the other rows change the method or the masking),
 * on the monitor's training images or the test images; null under 2 rows or without seeds to
 * spare.
 */
export function knobAnova(
  s: StudyResults,
  budget: ReproBudget,
  source: "cls-last" | "rollout",
  images: "train" | "test",
): OneWayAnova | null {
  const rows = ["default", ...STUDY_KNOBS.map((k) => k.knob)];
  const groups = rows.map((knob) => lastExcess(s, budget, knob, source, images))
    .filter((g) => g.length > 0);
  const n = groups.reduce((a, g) => a + g.length, 0);
  return groups.length >= 2 && n > groups.length ? oneWayAnova(groups) : null;
}

/** The kept maps of one run (`eval/attention_monitor.json`, copied to `<results>/maps/`). */
export interface RunMaps {
  knob: string;
  seed: number;
  grid: number;
  entries: { epoch: number; source: string; maps: number[][] }[];
}

/**
 * `maps.png`: rows per knob (its lowest seed), the `cls-last` and `rollout` maps of the last
 * monitored epoch over the same training images (`images`, the first ones the monitor scored).
 */
export async function writeStudyMaps(
  path: string,
  runs: readonly RunMaps[],
  images: readonly Raster[],
): Promise<boolean> {
  const order = ROW_ORDER.map((r) => r.knob);
  const rows: Raster[][] = [];
  const labels: string[] = [];
  for (const knob of order) {
    const mine = runs.filter((r) => r.knob === knob).sort((a, b) => a.seed - b.seed)[0];
    if (!mine) continue;
    for (const source of ["cls-last", "rollout"]) {
      const last = mine.entries.filter((e) => e.source === source).at(-1);
      if (!last) continue;
      const g = mine.grid;
      rows.push(
        images.slice(0, last.maps.length).map((img, i) =>
          overlay(
            img,
            { data: Float32Array.from(last.maps[i]), height: g, width: g, channels: 1 },
            0.45,
          )
        ),
      );
      labels.push(`${knob}, ${source} (s${mine.seed}, ep ${last.epoch})`);
    }
  }
  if (rows.length === 0) return false;
  rows.unshift([...images.slice(0, rows[0].length)]);
  labels.unshift("image");
  await imageGridPng(path, rows, {
    rowLabels: labels,
    scale: 4,
    title: "Last-block CLS attention and rollout per knob, same training images",
  });
  return true;
}

/** Writes `results.json` and `tables.md` of the study into `dir`. */
export async function writeStudy(
  dir: string,
  records: readonly ReproRecord[],
  budget: ReproBudget,
): Promise<StudyResults> {
  const s = studyResults(records, budget);
  await writeFileAtomic(`${dir}/results.json`, JSON.stringify(s, null, 1) + "\n");
  await writeFileAtomic(`${dir}/tables.md`, renderStudyTables(s, budget));
  return s;
}
