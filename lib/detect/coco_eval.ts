/**
 * COCO detection / instance-segmentation evaluation with the semantics of
 * pycocotools' `COCOeval` (re-implemented, not ported):
 *
 * - IoU thresholds 0.50:0.05:0.95 and recall thresholds 0:0.01:1, built like
 *   `np.linspace` so that boundary IoUs (exactly 0.75, ...) compare the same way;
 * - per image and category, detections sorted by score (stable, so ties keep
 *   their order in the results list) and cut to `maxDets` (1, 10, 100);
 * - greedy matching per IoU threshold: each detection takes the unmatched
 *   ground truth of highest IoU >= threshold, preferring non-ignored ground
 *   truth (ignored ones are sorted last, and a detection matched to a regular
 *   one never moves to an ignored one); crowd ground truth can be matched many
 *   times, with IoU = intersection / detection area;
 * - a ground truth is ignored when `iscrowd` or its `area` falls outside the
 *   area range; detections matched to ignored ground truth, and unmatched
 *   detections whose own area falls outside the range, count as neither TP
 *   nor FP;
 * - precision made monotone (non-increasing in recall) and read at the 101
 *   recall thresholds (0 where a recall is never reached); AP is the mean over
 *   thresholds and over categories that have ground truth in the area range
 *   (others are -1 and left out); -1 when nothing is left to average.
 *
 * As in pycocotools, `maxDets` applies per image **and category**, and a
 * detection's area is `w * h` of its box when it has one, else its mask area.
 *
 * @module
 */
import {
  boxIou,
  type CompressedRle,
  type Rle,
  rleArea,
  rleIou,
  rleToBbox,
  segmentationToRle,
} from "./rle.ts";
import type { CocoAnnotation, CocoDataset, CocoDetection } from "./types.ts";

/** `np.linspace(start, stop, num)`, value for value. */
export function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/** COCO's IoU thresholds 0.50:0.05:0.95. */
export const IOU_THRESHOLDS: readonly number[] = Object.freeze(linspace(0.5, 0.95, 10));
/** COCO's 101 recall thresholds 0:0.01:1. */
export const RECALL_THRESHOLDS: readonly number[] = Object.freeze(linspace(0, 1, 101));
/** COCO's area ranges in pixels²: all, small (< 32²), medium, large (> 96²). */
export const AREA_RANGES: Readonly<Record<"all" | "small" | "medium" | "large", [number, number]>> =
  Object.freeze({
    all: [0, 1e10],
    small: [0, 32 ** 2],
    medium: [32 ** 2, 96 ** 2],
    large: [96 ** 2, 1e10],
  });

/** Options of {@link evaluateCoco}. */
export interface CocoEvalOptions {
  iouType: "bbox" | "segm";
  /** Detections kept per image and category (default [1, 10, 100]; AP uses the last). */
  maxDets?: number[];
}

/**
 * COCO's summary numbers as fractions (-1 = nothing to evaluate), plus AP per
 * category id (all areas, last maxDets; -1 for categories without ground truth).
 */
export interface CocoMetrics {
  AP: number;
  AP50: number;
  AP75: number;
  APs: number;
  APm: number;
  APl: number;
  AR1: number;
  AR10: number;
  AR100: number;
  ARs: number;
  ARm: number;
  ARl: number;
  perCategoryAP: Record<number, number>;
}

/** One (image, category) cell: ground truth and score-sorted detections with their IoUs. */
interface Cell {
  gtArea: number[];
  gtCrowd: boolean[];
  dtArea: number[];
  dtScore: number[];
  /** ious[d][g] */
  ious: number[][];
}

/** One evaluated (image, category, area range, maxDets) cell, as `evaluateImg`. */
interface ImageEval {
  /** [T][D] matched to a ground truth (any, ignored or not) */
  dtMatched: boolean[][];
  /** [T][D] */
  dtIgnore: boolean[][];
  dtScore: number[];
  /** [G] */
  gtIgnore: boolean[];
}

