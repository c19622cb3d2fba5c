import assert from "node:assert/strict";
import {
  type CocoAnnotation,
  type CocoDetection,
  encodeMask,
  evaluateCoco,
  IOU_THRESHOLDS,
  RECALL_THRESHOLDS,
} from "../lib/detect/mod.ts";

type Box = [number, number, number, number];

function gtSet(
  anns: { image: number; cat: number; box: Box; crowd?: number; area?: number }[],
  opts: { images?: number[]; cats?: number[]; size?: number } = {},
) {
  const size = opts.size ?? 300;
  const images = (opts.images ?? [1]).map((id) => ({ id, width: size, height: size }));
  const categories = (opts.cats ?? [1]).map((id) => ({ id, name: `c${id}` }));
  const annotations: CocoAnnotation[] = anns.map((a, i) => ({
    id: i + 1,
    image_id: a.image,
    category_id: a.cat,
    bbox: a.box,
    area: a.area ?? a.box[2] * a.box[3],
    iscrowd: a.crowd ?? 0,
  }));
  return { images, categories, annotations };
}

function det(image: number, cat: number, box: Box, score: number): CocoDetection {
  return { image_id: image, category_id: cat, bbox: box, score };
}

/** pycocotools divides by tp + fp + eps, so a perfect precision is 1 - 2e-16. */
function close(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`);
}

Deno.test("COCO thresholds are numpy's linspace values", () => {
  assert.equal(IOU_THRESHOLDS.length, 10);
  assert.equal(IOU_THRESHOLDS[0], 0.5);
  assert.equal(IOU_THRESHOLDS[5], 0.75);
  assert.equal(IOU_THRESHOLDS[9], 0.95);
  assert.equal(RECALL_THRESHOLDS.length, 101);
  assert.equal(RECALL_THRESHOLDS[50], 0.5);
  assert.equal(RECALL_THRESHOLDS[100], 1);
});

Deno.test("evaluateCoco() gives 1 for perfect boxes and masks", () => {
  const gt = gtSet([
    { image: 1, cat: 1, box: [10, 10, 20, 30] },
    { image: 1, cat: 2, box: [100, 100, 50, 50] },
    { image: 2, cat: 1, box: [0, 0, 200, 150] },
  ], { images: [1, 2], cats: [1, 2] });
  const dets = gt.annotations.map((a) => det(a.image_id, a.category_id, a.bbox, 0.5));
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  for (const k of ["AP", "AP50", "AP75", "AR100"] as const) close(r[k], 1, k);
  // areas 600 (small), 2500 (medium), 30000 (large)
  close(r.APs, 1, "APs");
  close(r.APm, 1, "APm");
  close(r.APl, 1, "APl");
  close(r.perCategoryAP[1], 1, "cat 1");
  close(r.perCategoryAP[2], 1, "cat 2");

  // the same as masks (box-shaped)
  const mask = (b: Box) => {
    const m = new Uint8Array(300 * 300);
    for (let y = b[1]; y < b[1] + b[3]; y++) {
      for (let x = b[0]; x < b[0] + b[2]; x++) m[y * 300 + x] = 1;
    }
    return encodeMask(m, 300, 300);
  };
  for (const a of gt.annotations) a.segmentation = mask(a.bbox);
  const segDets = gt.annotations.map((a) => ({
    image_id: a.image_id,
    category_id: a.category_id,
    segmentation: mask(a.bbox),
    score: 0.5,
  }));
  close(evaluateCoco(gt, segDets, { iouType: "segm" }).AP, 1, "AP");
});

Deno.test("evaluateCoco() with a duplicate false positive between two hits", () => {
  // Two ground truths; detections by score: hit A (0.9), duplicate of A (0.8), hit B (0.7).
  // tp = 1,1,2  fp = 0,1,1  ->  recall .5,.5,1  precision 1, 1/2, 2/3
  // monotone precision: 1, 2/3, 2/3. Recall thresholds 0..0.50 (51 of them) read 1,
  // 0.51..1.00 (50) read 2/3: AP = (51 + 50 * 2/3) / 101 = 253/303 at every IoU threshold.
  const gt = gtSet([{ image: 1, cat: 1, box: [0, 0, 40, 40] }, {
    image: 1,
    cat: 1,
    box: [100, 100, 40, 40],
  }]);
  const dets = [
    det(1, 1, [0, 0, 40, 40], 0.9),
    det(1, 1, [0, 0, 40, 40], 0.8),
    det(1, 1, [100, 100, 40, 40], 0.7),
  ];
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  close(r.AP, 253 / 303, "AP");
  close(r.AP50, 253 / 303, "AP50");
  close(r.AR100, 1, "AR100");
  // the same duplicate scored below both hits costs nothing
  const later = [dets[0], dets[2], { ...dets[1], score: 0.1 }];
  close(evaluateCoco(gt, later, { iouType: "bbox" }).AP, 1, "AP");
  // maxDets 1 keeps only the top detection per image and category: recall 1/2
  close(evaluateCoco(gt, dets, { iouType: "bbox" }).AR1, 0.5, "AR1");
});

Deno.test("evaluateCoco() with a category mix-up", () => {
  // Image 1 has a cat-1 object detected as cat 2 (0.9); image 2 a cat-2 object found (0.8).
  // cat 1: one ground truth, no detection -> AP 0.
  // cat 2: FP (0.9) then TP (0.8): recall 0, 1; precision 0, 1/2 -> monotone 1/2, 1/2
  //        -> AP 1/2. Mean over categories: 1/4.
  const gt = gtSet([{ image: 1, cat: 1, box: [10, 10, 50, 50] }, {
    image: 2,
    cat: 2,
    box: [10, 10, 50, 50],
  }], { images: [1, 2], cats: [1, 2] });
  const dets = [det(1, 2, [10, 10, 50, 50], 0.9), det(2, 2, [10, 10, 50, 50], 0.8)];
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  close(r.perCategoryAP[1], 0, "cat 1");
  close(r.perCategoryAP[2], 0.5, "cat 2");
  close(r.AP, 0.25, "AP");
  // a category without ground truth is left out of the mean (-1), even with detections
  const gt3 = gtSet([{ image: 1, cat: 1, box: [10, 10, 50, 50] }], { cats: [1, 3] });
  const r3 = evaluateCoco(gt3, [det(1, 1, [10, 10, 50, 50], 0.9), det(1, 3, [0, 0, 5, 5], 0.9)], {
    iouType: "bbox",
  });
  close(r3.perCategoryAP[1], 1, "cat 1");
  assert.equal(r3.perCategoryAP[3], -1);
  close(r3.AP, 1, "AP");
});

Deno.test("evaluateCoco() splits small / medium / large by the ground-truth area", () => {
  // Ground truth: small 10x10 (100), medium 40x40 (1600), large 100x100 (10000).
  // Detections: an 8x8 false positive in empty space (0.95), small hit (0.9), large hit (0.8).
  const gt = gtSet([
    { image: 1, cat: 1, box: [0, 0, 10, 10] },
    { image: 1, cat: 1, box: [50, 50, 40, 40] },
    { image: 1, cat: 1, box: [150, 150, 100, 100] },
  ]);
  const dets = [
    det(1, 1, [280, 0, 8, 8], 0.95),
    det(1, 1, [0, 0, 10, 10], 0.9),
    det(1, 1, [150, 150, 100, 100], 0.8),
  ];
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  // all: tp 0,1,2 fp 1,1,1 -> recall 0, 1/3, 2/3; precision 0, 1/2, 2/3 -> monotone 2/3 up to
  //      recall 2/3 (thresholds 0..0.66: 67 of them): AP = 67 * (2/3) / 101 = 134/303.
  close(r.AP, 134 / 303, "AP");
  // small: medium and large ground truth ignored; the large hit matches an ignored one (ignored);
  //        the FP (area 64) counts: FP then TP -> AP 1/2.
  close(r.APs, 0.5, "APs");
  // medium: its ground truth is never found; every detection is ignored -> AP 0.
  close(r.APm, 0, "APm");
  // large: the FP is unmatched and outside the range (ignored); the small hit matches an
  //        ignored ground truth -> only the large hit counts: AP 1.
  close(r.APl, 1, "APl");
  // an area range with no ground truth at all gives -1
  const onlySmall = gtSet([{ image: 1, cat: 1, box: [0, 0, 10, 10] }]);
  close(evaluateCoco(onlySmall, [dets[1]], { iouType: "bbox" }).APl, -1, "APl");
});

Deno.test("evaluateCoco() ignores detections matched to crowd regions", () => {
  // A crowd region [0,0,100,100] and a regular object. Detections: one straddling the crowd's
  // edge (IoU with crowd = 100/400 = 0.25: unmatched, FP, 0.95), two inside the crowd
  // (IoU = intersection / detection area = 1: matched to the crowd, ignored; a crowd can be
  // matched many times), then the regular hit (0.8).
  // Counted: FP, TP -> recall 0, 1; precision 0, 1/2 -> AP 1/2 (it would be 1/4 if the crowd
  // matches counted as false positives).
  const gt = gtSet([
    { image: 1, cat: 1, box: [0, 0, 100, 100], crowd: 1 },
    { image: 1, cat: 1, box: [200, 200, 20, 20] },
  ]);
  const dets = [
    det(1, 1, [90, 90, 20, 20], 0.95),
    det(1, 1, [10, 10, 20, 20], 0.9),
    det(1, 1, [50, 50, 20, 20], 0.85),
    det(1, 1, [200, 200, 20, 20], 0.8),
  ];
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  close(r.AP, 0.5, "AP");
  close(r.AR100, 1, "AR100");
  // only a crowd region: nothing to evaluate
  const crowdOnly = gtSet([{ image: 1, cat: 1, box: [0, 0, 100, 100], crowd: 1 }]);
  close(evaluateCoco(crowdOnly, dets.slice(1, 3), { iouType: "bbox" }).AP, -1, "AP");
});

Deno.test("evaluateCoco() reads the monotone precision at 101 recall thresholds", () => {
  // Four objects; detections by score: TP, FP, TP, FP, TP (one object never found).
  // tp 1,1,2,2,3  fp 0,1,1,2,2 -> recall .25,.25,.5,.5,.75; precision 1, 1/2, 2/3, 1/2, 3/5
  // monotone precision: 1, 2/3, 2/3, 3/5, 3/5.
  // thresholds 0..0.25 (26) -> 1; 0.26..0.50 (25) -> 2/3; 0.51..0.75 (25) -> 3/5; above (25) -> 0
  // AP = (26 + 25 * 2/3 + 25 * 3/5) / 101 = 173/303.
  const boxes: Box[] = [[0, 0, 20, 20], [50, 0, 20, 20], [100, 0, 20, 20], [150, 0, 20, 20]];
  const gt = gtSet(boxes.map((box) => ({ image: 1, cat: 1, box })));
  const dets = [
    det(1, 1, boxes[0], 0.9),
    det(1, 1, [0, 200, 20, 20], 0.8),
    det(1, 1, boxes[1], 0.7),
    det(1, 1, [50, 200, 20, 20], 0.6),
    det(1, 1, boxes[2], 0.5),
  ];
  const r = evaluateCoco(gt, dets, { iouType: "bbox" });
  close(r.AP, 173 / 303, "AP");
  close(r.AR100, 0.75, "AR100");
  // ties keep the order of the results list (stable sort): the FP listed first goes first
  const tied = dets.map((d) => ({ ...d, score: 0.5 }));
  close(evaluateCoco(gt, tied, { iouType: "bbox" }).AP, 173 / 303, "tied AP");
});

Deno.test("evaluateCoco() segm on RLE masks uses mask IoU", () => {
  // 4x4 image; ground truth = left two columns (8 px), detection = left three columns (12 px):
  // IoU 8/12 = 0.667 passes thresholds 0.50..0.65 (4 of 10) -> AP 0.4, AP50 1, AP75 0.
  const col = (n: number) => {
    const m = new Uint8Array(16);
    for (let y = 0; y < 4; y++) for (let x = 0; x < n; x++) m[y * 4 + x] = 1;
    return encodeMask(m, 4, 4);
  };
  const gt = {
    images: [{ id: 7, width: 4, height: 4 }],
    categories: [{ id: 1, name: "a" }],
    annotations: [{
      id: 1,
      image_id: 7,
      category_id: 1,
      bbox: [0, 0, 2, 4] as Box,
      area: 8,
      iscrowd: 0,
      segmentation: { size: [4, 4] as [number, number], counts: "088" }, // compressed [0, 8, 8]
    }],
  };
  assert.deepEqual(col(2).counts, [0, 8, 8]);
  const r = evaluateCoco(gt, [{ image_id: 7, category_id: 1, segmentation: col(3), score: 1 }], {
    iouType: "segm",
  });
  close(r.AP, 0.4, "AP");
  close(r.AP50, 1, "AP50");
  close(r.AP75, 0, "AP75");
  // polygons work for the ground truth too: the square [0,2]x[0,4] covers the same pixels
  gt.annotations[0].segmentation = [[0, 0, 2, 0, 2, 4, 0, 4]] as never;
  close(
    evaluateCoco(gt, [{ image_id: 7, category_id: 1, segmentation: col(3), score: 1 }], {
      iouType: "segm",
    }).AP,
    0.4,
    "polygon AP",
  );
});

Deno.test("evaluateCoco() returns -1 when there is nothing to evaluate and checks inputs", () => {
  const empty = { images: [{ id: 1, width: 10, height: 10 }], categories: [], annotations: [] };
  close(evaluateCoco(empty, [], { iouType: "bbox" }).AP, -1, "AP");
  const gt = gtSet([{ image: 1, cat: 1, box: [0, 0, 5, 5] }]);
  close(evaluateCoco(gt, [], { iouType: "bbox" }).AP, 0, "AP");
  assert.throws(
    () => evaluateCoco(gt, [det(9, 1, [0, 0, 1, 1], 1)], { iouType: "bbox" }),
    /image_id 9 is not an image of the ground truth/,
  );
  assert.throws(
    () => evaluateCoco(gt, [det(1, 1, [0, 0, 1, 1], 1)], { iouType: "segm" }),
    /needs a segmentation/,
  );
});
