/**
 * Tables and figures of `deno task repro`, made from record files alone
 * (see records.ts): ours next to the paper's, every number with several seeds
 * as mean ± sample sd and each seed's value, every comparison as the paired
 * difference over the seeds both runs have with a 95 % Student-t interval.
 *
 * @module
 */
import { readMetrics } from "../run/metrics.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { barChart, lineChart, scatterChart, svgToPng } from "../viz/mod.ts";
import { PAPER, planTodo, type ReproBudget, reproRuns } from "./plan.ts";
import type { ReproRecord } from "./records.ts";
import { formatPaired, formatSeeds, mean, pairedDifference, summarize } from "./stats.ts";

const DATASET_TITLES: Record<string, string> = {
  "fashion-mnist": "Fashion-MNIST",
  cifar10: "CIFAR-10",
  cifar100: "CIFAR-100",
  stl10: "STL-10",
  "tiny-imagenet": "Tiny ImageNet",
  imagenet: "ImageNet-1K",
};

const MAE_BASE = "mae-random-75";
const SIMMIM_BASE = "simmim-random-60";
const MASKFEAT_BASE = "maskfeat-random-40";
const TABLE1 = [
  "random-init",
  MAE_BASE,
  "mae-attn-75",
  "mae-amt-45-40",
  SIMMIM_BASE,
  "simmim-attn-60",
  "simmim-amt-44-26",
  // not in the paper: its columns show "-" (PAPER.table1 has no entry)
  MASKFEAT_BASE,
  "maskfeat-amt-30-26",
];
const TABLE2 = [SIMMIM_BASE, "simmim-attn-60", "simmim-amt-44-26", "simmim-amt-33-50"];
const TABLE4 = [
  MAE_BASE,
  "mae-attn-75",
  "mae-random-throw-45-40",
  "mae-throw-low-75-10",
  "mae-throw-low-45-40",
  "mae-amt-45-40",
];

type NumKey = "linear" | "knn" | "finetune" | "attnOnObject" | "objectArea";

/** What the tables are made from. */
export interface TablesInput {
  budget: ReproBudget;
  /** One record per (id, seed). */
  records: readonly ReproRecord[];
  /** Dataset name when the records do not say (default fashion-mnist). */
  dataName?: string;
}