/**
 * Evaluate detections against COCO ground truth.
 *
 * @param groundTruth an instances JSON (images need `width`/`height` for segm and polygons)
 * @param detections results in the same pixel coordinates as the ground truth
 *
 * @example
 * ```ts
 * import { evaluateCoco } from "./coco_eval.ts";
 * const gt = {
 *   images: [{ id: 1, width: 10, height: 10 }],
 *   categories: [{ id: 1, name: "a" }],
 *   annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 4, 4] as [number, number, number, number], area: 16 }],
 * };
 * const r = evaluateCoco(gt, [{ image_id: 1, category_id: 1, bbox: [0, 0, 4, 4], score: 0.9 }], { iouType: "bbox" });
 * if (Math.abs(r.AP - 1) > 1e-12) throw new Error(String(r.AP)); // 1 - 2e-16, as pycocotools
 * ```
 */
export function evaluateCoco(
  groundTruth: Pick<CocoDataset, "images" | "annotations" | "categories">,
  detections: readonly CocoDetection[],
  options: CocoEvalOptions,
): CocoMetrics {
  const { iouType } = options;
  if (iouType !== "bbox" && iouType !== "segm") {
    throw new RangeError(`evaluateCoco: iouType must be "bbox" or "segm", got "${iouType}"`);
  }
  const maxDets = options.maxDets ?? [1, 10, 100];
  const imgIds = [...new Set(groundTruth.images.map((im) => im.id))].sort((a, b) => a - b);
  const catIds = [...new Set(groundTruth.categories.map((c) => c.id))].sort((a, b) => a - b);
  const imageById = new Map(groundTruth.images.map((im) => [im.id, im]));
  const catSet = new Set(catIds);

  // ---- group ground truth and detections by (image, category) ---------------------------
  const key = (img: number, cat: number) => `${img}:${cat}`;
  const gts = new Map<string, CocoAnnotation[]>();
  for (const a of groundTruth.annotations) {
    if (!imageById.has(a.image_id) || !catSet.has(a.category_id)) continue;
    const k = key(a.image_id, a.category_id);
    if (!gts.has(k)) gts.set(k, []);
    gts.get(k)!.push(a);
  }
  const dts = new Map<string, CocoDetection[]>();
  detections.forEach((d, i) => {
    if (!imageById.has(d.image_id)) {
      throw new RangeError(
        `detection ${i}: image_id ${d.image_id} is not an image of the ground truth; results must come from the same image set`,
      );
    }
    if (!catSet.has(d.category_id)) {
      throw new RangeError(
        `detection ${i}: category_id ${d.category_id} is not a ground-truth category (${
          catIds.slice(0, 12).join(", ")
        }${catIds.length > 12 ? ", ..." : ""})`,
      );
    }
    if (!Number.isFinite(d.score)) throw new RangeError(`detection ${i}: score is ${d.score}`);
    if (iouType === "segm" && d.segmentation === undefined) {
      throw new TypeError(`detection ${i}: segm evaluation needs a segmentation`);
    }
    if (iouType === "bbox" && !d.bbox && d.segmentation === undefined) {
      throw new TypeError(`detection ${i}: bbox evaluation needs a bbox (or a segmentation)`);
    }
    const k = key(d.image_id, d.category_id);
    if (!dts.has(k)) dts.set(k, []);
    dts.get(k)!.push(d);
  });

  // ---- IoUs per cell ---------------------------------------------------------------------
  const maxDet = maxDets[maxDets.length - 1];
  const cells = new Map<string, Cell>();
  for (const img of imgIds) {
    const im = imageById.get(img)!;
    for (const cat of catIds) {
      const k = key(img, cat);
      const g = gts.get(k) ?? [];
      const d = sortByScore(dts.get(k) ?? []).slice(0, maxDet);
      if (g.length === 0 && d.length === 0) continue;
      cells.set(k, buildCell(g, d, iouType, im.height, im.width));
    }
  }

  // ---- evaluate and accumulate -------------------------------------------------------------
  const T = IOU_THRESHOLDS.length, R = RECALL_THRESHOLDS.length;
  const areaNames = ["all", "small", "medium", "large"] as const;
  // precision[a][m][k][t][r], recall[a][m][k][t]
  const precision: number[][][][][] = [];
  const recall: number[][][][] = [];
  for (const [ai, aName] of areaNames.entries()) {
    const aRng = AREA_RANGES[aName];
    precision.push([]);
    recall.push([]);
    for (const [mi, mDet] of maxDets.entries()) {
      precision[ai].push([]);
      recall[ai].push([]);
      for (const cat of catIds) {
        const evals: ImageEval[] = [];
        for (const img of imgIds) {
          const cell = cells.get(key(img, cat));
          if (cell) evals.push(evaluateCell(cell, aRng, mDet));
        }
        const acc = accumulate(evals, mDet, T, R);
        precision[ai][mi].push(acc.precision);
        recall[ai][mi].push(acc.recall);
      }
    }
  }

  // ---- summarise -------------------------------------------------------------------------
  const M = maxDets.length - 1;
  const mIndex = (n: number) => maxDets.indexOf(n);
  const meanOf = (vals: number[]) => {
    const ok = vals.filter((v) => v > -1);
    return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : -1;
  };
  const ap = (ai: number, t: number | null, mi = M) =>
    meanOf(
      precision[ai][mi].flatMap((byT) => (t === null ? byT : [byT[t]]).flat()),
    );
  const ar = (ai: number, mi: number) => mi < 0 ? -1 : meanOf(recall[ai][mi].flatMap((byT) => byT));
  const perCategoryAP: Record<number, number> = {};
  catIds.forEach((cat, k) => (perCategoryAP[cat] = meanOf(precision[0][M][k].flat())));
  return {
    AP: ap(0, null),
    AP50: ap(0, 0),
    AP75: ap(0, 5),
    APs: ap(1, null),
    APm: ap(2, null),
    APl: ap(3, null),
    AR1: ar(0, mIndex(1)),
    AR10: ar(0, mIndex(10)),
    AR100: ar(0, M),
    ARs: ar(1, M),
    ARm: ar(2, M),
    ARl: ar(3, M),
    perCategoryAP,
  };
}

