/**
 * Tables and figures of `deno task repro`: ours next to the paper's, every
 * number of ours read from a run folder.
 *
 * @module
 */
import { barChart, lineChart, scatterChart, svgToPng } from "../viz/mod.ts";
import { readMetrics } from "../train/metrics.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { PAPER } from "./plan.ts";
import type { ReproResults, RunResult } from "./run.ts";

const DATASET_TITLES: Record<string, string> = {
  "fashion-mnist": "Fashion-MNIST",
  cifar10: "CIFAR-10",
  cifar100: "CIFAR-100",
  stl10: "STL-10",
  "tiny-imagenet": "Tiny ImageNet",
  imagenet: "ImageNet-1K",
};

function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : (100 * v).toFixed(1);
}
function num(v: number | null | undefined): string {
  return v === null || v === undefined ? "-" : v.toFixed(1);
}
function ratio(mask: number, thr: number): string {
  return `${Math.round(mask * 100)}/${Math.round(thr * 100)}`;
}
function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function sd(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** The seed-0 result of a run id. */
function first(r: ReproResults, id: string): RunResult | undefined {
  return r.runs.find((x) =>
    x.id === id && x.seed === Math.min(...r.runs.filter((y) => y.id === id).map((y) => y.seed))
  );
}

function link(x: RunResult, dir: string): string {
  const rel = x.runDir.startsWith(dir + "/") ? x.runDir.slice(dir.length + 1) : x.runDir;
  return `[${x.id}](${rel})`;
}

/** Markdown for `tables.md`. */
export function renderTables(dir: string, r: ReproResults): string {
  const ds = DATASET_TITLES[r.data.name] ?? r.data.name;
  const paperDs = PAPER.table1["mae-random-75"][r.data.name] ? r.data.name : "imagenet";
  const paperTitle = DATASET_TITLES[paperDs];
  const lines: string[] = [];
  const b = r.budget;
  lines.push(`# AMT reproduction: budget \`${b.name}\`, ${ds}`);
  lines.push("");
  if (r.partial) {
    lines.push(
      `**Partial:** ${r.runs.length} run(s) finished so far; re-run the same command to continue.`,
    );
    lines.push("");
  }
  lines.push(
    `Budget \`${b.name}\`: ${b.note}. Pre-training: ${b.preset}, ${
      b.limit || "all"
    } training images, ` +
      `MAE ${b.epochs} / SimMIM ${b.simmimEpochs} epochs, batch ${b.batchSize}, AMT warm-up ${b.warmup} ` +
      `and saliency every ${b.interval} epochs. Linear probe ${b.probeEpochs} epochs on ` +
      `${b.probeTrain || "all"} images; fine-tuning ${b.finetuneEpochs} epochs on ${
        b.finetuneTrain || "all"
      } ` +
      `images (base lr ${b.finetuneBaseLr}); top-1 on ${b.finetuneTest || "all"} (fine-tune) / ${
        b.probeTest || "all"
      } (probe) test images. ` +
      `Backend ${r.backend}; total wall-clock ${
        (r.seconds / 60).toFixed(1)
      } min for this invocation. ` +
      `The paper's numbers are ViT-B/16 pre-trained on ImageNet-1K (${paperTitle} columns); ` +
      `compare directions and gaps, not absolute values.`,
  );
  lines.push("");
  lines.push(`## Table 1: top-1 % (linear / fine-tune), ${ds}`);
  lines.push("");
  lines.push(
    `| run | method | mask/throw | ours linear | ours fine-tune | paper linear (${paperTitle}) | paper fine-tune (${paperTitle}) |`,
  );
  lines.push("|---|---|---|---|---|---|---|");
  for (
    const id of [
      "mae-random-75",
      "mae-attn-75",
      "mae-amt-45-40",
      "simmim-random-60",
      "simmim-attn-60",
      "simmim-amt-44-26",
    ]
  ) {
    const x = first(r, id);
    if (!x) continue;
    const p = PAPER.table1[id]?.[paperDs] ?? [null, null];
    const label = `${x.method === "mae" ? "MAE" : "SimMIM"} ${
      x.strategy === "none" ? "random" : x.strategy
    }`;
    lines.push(
      `| ${link(x, dir)} | ${label} | ${ratio(x.maskRatio, x.throwRatio)} | ${pct(x.linprobe)} | ${
        pct(x.finetune)
      } | ${num(p[0])} | ${num(p[1])} |`,
    );
  }
  lines.push("");
  const base = first(r, "simmim-random-60");
  lines.push(`## Table 2: SimMIM fine-tune top-1 % and relative pre-training cost, ${ds}`);
  lines.push("");
  lines.push(
    "| run | mask/throw | ours fine-tune | ours cost (wall-clock) | ours cost (counted FLOPs) | paper fine-tune (Tiny IN) | paper cost |",
  );
  lines.push("|---|---|---|---|---|---|---|");
  for (const id of ["simmim-random-60", "simmim-attn-60", "simmim-amt-44-26", "simmim-amt-33-50"]) {
    const x = first(r, id);
    if (!x) continue;
    const p = PAPER.table2[id];
    const wall = base ? (x.pretrainSeconds / base.pretrainSeconds).toFixed(2) : "-";
    const fl = base ? (x.flops / base.flops).toFixed(2) : "-";
    lines.push(
      `| ${link(x, dir)} | ${ratio(x.maskRatio, x.throwRatio)} | ${
        pct(x.finetune)
      } | ${wall} | ${fl} | ${num(p?.top1)} | ${p ? p.cost.toFixed(2) : "-"} |`,
    );
  }
  lines.push("");
  lines.push(`## Table 4: MAE ablation, top-1 % (${ds})`);
  lines.push("");
  lines.push(
    "| run | strategy | mask/throw | ours linear | ours fine-tune | paper fine-tune (Tiny IN) |",
  );
  lines.push("|---|---|---|---|---|---|");
  for (
    const id of [
      "mae-random-75",
      "mae-attn-75",
      "mae-random-throw-45-40",
      "mae-throw-low-75-10",
      "mae-throw-low-45-40",
      "mae-amt-45-40",
    ]
  ) {
    const x = first(r, id);
    if (!x) continue;
    lines.push(
      `| ${link(x, dir)} | ${x.strategy === "none" ? "random mask" : x.strategy} | ${
        ratio(x.maskRatio, x.throwRatio)
      } | ${pct(x.linprobe)} | ${pct(x.finetune)} | ${num(PAPER.table4[id])} |`,
    );
  }
  lines.push("");
  const pair = ["mae-random-75", "mae-amt-45-40"].map((id) => r.runs.filter((x) => x.id === id));
  if (pair.every((p) => p.length > 0)) {
    lines.push("## Run-to-run spread (seeds)");
    lines.push("");
    lines.push(
      "| run | seeds | linear mean ± sd | fine-tune mean ± sd | kNN mean | pre-training min |",
    );
    lines.push("|---|---|---|---|---|---|");
    for (const p of pair) {
      const lin = p.map((x) => x.linprobe ?? NaN),
        ft = p.map((x) => x.finetune ?? NaN),
        kn = p.map((x) => x.knn ?? NaN);
      const f = (xs: number[]) =>
        `${pct(mean(xs))} ± ${Number.isFinite(sd(xs)) ? (100 * sd(xs)).toFixed(1) : "-"}`;
      lines.push(
        `| ${p[0].id} | ${p.map((x) => x.seed).join(", ")} | ${f(lin)} | ${f(ft)} | ${
          pct(mean(kn))
        } | ${(mean(p.map((x) => x.pretrainSeconds)) / 60).toFixed(1)} |`,
      );
    }
    lines.push("");
  }
  lines.push("## Attention on the object and cost");
  lines.push("");
  lines.push(
    "Share of the CLS-attention saliency that falls on the object (non-background pixels), next to the object's area (what a uniform map scores).",
  );
  lines.push("");
  lines.push(
    "| run | seed | attention on object % | object area % | pre-training min | saliency share % | GFLOPs | final loss |",
  );
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const x of r.runs) {
    lines.push(
      `| ${link(x, dir)} | ${x.seed} | ${pct(x.attentionOnObject)} | ${pct(x.objectArea)} | ${
        (x.pretrainSeconds / 60).toFixed(1)
      } | ${(100 * x.saliencySeconds / Math.max(x.pretrainSeconds, 1e-9)).toFixed(1)} | ${
        (x.flops / 1e9).toFixed(0)
      } | ${x.finalLoss.toFixed(4)} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

/** CSV with one row per run and seed. */
export function renderCsv(r: ReproResults): string {
  const cols = [
    "id",
    "seed",
    "method",
    "strategy",
    "maskRatio",
    "throwRatio",
    "linprobe",
    "knn",
    "finetune",
    "attentionOnObject",
    "objectArea",
    "pretrainSeconds",
    "saliencySeconds",
    "flops",
    "finalLoss",
    "runDir",
  ] as const;
  const rows = r.runs.map((x) => cols.map((c) => String(x[c] ?? "")).join(","));
  return [cols.join(","), ...rows].join("\n") + "\n";
}

/** Write `tables.md` and `tables.csv`. */
export async function writeTables(dir: string, r: ReproResults): Promise<void> {
  await writeFileAtomic(`${dir}/tables.md`, renderTables(dir, r));
  await writeFileAtomic(`${dir}/tables.csv`, renderCsv(r));
}

/** Accuracy bars, cost vs accuracy, loss curves. */
export async function writeReproFigures(dir: string, r: ReproResults): Promise<void> {
  const seed0 = r.runs.filter((x) => x === first(r, x.id));
  await svgToPng(
    await barChart({
      title: "top-1 accuracy per run (ours)",
      yLabel: "top-1 %",
      groups: seed0.map((x) => x.id),
      series: [
        {
          name: "linear probe",
          values: seed0.map((x) => (x.linprobe === null ? null : 100 * x.linprobe)),
        },
        {
          name: "fine-tune",
          values: seed0.map((x) => (x.finetune === null ? null : 100 * x.finetune)),
        },
      ],
    }),
    `${dir}/accuracy.png`,
  );
  const groups = [["mae", "mae-random-75"], ["simmim", "simmim-random-60"]] as const;
  const points = [];
  for (const [method, baseId] of groups) {
    const base = first(r, baseId);
    if (!base) continue;
    for (const x of seed0.filter((y) => y.method === method && y.finetune !== null)) {
      points.push({ x: x.flops / base.flops, y: 100 * x.finetune!, label: x.id, group: method });
    }
  }
  if (points.length > 0) {
    await svgToPng(
      await scatterChart({
        title: "pre-training cost vs fine-tune accuracy",
        xLabel: "counted FLOPs relative to random masking",
        yLabel: "fine-tune top-1 %",
        points,
      }),
      `${dir}/cost_vs_accuracy.png`,
    );
  }
  const series = [];
  for (const x of seed0) {
    const steps = (await readMetrics(`${x.runDir}/metrics.jsonl`)).filter((m) => m.type === "step");
    series.push({
      name: x.id,
      x: steps.map((m) => m.step as number),
      y: steps.map((m) => m.loss as number),
    });
  }
  await svgToPng(
    await lineChart({ title: "pre-training loss", xLabel: "step", yLabel: "loss", series }),
    `${dir}/loss_curves.png`,
  );
}