function num(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function ratio(mask: number, thr: number): string {
  return `${Math.round(mask * 100)}/${Math.round(thr * 100)}`;
}

/** Helpers over the records of one budget. */
class View {
  /** Row labels of the plan's runs (a record's own label for other ids). */
  readonly labels: Map<string, string>;
  constructor(readonly records: readonly ReproRecord[], budget?: ReproBudget) {
    this.labels = new Map(budget ? reproRuns(budget).map((r) => [r.id, r.label]) : []);
  }
  of(id: string): ReproRecord[] {
    return this.records.filter((r) => r.id === id).sort((a, b) => a.seed - b.seed);
  }
  has(id: string): boolean {
    return this.records.some((r) => r.id === id);
  }
  bySeed(id: string, key: NumKey, scale = 1): Map<number, number> {
    const m = new Map<number, number>();
    for (const r of this.of(id)) {
      const v = r[key];
      if (v !== null && Number.isFinite(v)) m.set(r.seed, scale * v);
    }
    return m;
  }
  /** `mean ± sd (each seed)` of one measure. */
  cell(id: string, key: NumKey, scale = 1): string {
    return formatSeeds(summarize(this.bySeed(id, key, scale)));
  }
  /** Paired difference of `id` against `base` on one measure. */
  delta(id: string, base: string, key: NumKey, scale = 1): string {
    if (id === base) return "baseline";
    if (!this.has(base)) return "-";
    return formatPaired(
      pairedDifference(this.bySeed(id, key, scale), this.bySeed(base, key, scale)),
    );
  }
  seeds(id: string): string {
    return this.of(id).map((r) => r.seed).join(", ");
  }
  /** masked/thrown/visible, one entry per distinct value over the seeds. */
  counts(id: string): string {
    const cs = [
      ...new Set(
        this.of(id).map((r) =>
          r.masked === null ? "-" : `${r.masked}/${r.thrown ?? "-"}/${r.visible ?? "-"}`
        ),
      ),
    ];
    return cs.length === 0 ? "-" : cs.join("; ");
  }
  /** Mean wall-clock and mean counted FLOPs over seeds, relative to `base`'s means. */
  cost(id: string, base: string): string {
    const rs = this.of(id), bs = this.of(base);
    if (rs.length === 0 || bs.length === 0) return "-";
    if (rs.every((r) => r.strategy === "random-init")) return "- (no pre-training)";
    const rel = (f: (r: ReproRecord) => number) => {
      const b = mean(bs.map(f));
      return b > 0 ? (mean(rs.map(f)) / b).toFixed(2) : "-";
    };
    // wall-clock ratios across machines or backends compare the machines, not the methods
    const machines = new Set(
      [...rs, ...bs].map((r) => `${r.backend}/${r.threads}/${r.precision}`),
    );
    const note = machines.size > 1 ? " (different backends)" : "";
    return `${rel((r) => r.pretrainSeconds)}${note} / ${rel((r) => r.flops)}`;
  }
  label(id: string): string {
    return this.labels.get(id) ?? this.of(id)[0]?.label ?? id;
  }
  ratio(id: string): string {
    const r = this.of(id)[0];
    return !r || r.strategy === "random-init" ? "-" : ratio(r.maskRatio, r.throwRatio);
  }
}

function baseOf(id: string): string {
  if (id.startsWith("maskfeat")) return MASKFEAT_BASE;
  return id.startsWith("simmim") ? SIMMIM_BASE : MAE_BASE;
}

/** The (run, seed) pairs of the budget's plan (default seeds) that have no record. */
export function missingRuns(budget: ReproBudget, records: readonly ReproRecord[]): string[] {
  const have = new Set(records.map((r) => `${r.id}-s${r.seed}`));
  return planTodo(reproRuns(budget))
    .map((t) => `${t.run.id}-s${t.seed}`)
    .filter((k) => !have.has(k));
}

function tally(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} (${n})`).join(", ");
}

/** Markdown for `tables.md`. */
export function renderTables(input: TablesInput): string {
  const { budget: b } = input;
  const v = new View(input.records, b);
  const dataName = input.records[0]?.dataset || input.dataName || "fashion-mnist";
  const ds = DATASET_TITLES[dataName] ?? dataName;
  const paperDs = PAPER.table1[MAE_BASE][dataName] ? dataName : "imagenet";
  const paperTitle = DATASET_TITLES[paperDs];
  const L: string[] = [];
  const table = (head: string[], rows: string[][]) => {
    if (rows.length === 0) {
      L.push("_No records for this table yet._", "");
      return;
    }
    L.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`);
    for (const r of rows) L.push(`| ${r.join(" | ")} |`);
    L.push("");
  };
  L.push(`# AMT reproduction: budget \`${b.name}\`, ${ds}`, "");
  const probe = `Linear probe ${plural(b.probeEpochs, "epoch")} on ${
    b.probeTrain || "all"
  } training images`;
  L.push(
    `Budget \`${b.name}\`: ${b.note}. Pre-training: ${b.preset}, ${b.limit || "all"} training ` +
      `images, MAE ${b.epochs} / SimMIM and MaskFeat ${b.simmimEpochs} epochs, batch ` +
      `${b.batchSize}, AMT ` +
      `random masking for ${plural(b.warmup, "epoch")} then saliency every ${b.interval}. ` +
      `${probe}, top-1 ` +
      `on ${b.probeTest || "all"} test images; ` +
      (b.finetuneEpochs > 0
        ? `fine-tuning ${plural(b.finetuneEpochs, "epoch")} on ${
          b.finetuneTrain || "all"
        } images (base ` +
          `lr ${b.finetuneBaseLr}), top-1 on ${b.finetuneTest || "all"} test images.`
        : "no fine-tuning (fine-tune columns show -)."),
    "",
  );
  const missing = missingRuns(b, input.records);
  L.push(
    `**Records:** ${input.records.length} (run, seed) pair(s)` +
      (missing.length > 0
        ? `; **partial**, missing ${missing.length}: ${missing.join(", ")}.`
        : `, the whole plan.`) +
      (input.records.length > 0
        ? ` Commits: ${
          tally(input.records.map((r) => (r.gitCommit ?? "unknown").slice(0, 12)))
        }. ` +
          `Backends: ${
            tally(input.records.map((r) => `${r.backend || "?"} ${r.threads || "?"}t`))
          }.`
        : ""),
    "",
  );
  L.push(
    "**How to read:** top-1 accuracies in %. A cell with several seeds is mean ± sd (sample " +
      "sd, n-1) and each seed's value in seed order. Δ is the paired difference to the " +
      "baseline (MAE random for the MAE rows and random init, SimMIM random for the SimMIM " +
      "rows, MaskFeat random for the MaskFeat rows) over the seeds both runs have, in points, " +
      "with a 95 % paired-t confidence " +
      'interval (Student t on n-1 degrees of freedom): "no difference detected" when the ' +
      'interval contains 0, "higher" / "lower" otherwise; with one common seed, the difference ' +
      'alone ("n=1, no interval"). masked/thrown/visible: patches per image in the last ' +
      "pre-training epoch. Cost: mean wall-clock / mean counted FLOPs over seeds (saliency " +
      "passes included), relative to MAE random; a wall-clock ratio between records of " +
      'different backends, thread counts or precisions is marked "(different backends)". ' +
      `The paper's numbers are ViT-B/16 pre-trained ` +
      `on ImageNet-1K (${paperTitle} columns in Table 1, Tiny ImageNet in Tables 2 and 4): ` +
      "compare directions and gaps, not absolute values. The paper has no MaskFeat rows: " +
      'their paper columns are "-".',
    "",
  );

  L.push(`## Table 1: top-1 % (linear / fine-tune), ${ds}`, "");
  table(
    [
      "run",
      "mask/throw",
      "seeds",
      "linear %",
      "Δ linear (paired t, 95 %)",
      "kNN %",
      "fine-tune %",
      "Δ fine-tune (paired t, 95 %)",
      "masked/thrown/visible",
      "cost vs MAE random (wall / FLOPs)",
      `paper linear (${paperTitle})`,
      `paper fine-tune (${paperTitle})`,
    ],
    TABLE1.filter((id) => v.has(id)).map((id) => {
      const p = PAPER.table1[id]?.[paperDs] ?? [null, null];
      return [
        `${v.label(id)} (\`${id}\`)`,
        v.ratio(id),
        v.seeds(id),
        v.cell(id, "linear"),
        v.delta(id, baseOf(id), "linear"),
        v.cell(id, "knn"),
        v.cell(id, "finetune"),
        v.delta(id, baseOf(id), "finetune"),
        v.counts(id),
        v.cost(id, MAE_BASE),
        num(p[0]),
        num(p[1]),
      ];
    }),
  );

  L.push(`## Table 2: SimMIM top-1 % and relative pre-training cost, ${ds}`, "");
  table(
    [
      "run",
      "mask/throw",
      "seeds",
      "linear %",
      "Δ linear vs SimMIM random",
      "fine-tune %",
      "Δ fine-tune vs SimMIM random",
      "masked/thrown/visible",
      "cost vs SimMIM random (wall / FLOPs)",
      "cost vs MAE random (wall / FLOPs)",
      "paper fine-tune (Tiny IN)",
      "paper cost",
    ],
    TABLE2.filter((id) => v.has(id)).map((id) => {
      const p = PAPER.table2[id];
      return [
        `${v.label(id)} (\`${id}\`)`,
        v.ratio(id),
        v.seeds(id),
        v.cell(id, "linear"),
        v.delta(id, SIMMIM_BASE, "linear"),
        v.cell(id, "finetune"),
        v.delta(id, SIMMIM_BASE, "finetune"),
        v.counts(id),
        v.cost(id, SIMMIM_BASE),
        v.cost(id, MAE_BASE),
        num(p?.top1),
        p ? p.cost.toFixed(2) : "-",
      ];
    }),
  );

  L.push(`## Table 4: MAE ablation, top-1 % (${ds})`, "");
  table(
    [
      "run",
      "strategy",
      "mask/throw",
      "seeds",
      "linear %",
      "Δ linear vs MAE random",
      "fine-tune %",
      "Δ fine-tune vs MAE random",
      "masked/thrown/visible",
      "cost vs MAE random (wall / FLOPs)",
      "paper fine-tune (Tiny IN)",
    ],
    TABLE4.filter((id) => v.has(id)).map((id) => [
      `${v.label(id)} (\`${id}\`)`,
      v.of(id)[0].strategy === "none" ? "random mask" : v.of(id)[0].strategy,
      v.ratio(id),
      v.seeds(id),
      v.cell(id, "linear"),
      v.delta(id, MAE_BASE, "linear"),
      v.cell(id, "finetune"),
      v.delta(id, MAE_BASE, "finetune"),
      v.counts(id),
      v.cost(id, MAE_BASE),
      num(PAPER.table4[id]),
    ]),
  );

  const ids = [...new Set([...TABLE1, ...TABLE2, ...TABLE4, ...v.records.map((r) => r.id)])]
    .filter((id) => v.has(id));
  L.push("## Attention on the object", "");
  L.push(
    "Share of the CLS-attention saliency that falls on the object (non-background pixels) of " +
      "the test images, in %, next to the object's area (what a uniform map scores); Δ in " +
      "points against the row's baseline.",
    "",
  );
  table(
    [
      "run",
      "seeds",
      "attention on object %",
      "Δ (paired t, 95 %)",
      "object area %",
      "masked/thrown/visible",
    ],
    ids.map((id) => [
      `${v.label(id)} (\`${id}\`)`,
      v.seeds(id),
      v.cell(id, "attnOnObject", 100),
      v.delta(id, baseOf(id), "attnOnObject", 100),
      v.cell(id, "objectArea", 100),
      v.counts(id),
    ]),
  );

  L.push("## Every record", "");
  table(
    [
      "run",
      "seed",
      "linear %",
      "kNN %",
      "fine-tune %",
      "attention on object %",
      "masked/thrown/visible",
      "pre-training min",
      "saliency min",
      "GFLOPs",
      "final loss",
      "commit",
      "backend",
      "date",
    ],
    v.records.map((r) => [
      r.id,
      String(r.seed),
      num(r.linear),
      num(r.knn),
      num(r.finetune),
      num(r.attnOnObject === null ? null : 100 * r.attnOnObject),
      r.masked === null ? "-" : `${r.masked}/${r.thrown}/${r.visible}`,
      (r.pretrainSeconds / 60).toFixed(1),
      (r.saliencySeconds / 60).toFixed(1),
      (r.flops / 1e9).toFixed(0),
      num(r.finalLoss, 4),
      (r.gitCommit ?? "-").slice(0, 12),
      `${r.backend || "-"} (${r.threads} thr)`,
      r.date.slice(0, 10),
    ]),
  );
  return L.join("\n");
}