/** Stable sort by descending score (numpy's mergesort on `-score`). */
function sortByScore<T extends { score: number }>(items: readonly T[]): T[] {
  return items.map((d, i) => ({ d, i }))
    .sort((a, b) => b.d.score - a.d.score || a.i - b.i)
    .map((x) => x.d);
}

function buildCell(
  g: CocoAnnotation[],
  d: CocoDetection[],
  iouType: "bbox" | "segm",
  h: number,
  w: number,
): Cell {
  const gtCrowd = g.map((a) => !!a.iscrowd);
  const gtRle: Rle[] = [];
  const dtRle: Rle[] = [];
  const where = (a: CocoAnnotation) => `annotation ${a.id} (image ${a.image_id})`;
  // detections without a box (or, in segm, all) need their mask as RLE
  const dtMask = (i: number): Rle => {
    if (!dtRle[i]) {
      dtRle[i] = withContext(
        () => segmentationToRle(d[i].segmentation!, h, w),
        `detection on image ${d[i].image_id}`,
      );
    }
    return dtRle[i];
  };
  if (iouType === "segm") {
    for (const a of g) {
      if (a.segmentation === undefined) {
        throw new TypeError(`${where(a)}: segm evaluation needs a segmentation`);
      }
      gtRle.push(withContext(() => segmentationToRle(a.segmentation!, h, w), where(a)));
    }
    d.forEach((_, i) => dtMask(i));
  }
  const dtBox = d.map((x, i) => x.bbox ?? rleToBbox(dtMask(i)));
  const gtArea = g.map((a, i) => {
    if (typeof a.area === "number") return a.area;
    return iouType === "segm" ? rleArea(gtRle[i]) : a.bbox[2] * a.bbox[3];
  });
  // pycocotools: a result with a box gets area w * h, otherwise its mask area
  const dtArea = d.map((x, i) => x.bbox ? x.bbox[2] * x.bbox[3] : rleArea(dtMask(i)));
  const ious = d.map((_, di) =>
    g.map((a, gi) =>
      iouType === "segm"
        ? rleIou(dtRle[di], gtRle[gi], gtCrowd[gi])
        : boxIou(dtBox[di], a.bbox, gtCrowd[gi])
    )
  );
  return { gtArea, gtCrowd, dtArea, dtScore: d.map((x) => x.score), ious };
}

function withContext<T>(fn: () => T, where: string): T {
  try {
    return fn();
  } catch (e) {
    const err = e as Error;
    throw new (err.constructor as ErrorConstructor)(`${where}: ${err.message}`, { cause: e });
  }
}

