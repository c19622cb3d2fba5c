import assert from "node:assert/strict";
import {
  applyCrop,
  type CropBox,
  FULL_BOX,
  randomResizedCrop,
  type Raster,
} from "../lib/data/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

function raster(
  h: number,
  w: number,
  c: number,
  f: (y: number, x: number, k: number) => number,
  float = false,
): Raster {
  const data = float ? new Float32Array(h * w * c) : new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[(y * w + x) * c + k] = f(y, x, k);
  }
  return { data, height: h, width: w, channels: c };
}

Deno.test("applyCrop() with the full box at the same size reproduces the raster", () => {
  const rng = makeRng(1, "identity");
  for (const [c, float] of [[1, false], [3, false], [5, true]] as const) {
    const r = raster(7, 5, c, () => Math.floor(rng() * 256), float);
    const out = applyCrop(r, FULL_BOX, 7, 5);
    assert.ok(out.data instanceof Float32Array);
    assert.deepEqual([out.height, out.width, out.channels], [7, 5, c]);
    assert.deepEqual(Array.from(out.data), Array.from(r.data));
  }
});

Deno.test("applyCrop() samples pixel centres bilinearly and clamps at the edges", () => {
  // A linear ramp is reproduced exactly by bilinear sampling away from the edges.
  const r = raster(4, 4, 1, (y, x) => 10 * y + x);
  assert.deepEqual(Array.from(applyCrop(r, FULL_BOX, 2, 2).data), [5.5, 7.5, 25.5, 27.5]);
  // Integer sub-box at its own size: an exact pixel copy.
  const sub = applyCrop(r, { y0: 0.25, x0: 0.5, y1: 0.75, x1: 1, flip: false }, 2, 2);
  assert.deepEqual(Array.from(sub.data), [12, 13, 22, 23]);
  // Upsampling 1x2 → 1x4: samples at x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  const row = raster(1, 2, 1, (_, x) => 100 * x);
  assert.deepEqual(Array.from(applyCrop(row, FULL_BOX, 1, 4).data), [0, 25, 75, 100]);
  assert.throws(() => applyCrop(r, { ...FULL_BOX, x1: 0 }, 2, 2), /x1/);
  assert.throws(() => applyCrop(r, FULL_BOX, 0, 2), /0x2/);
});

Deno.test("applyCrop() with flip mirrors the unflipped crop exactly", () => {
  const rng = makeRng(2, "flip");
  const r = raster(20, 30, 3, () => rng() * 255, true);
  for (let t = 0; t < 20; t++) {
    const box = randomResizedCrop(rng, 20, 30, { scale: [0.1, 1] });
    const a = applyCrop(r, { ...box, flip: false }, 9, 11).data;
    const b = applyCrop(r, { ...box, flip: true }, 9, 11).data;
    for (let i = 0; i < 9; i++) {
      for (let j = 0; j < 11; j++) {
        for (let k = 0; k < 3; k++) {
          assert.equal(b[(i * 11 + j) * 3 + k], a[(i * 11 + (10 - j)) * 3 + k]);
        }
      }
    }
  }
});