/** CSV with one row per record. */
export function renderCsv(records: readonly ReproRecord[]): string {
  const cols = [
    "id",
    "seed",
    "method",
    "strategy",
    "maskRatio",
    "throwRatio",
    "linear",
    "knn",
    "finetune",
    "attnOnObject",
    "objectArea",
    "masked",
    "thrown",
    "visible",
    "pretrainSeconds",
    "saliencySeconds",
    "flops",
    "finalLoss",
    "gitCommit",
    "backend",
    "threads",
    "date",
  ] as const;
  const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const rows = records.map((x) => cols.map((c) => esc(String(x[c] ?? ""))).join(","));
  return [cols.join(","), ...rows].join("\n") + "\n";
}

/** Write `tables.md` and `tables.csv` into `dir`. */
export async function writeTables(dir: string, input: TablesInput): Promise<void> {
  await writeFileAtomic(`${dir}/tables.md`, renderTables(input));
  await writeFileAtomic(`${dir}/tables.csv`, renderCsv(input.records));
}

/**
 * `accuracy.png` (mean top-1 per run), `cost_vs_accuracy.png` (counted FLOPs relative to MAE
 * random vs mean top-1) and, when run folders are at hand (`runDirs`, keyed `<id>-s<seed>`),
 * `loss_curves.png` of each run's lowest seed.
 */
