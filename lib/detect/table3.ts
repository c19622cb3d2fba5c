/**
 * The outputs of the detection experiment: the paper's Table 3 as Markdown and
 * CSV (our box / mask AP next to the paper's), the AP bar chart and the figure
 * of detections on held-out scenes.
 *
 * @module
 */
import { barChart, imageGridPng, svgToPng } from "../viz/mod.ts";
import type { Table3Backbone } from "./budgets.ts";
import { type CocoSample, openCocoDataset } from "./coco.ts";
import { formatAp } from "./coco_eval.ts";
import { drawDetections } from "./draw.ts";
import { decodeMask } from "./rle.ts";
import type { DetectRunResult } from "./train.ts";

/** One row of Table 3: a backbone and its detector's result. */
export interface Table3Row {
  /** The backbone's name (`detect.backbones`). */
  name: string;
  backbone: Table3Backbone;
  /** The pre-training run folder (null for random init). */
  backboneRun: string | null;
  result: DetectRunResult;
}

/** `to` relative to the folder `from` when inside it (links in `tables.md`). */
function relative(from: string, to: string): string {
  const a = from.replace(/\/+$/, "") + "/";
  return to.startsWith(a) ? to.slice(a.length) : to;
}

/** `tables.md` of the detect folder `dir`: the caption, one row per backbone, a note. */
export function renderTable3Markdown(
  dir: string,
  rows: readonly Table3Row[],
  caption: string,
): string {
  let md = `# Table 3: detection and instance segmentation\n\n${caption}\n\n`;
  md +=
    "| backbone | box AP | box AP50 | box AP75 | mask AP | mask AP50 | mask AP75 | box APs / APm | " +
    "paper COCO box / mask | paper LVIS box / mask | detector run | backbone run |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const f1 = (v: number) => v.toFixed(1);
  for (const { backbone: spec, backboneRun, result: r } of rows) {
    const run = relative(dir, r.runDir);
    const bb = backboneRun ? `[${backboneRun}](${relative(dir, backboneRun)})` : "—";
    const cells = [
      spec.label,
      formatAp(r.box.AP),
      formatAp(r.box.AP50),
      formatAp(r.box.AP75),
      formatAp(r.mask.AP),
      formatAp(r.mask.AP50),
      formatAp(r.mask.AP75),
      `${formatAp(r.box.APs)} / ${formatAp(r.box.APm)}`,
      `${f1(spec.paper.coco[0])} / ${f1(spec.paper.coco[1])}`,
      `${f1(spec.paper.lvis[0])} / ${f1(spec.paper.lvis[1])}`,
      `[${run}](${run}/results.json)`,
      bb,
    ];
    md += `| ${cells.join(" | ")} |\n`;
  }
  md += `\nAP is averaged over IoU 0.50:0.95 and the categories with ground truth; APl is n/a ` +
    `because no scene object exceeds 96² px. Figures: [figures/ap.png](figures/ap.png), ` +
    `[figures/predictions.png](figures/predictions.png).\n`;
  return md;
}

/** `tables.csv`: APs in %, the paper's numbers, steps, seconds and the run folders. */
export function renderTable3Csv(rows: readonly Table3Row[]): string {
  const head = "backbone,box_AP,box_AP50,box_AP75,box_APs,box_APm,mask_AP,mask_AP50,mask_AP75," +
    "paper_coco_box,paper_coco_mask,paper_lvis_box,paper_lvis_mask,steps,train_seconds,detector_run,backbone_run";
  const pct = (v: number) => (v < 0 ? "" : (100 * v).toFixed(2));
  const lines = rows.map(({ name, backbone: spec, backboneRun, result: r }) =>
    [
      name,
      pct(r.box.AP),
      pct(r.box.AP50),
      pct(r.box.AP75),
      pct(r.box.APs),
      pct(r.box.APm),
      pct(r.mask.AP),
      pct(r.mask.AP50),
      pct(r.mask.AP75),
      spec.paper.coco[0],
      spec.paper.coco[1],
      spec.paper.lvis[0],
      spec.paper.lvis[1],
      r.steps,
      r.trainSeconds.toFixed(1),
      r.runDir,
      backboneRun ?? "",
    ].join(",")
  );
  return [head, ...lines].join("\n") + "\n";
}

/** `ap.png`: box and mask AP per backbone, ours next to the paper's (COCO). */
export async function writeApFigure(
  path: string,
  rows: readonly Table3Row[],
  budget: string,
): Promise<void> {
  const v = (x: number) => (x < 0 ? null : 100 * x);
  const svg = await barChart({
    title: `Table 3: ours (scenes, ${budget}) vs paper (COCO)`,
    yFormat: ".1f",
    yLabel: "AP (%)",
    groups: rows.map(({ backbone }) => backbone.label),
    series: [
      { name: "box AP (ours)", values: rows.map(({ result }) => v(result.box.AP)) },
      { name: "mask AP (ours)", values: rows.map(({ result }) => v(result.mask.AP)) },
      { name: "box AP (paper, COCO)", values: rows.map(({ backbone }) => backbone.paper.coco[0]) },
      { name: "mask AP (paper, COCO)", values: rows.map(({ backbone }) => backbone.paper.coco[1]) },
    ],
    width: 760,
  });
  await svgToPng(svg, path);
}

/** The held-out scenes of a figure: the COCO files and the detector input side. */
export interface SceneFiles {
  annotations: string;
  images: string;
  size: number;
}

/**
 * `predictions.png`: the first `n` held-out scenes, ground truth, then each
 * row's detections (read from its detector run's `detections_val.json`).
 */
export async function writePredictionFigure(
  path: string,
  val: SceneFiles,
  rows: readonly Table3Row[],
  n: number,
): Promise<void> {
  const ds = await openCocoDataset({
    annotations: val.annotations,
    images: val.images,
    inputSize: val.size,
    channels: 1,
  });
  const samples: CocoSample[] = [];
  for (let i = 0; i < Math.min(n, ds.length); i++) samples.push(await ds.get(i));
  const perRun = await Promise.all(
    rows.map(async ({ result }) =>
      JSON.parse(await Deno.readTextFile(`${result.runDir}/detections_val.json`)) as {
        image_id: number;
        category_id: number;
        bbox: number[];
        score: number;
        segmentation?: { size: [number, number]; counts: string };
      }[]
    ),
  );
  const grid = samples.map((s) => {
    const gt = s.instances.map((i) => ({ label: i.label, bbox: i.bbox, mask: i.mask }));
    return [
      drawDetections(s.image, gt),
      ...perRun.map((dets) =>
        drawDetections(
          s.image,
          dets.filter((d) => d.image_id === s.imageId).map((d) => ({
            label: ds.labelOf.get(d.category_id)!,
            bbox: d.bbox,
            score: d.score,
            mask: d.segmentation ? decodeMask(d.segmentation) : null,
          })),
        )
      ),
    ];
  });
  await imageGridPng(path, grid, {
    colLabels: ["ground truth", ...rows.map(({ backbone }) => backbone.label)],
    title: "held-out scenes: best 8 detections with score >= 0.2 (masks tinted by class)",
  });
}