Deno.test("applyCrop() keeps an image and a lower-resolution map of its object aligned", () => {
  // 64x48 image with a bright square on rows 20..35, cols 12..27; the 16x12 map
  // marks the same square (rows 5..8, cols 3..6) at a quarter of the resolution.
  const img = raster(64, 48, 3, (y, x) => (y >= 20 && y < 36 && x >= 12 && x < 28 ? 250 : 10));
  const map = raster(16, 12, 1, (y, x) => (y >= 5 && y < 9 && x >= 3 && x < 7 ? 1 : 0), true);
  const rng = makeRng(3, "align");
  const S = 32;
  let checked = 0;
  let flipped = 0;
  for (let t = 0; t < 200; t++) {
    const box = randomResizedCrop(rng, 64, 48, { scale: [0.2, 1], flip: true });
    const a = applyCrop(img, box, S, S).data;
    const m = applyCrop(map, box, S, S).data;
    let inter = 0, union = 0, na = 0, ai = 0, aj = 0, nm = 0, mi = 0, mj = 0;
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < S; j++) {
        const p = i * S + j;
        const bright = a[p * 3] > 130; // halfway between 10 and 250
        const high = m[p] > 0.5; // halfway between 0 and 1
        if (bright && high) inter++;
        if (bright || high) union++;
        if (bright) (na++, ai += i, aj += j);
        if (high) (nm++, mi += i, mj += j);
      }
    }
    if (na < 16) continue; // object (almost) cropped out
    checked++;
    if (box.flip) flipped++;
    // Edges coincide exactly; only corner pixels may differ (the map's ramps are 4x wider).
    assert.ok(inter / union >= 0.85, `IoU ${inter / union} for box ${JSON.stringify(box)}`);
    const d = Math.max(Math.abs(ai / na - mi / nm), Math.abs(aj / na - mj / nm));
    assert.ok(d < 0.5, `centroids differ by ${d} px for box ${JSON.stringify(box)}`);
  }
  assert.ok(checked >= 100 && flipped >= 30, `checked ${checked}, flipped ${flipped}`);
});

/** Crop size in source pixels. */
function pixels(box: CropBox, h: number, w: number) {
  return { h: Math.round((box.y1 - box.y0) * h), w: Math.round((box.x1 - box.x0) * w) };
}

Deno.test("randomResizedCrop() draws boxes within the scale and ratio ranges, flips ~half", () => {
  const rng = makeRng(4, "rrc");
  const H = 224, W = 224, N = 4000;
  let flips = 0;
  let meanArea = 0;
  for (let t = 0; t < N; t++) {
    const box = randomResizedCrop(rng, H, W, {
      scale: [0.2, 1],
      ratio: [3 / 4, 4 / 3],
      flip: true,
    });
    // Snapped to whole source pixels.
    for (const [v, n] of [[box.y0, H], [box.y1, H], [box.x0, W], [box.x1, W]]) {
      assert.ok(Math.abs(v * n - Math.round(v * n)) < 1e-9, `${v} * ${n} is not an integer`);
    }
    assert.ok(box.y0 >= 0 && box.y1 <= 1 && box.x0 >= 0 && box.x1 <= 1);
    const { h, w } = pixels(box, H, W);
    const area = (h * w) / (H * W);
    meanArea += area / N;
    // Rounding to whole pixels moves area and ratio by at most ~1% at these sizes.
    assert.ok(area >= 0.2 * 0.98 && area <= 1, `area fraction ${area}`);
    assert.ok(w / h >= 0.75 * 0.98 && w / h <= (4 / 3) * 1.02, `aspect ${w / h}`);
    if (box.flip) flips++;
  }
  // Binomial(4000, 0.5): sd 0.0079; tolerance 0.04 is 5 sd.
  assert.ok(Math.abs(flips / N - 0.5) < 0.04, `flip rate ${flips / N}`);
  // U(0.2, 1) has mean 0.6; draws too big for the ratio are rejected, lowering it a little.
  assert.ok(meanArea > 0.5 && meanArea < 0.62, `mean area ${meanArea}`);
  const noFlip = randomResizedCrop(rng, H, W, { flip: false });
  assert.equal(noFlip.flip, false);
});

Deno.test("randomResizedCrop() is reproducible from the seed", () => {
  const draw = (seed: number) => {
    const rng = makeRng(seed, "rrc");
    return Array.from({ length: 50 }, () => randomResizedCrop(rng, 32, 40, { flip: true }));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

Deno.test("randomResizedCrop() falls back to a centred crop clamped to the ratio range", () => {
  // 10x200: no crop of >= 90% area fits the ratio range, so all 10 tries fail.
  const box = randomResizedCrop(makeRng(0), 10, 200, { scale: [0.9, 1], ratio: [3 / 4, 4 / 3] });
  assert.deepEqual(pixels(box, 10, 200), { h: 10, w: 13 });
  assert.equal(box.x0 * 200, 93);
  assert.equal(box.y0, 0);
  assert.throws(() => randomResizedCrop(makeRng(0), 10, 10, { scale: [0.5, 0.2] }), /0\.5, 0\.2/);
});