export async function writeReproFigures(
  dir: string,
  records: readonly ReproRecord[],
  runDirs: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  const v = new View(records);
  const ids = [...new Set(records.map((r) => r.id))];
  if (ids.length === 0) return;
  const meanOf = (id: string, key: NumKey) => {
    const s = summarize(v.bySeed(id, key));
    return s.n > 0 ? s.mean : null;
  };
  const series = [
    { name: "linear probe", values: ids.map((id) => meanOf(id, "linear")) },
    { name: "kNN", values: ids.map((id) => meanOf(id, "knn")) },
    { name: "fine-tune", values: ids.map((id) => meanOf(id, "finetune")) },
  ].filter((s) => s.values.some((x) => x !== null));
  if (series.length > 0) {
    await svgToPng(
      await barChart({
        title: "top-1 accuracy per run (ours, mean over seeds)",
        yLabel: "top-1 %",
        groups: ids,
        series,
      }),
      `${dir}/accuracy.png`,
    );
  }
  const base = v.of(MAE_BASE);
  const points = [];
  if (base.length > 0) {
    const baseFlops = mean(base.map((r) => r.flops));
    for (const id of ids) {
      const rs = v.of(id);
      const y = meanOf(id, "finetune") ?? meanOf(id, "linear");
      if (rs[0].strategy === "random-init" || y === null || !(baseFlops > 0)) continue;
      points.push({
        x: mean(rs.map((r) => r.flops)) / baseFlops,
        y,
        label: id,
        group: rs[0].method,
      });
    }
  }
  if (points.length > 0) {
    await svgToPng(
      await scatterChart({
        title: "pre-training cost vs accuracy",
        xLabel: "counted FLOPs relative to MAE random",
        yLabel: `${records.some((r) => r.finetune !== null) ? "fine-tune" : "linear"} top-1 %`,
        points,
      }),
      `${dir}/cost_vs_accuracy.png`,
    );
  }
  const lines = [];
  for (const id of ids) {
    const r = v.of(id)[0];
    const runDir = runDirs.get(`${id}-s${r.seed}`);
    if (!runDir || r.strategy === "random-init") continue;
    const steps = (await readMetrics(`${runDir}/metrics.jsonl`)).filter((m) => m.type === "step");
    lines.push({
      name: id,
      x: steps.map((m) => m.step as number),
      y: steps.map((m) => m.loss as number),
    });
  }
  if (lines.length > 0) {
    await svgToPng(
      await lineChart({
        title: "pre-training loss",
        xLabel: "step",
        yLabel: "loss",
        series: lines,
      }),
      `${dir}/loss_curves.png`,
    );
  }
}