/** pycocotools' `evaluateImg` for one cell (detections already sorted and cut to the largest maxDets). */
function evaluateCell(cell: Cell, aRng: [number, number], maxDet: number): ImageEval {
  const T = IOU_THRESHOLDS.length;
  const G = cell.gtArea.length;
  const D = Math.min(maxDet, cell.dtScore.length);
  const ignoredRaw = cell.gtArea.map((a, i) => cell.gtCrowd[i] || a < aRng[0] || a > aRng[1]);
  // ignored ground truth last, order otherwise kept (mergesort)
  const gOrder = [...Array(G).keys()].sort((a, b) =>
    Number(ignoredRaw[a]) - Number(ignoredRaw[b]) || a - b
  );
  const gtIgnore = gOrder.map((i) => ignoredRaw[i]);
  const crowd = gOrder.map((i) => cell.gtCrowd[i]);
  const dtMatched: boolean[][] = [];
  const dtIgnore: boolean[][] = [];
  for (let t = 0; t < T; t++) {
    const gtTaken = new Array<boolean>(G).fill(false);
    const matched = new Array<boolean>(D).fill(false);
    const ignore = new Array<boolean>(D).fill(false);
    for (let d = 0; d < D; d++) {
      let best = Math.min(IOU_THRESHOLDS[t], 1 - 1e-10);
      let m = -1;
      for (let gi = 0; gi < G; gi++) {
        if (gtTaken[gi] && !crowd[gi]) continue;
        // already matched to a regular ground truth: never move to an ignored one
        if (m > -1 && !gtIgnore[m] && gtIgnore[gi]) break;
        const iou = cell.ious[d][gOrder[gi]];
        if (iou < best) continue;
        best = iou;
        m = gi;
      }
      if (m === -1) continue;
      ignore[d] = gtIgnore[m];
      matched[d] = true;
      gtTaken[m] = true;
    }
    // unmatched detections outside the area range are ignored
    for (let d = 0; d < D; d++) {
      const a = cell.dtArea[d];
      if (!matched[d] && (a < aRng[0] || a > aRng[1])) ignore[d] = true;
    }
    dtMatched.push(matched);
    dtIgnore.push(ignore);
  }
  return { dtMatched, dtIgnore, dtScore: cell.dtScore.slice(0, D), gtIgnore };
}

/** pycocotools' `accumulate` for one (category, area, maxDets): precision [T][R], recall [T]. */
function accumulate(
  evals: ImageEval[],
  maxDet: number,
  T: number,
  R: number,
): { precision: number[][]; recall: number[] } {
  const none = {
    precision: Array.from({ length: T }, () => new Array<number>(R).fill(-1)),
    recall: new Array<number>(T).fill(-1),
  };
  if (evals.length === 0) return none;
  // concatenate over images (in image id order), then a stable sort by score
  const scores: number[] = [];
  const src: [number, number][] = [];
  evals.forEach((e, ei) => {
    const n = Math.min(maxDet, e.dtScore.length);
    for (let d = 0; d < n; d++) {
      scores.push(e.dtScore[d]);
      src.push([ei, d]);
    }
  });
  const order = [...scores.keys()].sort((a, b) => scores[b] - scores[a] || a - b);
  let npig = 0;
  for (const e of evals) for (const ig of e.gtIgnore) if (!ig) npig++;
  if (npig === 0) return none;

  const precision: number[][] = [];
  const recall: number[] = [];
  for (let t = 0; t < T; t++) {
    const rc: number[] = [];
    const pr: number[] = [];
    let tp = 0, fp = 0;
    for (const o of order) {
      const [ei, d] = src[o];
      const e = evals[ei];
      if (e.dtIgnore[t][d]) {
        // ignored detections still occupy a position (pycocotools keeps them in the cumsum)
      } else if (e.dtMatched[t][d]) tp++;
      else fp++;
      rc.push(tp / npig);
      pr.push(tp / (fp + tp + Number.EPSILON));
    }
    recall.push(rc.length ? rc[rc.length - 1] : 0);
    // precision envelope: non-increasing from the right
    for (let i = pr.length - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    const q = new Array<number>(R).fill(0);
    let j = 0;
    for (let r = 0; r < R; r++) {
      // first index with rc >= threshold (np.searchsorted side="left")
      while (j < rc.length && rc[j] < RECALL_THRESHOLDS[r]) j++;
      if (j >= rc.length) break;
      q[r] = pr[j];
    }
    precision.push(q);
  }
  return { precision, recall };
}

/** Turn a COCO metric fraction into a table cell: percent with one decimal, "n/a" for -1. */
export function formatAp(v: number): string {
  return v < 0 || !Number.isFinite(v) ? "n/a" : (100 * v).toFixed(1);
}

/** Re-export for callers that build results from masks. */
export type { CompressedRle, Rle };
