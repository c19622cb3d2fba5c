import assert from "node:assert/strict";
import type { Raster } from "../lib/data/types.ts";
import { type MaskPlan, planForImage } from "../lib/mim/plan.ts";
import {
  accuracyCurveChart,
  barChart,
  colorize,
  colormapRgb,
  confusionMatrixSvg,
  epochSeries,
  escapeXml,
  heatmapGridSvg,
  hogGlyphImage,
  hogRow,
  hogUpscale,
  imageGrid,
  imageGridPng,
  imageGridPngBytes,
  lineChart,
  lossCurveChart,
  lrCurveChart,
  maskedImage,
  overlay,
  pasteReconstruction,
  phaseChanges,
  PLAN_COLORS,
  PLAN_LEGEND,
  planImage,
  planProbabilities,
  readPng,
  scatterChart,
  svgToPng,
  svgToPngBytes,
  textWidth,
  writePng,
} from "../lib/viz/mod.ts";
import { pretrain, writeAllRunFigures, writeCurveFigures } from "../lib/pretrain/mod.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { loadRun } from "../lib/run/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import { tf } from "./_tf.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";

function ramp(height: number, width: number, channels: number, float: boolean): Raster {
  const n = height * width * channels;
  const data = float ? new Float32Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = float ? ((i * 37) % 101) / 100 : (i * 37) % 256;
  return { data, height, width, channels };
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "viz_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Data points drawn by Vega: `[aria-label, x, y]` of every `point` symbol, in SVG order. */
function points(svg: string): [string, number, number][] {
  return [
    ...svg.matchAll(
      /<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="point" transform="translate\(([-\d.]+),([-\d.]+)\)"/g,
    ),
  ].map((m) => [m[1], Number(m[2]), Number(m[3])]);
}

/** Count of marks of one kind (`aria-roledescription`, e.g. "bar", "line mark"). */
function marks(svg: string, role: string): number {
  return count(svg, new RegExp(`aria-roledescription="${role}"`, "g"));
}

/** Pixels darker than mid grey in the first channel. */
function darkPixels(png: { data: ArrayLike<number>; channels: number }): number {
  let dark = 0;
  for (let i = 0; i < png.data.length; i += png.channels) if (png.data[i] < 128) dark++;
  return dark;
}

function count(svg: string, re: RegExp): number {
  return [...svg.matchAll(re)].length;
}

function pixel(r: Raster, y: number, x: number): number[] {
  const o = (y * r.width + x) * r.channels;
  return Array.from(r.data.subarray(o, o + r.channels));
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("writePng() / readPng() round-trip Uint8 rasters exactly (1 to 4 channels)", async () => {
  await withTmp(async (dir) => {
    for (const c of [1, 2, 3, 4]) {
      const r = ramp(7, 5, c, false);
      const path = `${dir}/nested/a/u8_${c}.png`;
      await writePng(path, r);
      const back = await readPng(path);
      assert.equal(back.channels, c);
      assert.deepEqual([back.height, back.width], [7, 5]);
      assert.deepEqual(Array.from(back.data), Array.from(r.data));
    }
    // Atomic write leaves no temporary files behind.
    const names = [...Deno.readDirSync(`${dir}/nested/a`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["u8_1.png", "u8_2.png", "u8_3.png", "u8_4.png"]);
  });
});

Deno.test("writePng() / readPng() round-trip Float32 rasters within 1/255, clamping", async () => {
  await withTmp(async (dir) => {
    for (const c of [1, 3]) {
      const r = ramp(6, 4, c, true);
      r.data[0] = -0.5; // clamped to 0
      r.data[1] = 1.7; // clamped to 1
      r.data[2] = NaN; // written as 0
      await writePng(`${dir}/f_${c}.png`, r);
      const back = await readPng(`${dir}/f_${c}.png`);
      assert.equal(back.channels, c);
      const got = Array.from(back.data, (v) => v / 255);
      const want = Array.from(r.data, (v) => (v > 0 ? Math.min(v, 1) : 0));
      assertClose(got, want, 1 / 255, `float ${c}ch`);
    }
  });
});

Deno.test("writePng() scale upsamples by nearest neighbour", async () => {
  await withTmp(async (dir) => {
    const r = ramp(2, 3, 3, false);
    await writePng(`${dir}/s.png`, r, { scale: 4 });
    const back = await readPng(`${dir}/s.png`);
    assert.deepEqual([back.height, back.width, back.channels], [8, 12, 3]);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 12; x++) {
        assert.deepEqual(pixel(back, y, x), pixel(r, Math.floor(y / 4), Math.floor(x / 4)));
      }
    }
    await assert.rejects(() => writePng(`${dir}/bad.png`, r, { scale: 1.5 }), /scale/);
  });
});

Deno.test("textWidth() uses DejaVu Sans advances", () => {
  // "0" is 0.636 em in DejaVu Sans, "i" 0.278 em; bold is wider.
  assert.ok(Math.abs(textWidth("00", 10) - 12.72) < 1e-9);
  assert.ok(Math.abs(textWidth("i", 100) - 27.8) < 1e-9);
  assert.ok(textWidth("loss", 12, true) > textWidth("loss", 12));
});

Deno.test("lineChart() draws one line per series through its finite points, and renders", async () => {
  const svg = await lineChart({
    title: "Pre-training loss <MAE & AMT>",
    xLabel: "epoch",
    yLabel: "loss",
    width: 500,
    height: 320,
    series: [
      { name: "MAE", x: [1, 2, 3, 4, 5], y: [1.0, 0.8, 0.7, 0.65, 0.6] },
      { name: "MAE+AMT", x: [1, 2, 3, 4, 5], y: [0.9, NaN, 0.6, null, 0.5] },
      { name: "SimMIM", x: [1, 2, 3], y: [1.2, 1.1, 1.05], dashed: true },
    ],
    rules: [{ x: 2.5, label: "AMT starts" }],
  });
  assert.equal(marks(svg, "line mark"), 3);
  const pts = points(svg);
  assert.equal(pts.length, 11, "5 + 3 + 3 finite points");
  assert.ok(svg.includes('width="500" height="320"'), "fits the requested size");
  assert.ok(svg.includes("&lt;MAE &amp; AMT&gt;"), "title escaped");
  assert.ok(!svg.includes("NaN"), "no NaN coordinates");
  assert.equal(marks(svg, "rule mark"), 1);
  for (const text of ["MAE+AMT", "SimMIM", "epoch", "loss", "AMT starts"]) {
    assert.ok(svg.includes(`>${text}</text>`), text);
  }
  // Positions follow the data: larger loss is higher up (smaller y), later epochs further right.
  const mae = pts.filter((p) => p[0].includes("series: MAE;"));
  assert.equal(mae.length, 5);
  for (let i = 1; i < mae.length; i++) {
    assert.ok(mae[i][1] > mae[i - 1][1], "x increases with epoch");
    assert.ok(mae[i][2] > mae[i - 1][2], "y (SVG) grows as the loss falls");
  }
  await withTmp(async (dir) => {
    await svgToPng(svg, `${dir}/line.png`);
    const png = await readPng(`${dir}/line.png`);
    assert.deepEqual([png.height, png.width], [640, 1000], "2x the chart size by default");
    assert.ok(darkPixels(png) > 2000, `expected drawn pixels, got ${darkPixels(png)}`);
    const one = await readPng(
      await Deno.writeFile(`${dir}/l1.png`, await svgToPngBytes(svg, { scale: 1 })).then(() =>
        `${dir}/l1.png`
      ),
    );
    assert.deepEqual([one.height, one.width], [320, 500]);
  });
});

Deno.test("lineChart() logY uses a log scale and skips non-positive values", async () => {
  const svg = await lineChart({
    title: "loss",
    xLabel: "step",
    yLabel: "MSE",
    logY: true,
    series: [{ name: "a", x: [0, 1, 2, 3, 4], y: [5, 0.5, 0.05, 0, -1] }],
  });
  const pts = points(svg);
  assert.equal(pts.length, 3);
  assert.ok(svg.includes("for a log scale"), "y axis is logarithmic");
  // Equal ratios are equal distances on a log axis.
  const d1 = pts[1][2] - pts[0][2];
  const d2 = pts[2][2] - pts[1][2];
  assert.ok(Math.abs(d1 - d2) < 0.5, `${d1} vs ${d2}`);
  assert.throws(
    () => lineChart({ series: [{ name: "bad", x: [1, 2], y: [1] }] }),
    /2 x but 1 y values/,
  );
});

Deno.test("barChart() draws non-null bars, marks missing values, escapes names", async () => {
  const svg = await barChart({
    title: "Linear probe accuracy",
    yLabel: "top-1 (%)",
    groups: ["MAE", "MAE+AMT", "SimMIM", "SimMIM+AMT"],
    series: [
      { name: "ours", values: [71.2, 73.4, null, 70.1] },
      { name: "paper <ref>", values: [68, 70.5, 66.1, NaN] },
    ],
  });
  assert.equal(marks(svg, "bar"), 6);
  assert.equal(count(svg, />n\/a<\/text>/g), 2);
  assert.ok(svg.includes("paper &lt;ref&gt;"));
  assert.ok(!svg.includes("<ref>"));
  for (const v of ["71.2", "73.4", "70.5"]) assert.ok(svg.includes(`>${v}</text>`), v);
  await withTmp(async (dir) => {
    await svgToPng(svg, `${dir}/bar.png`, { scale: 1 });
    const png = await readPng(`${dir}/bar.png`);
    assert.deepEqual([png.height, png.width], [400, 640]);
  });
  assert.throws(
    () => barChart({ groups: ["a", "b"], series: [{ name: "s", values: [1] }] }),
    /1 values for 2 groups/,
  );
});

Deno.test("scatterChart(), confusionMatrixSvg() and heatmapGridSvg() draw every element", async () => {
  const sc = await scatterChart({
    title: "cost vs accuracy",
    xLabel: "GPU hours",
    yLabel: "accuracy",
    points: [
      { x: 10, y: 0.7, label: "MAE", group: "random" },
      { x: 6, y: 0.72, label: "MAE+AMT", group: "AMT" },
      { x: NaN, y: 0.5, label: "broken" },
    ],
  });
  assert.equal(points(sc).length, 2);
  assert.ok(sc.includes(">MAE+AMT</text>") && sc.includes(">MAE</text>"));
  assert.ok(!sc.includes("broken"));
  const cm = await confusionMatrixSvg(
    [[5, 1, 0], [2, 7, 1], [0, 0, 9]],
    ["T-shirt", "Trouser", "Bag"],
    { title: "confusion" },
  );
  assert.equal(marks(cm, "rect mark"), 9);
  assert.ok(cm.includes(">0.83</text>"), "row-normalised 5/6");
  const values = Array.from({ length: 12 }, (_, i) => i / 11);
  const hm = await heatmapGridSvg([
    { row: "amt", column: "masked", height: 3, width: 4, values },
    { row: "amt", column: "thrown", height: 3, width: 4, values },
    { row: "random", column: "masked", height: 3, width: 4, values },
  ], { legendTitle: "P", domain: [0, 1] });
  assert.equal(marks(hm, "rect mark"), 36);
  for (const h of ["amt", "random", "masked", "thrown"]) assert.ok(hm.includes(`>${h}</text>`), h);
  await withTmp(async (dir) => {
    await svgToPng(cm, `${dir}/cm.png`);
    const png = await readPng(`${dir}/cm.png`);
    assert.ok(png.width > 200 && png.height > 200);
  });
  assert.throws(
    () => heatmapGridSvg([{ row: "", column: "c", height: 2, width: 2, values: [1] }]),
    /expected 2x2/,
  );
});

Deno.test("escapeXml() escapes markup characters", () => {
  assert.equal(escapeXml(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&#39;");
});

Deno.test("colorize() and overlay() map values through the colormap", () => {
  const map: Raster = { data: new Float32Array([0, 0.5, 1, 2]), height: 2, width: 2, channels: 1 };
  const c = colorize(map, "viridis");
  assert.equal(c.channels, 3);
  assertClose(pixel(c, 0, 0), [0x44 / 255, 0x01 / 255, 0x54 / 255], 1e-6, "viridis(0)");
  assertClose(pixel(c, 1, 1), pixel(c, 1, 0), 0, "values clamp at 1");
  assertClose(colormapRgb(0.5, "jet"), [0.5, 1, 0.5], 1e-9, "jet(0.5)");
  const img = ramp(2, 2, 1, true);
  const none = overlay(img, map, 0, "inferno");
  assertClose(pixel(none, 1, 0), [img.data[2], img.data[2], img.data[2]], 1e-7, "alpha 0");
  const full = overlay(img, map, 1, "inferno");
  assertClose(full.data, colorize(map, "inferno").data, 1e-7, "alpha 1");
  // A patch-level map is resized to the image.
  assert.equal(overlay(ramp(8, 8, 3, true), map).height, 8);
});

Deno.test("imageGrid() lays out cells centred with padding, gray promoted to RGB", () => {
  const a: Raster = { data: new Float32Array(16).fill(0.25), height: 4, width: 4, channels: 1 };
  const b: Raster = { data: new Uint8Array(2 * 2 * 3).fill(255), height: 2, width: 2, channels: 3 };
  const c = ramp(4, 6, 3, true);
  const g = imageGrid([[a, b], [null, c]], { pad: 1, background: 0 });
  assert.deepEqual([g.height, g.width, g.channels], [2 * 4 + 3, 2 * 6 + 3, 3]);
  // a: 4 wide in a 6-wide cell → x offset 1 + 1.
  assert.deepEqual(pixel(g, 1, 2), [0.25, 0.25, 0.25]);
  assert.deepEqual(pixel(g, 1, 1), [0, 0, 0]);
  // b: 2x2 centred in 4x6 → starts at y = 1 + 1, x = (1 + 6 + 1) + 2.
  assert.deepEqual(pixel(g, 2, 10), [1, 1, 1]);
  assert.deepEqual(pixel(g, 1, 10), [0, 0, 0]);
  // c fills its cell at y = 1 + 4 + 1, x = 8.
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 6; x++) assert.deepEqual(pixel(g, 6 + y, 8 + x), pixel(c, y, x));
  }
  // Scaled cells.
  const s = imageGrid([[a]], { pad: 0, scale: 3 });
  assert.deepEqual([s.height, s.width], [12, 12]);
});

Deno.test("imageGridPng() adds label margins and writes a PNG", async () => {
  await withTmp(async (dir) => {
    const rows = [[ramp(8, 8, 1, true), ramp(8, 8, 3, true)]];
    await imageGridPng(`${dir}/g.png`, rows, {
      scale: 4,
      rowLabels: ["input"],
      colLabels: ["gray", "rgb"],
      title: "grid",
    });
    const png = await readPng(`${dir}/g.png`);
    const bare = imageGrid(rows, { scale: 4 });
    assert.ok(png.height > bare.height && png.width > bare.width);
    await assert.rejects(
      () => imageGridPng(`${dir}/bad.png`, rows, { colLabels: ["one"] }),
      /column labels/,
    );
    // A legend adds a line of colour swatches above the grid.
    const bytes = await imageGridPngBytes(rows, { scale: 4, title: "grid", legend: PLAN_LEGEND });
    await Deno.writeFile(`${dir}/legend.png`, bytes);
    const withLegend = await readPng(`${dir}/legend.png`);
    assert.ok(withLegend.height > png.height - 20, "legend row adds height");
    let red = 0;
    for (let i = 0; i < withLegend.data.length; i += withLegend.channels) {
      const [r, g, b] = [withLegend.data[i], withLegend.data[i + 1], withLegend.data[i + 2]];
      if (r > 200 && g < 80 && b < 80) red++;
    }
    assert.ok(red > 20, `masked swatch drawn (${red} red pixels)`);
  });
});

function testPlan(): MaskPlan {
  // Two 4x4-patch images (L = 16); image 1 is the one drawn.
  const masked = Int32Array.from([0, 1, 2, 3, 4, 5, 2, 3, 6, 7, 8, 9]);
  const thrown = Int32Array.from([10, 11, 12, 13, 0, 1, 4, 5]);
  const visible = Int32Array.from([6, 7, 8, 9, 14, 15, 10, 11, 12, 13, 14, 15]);
  return {
    batch: 2,
    numPatches: 16,
    numMasked: 6,
    numThrown: 4,
    numVisible: 6,
    masked,
    thrown,
    visible,
  };
}

Deno.test("planImage() paints thrown flat, tints masked and visible in their own colours", () => {
  const p = 3;
  const img = ramp(12, 12, 3, true);
  const plan = planForImage(testPlan(), 1);
  assert.deepEqual(Array.from(plan.thrown), [0, 1, 4, 5]);
  const out = planImage(img, plan, p);
  assert.deepEqual([out.height, out.width, out.channels], [12, 12, 3]);
  const tint = (v: number[], color: readonly number[], a: number) =>
    v.map((x, c) => (1 - a) * x + a * color[c]);
  for (let y = 0; y < 12; y++) {
    for (let x = 0; x < 12; x++) {
      const k = Math.floor(y / p) * 4 + Math.floor(x / p);
      const got = pixel(out, y, x);
      const src = pixel(img, y, x);
      if ([0, 1, 4, 5].includes(k)) assertClose(got, PLAN_COLORS.thrown, 1e-7, `thrown ${k}`);
      else if ([10, 11, 12, 13, 14, 15].includes(k)) {
        const want = tint(src, PLAN_COLORS.visible, PLAN_COLORS.visibleAlpha);
        assertClose(got, want, 1e-6, `visible ${k}`);
      } else {
        assertClose(
          got,
          tint(src, PLAN_COLORS.masked, PLAN_COLORS.maskedAlpha),
          1e-6,
          `masked ${k}`,
        );
      }
    }
  }
  // visibleAlpha 0 leaves visible pixels as they are; gray Uint8 input is promoted to RGB.
  const gray = ramp(12, 12, 1, false);
  const g = planImage(gray, plan, p, { visibleAlpha: 0 });
  const v = gray.data[11 * 12 + 11] / 255;
  assertClose(pixel(g, 11, 11), [v, v, v], 1e-7, "gray visible");
  assert.deepEqual(PLAN_LEGEND.map((e) => e.label), ["masked", "thrown", "visible"]);
  assert.throws(() => planImage(ramp(10, 10, 3, true), plan, p), /divide/);
  assert.throws(() => planImage(img, { ...plan, thrown: [16] }, p), /patch index/);
});

Deno.test("hogGlyphImage() draws each bin as a line along its edge; visible dimmed, thrown grey", () => {
  // a 4 x 4 grid of 4 px patches with 2 x 2 cells of 2 px, one channel, 9 bins; upscale 4
  const layout = {
    kind: "hog" as const,
    dim: 36,
    cellsPerSide: 2,
    cellSize: 2,
    channels: 1,
    bins: 9,
  };
  const img: Raster = { data: new Float32Array(256).fill(0.8), height: 16, width: 16, channels: 1 };
  const plan = { masked: Int32Array.of(5), thrown: Int32Array.of(0), visible: Int32Array.of(1) };
  // patch 5's cell (0, 0): bin 4 (gradients 80..100 deg) = a horizontal edge, full brightness;
  // cell (1, 1): bin 0 (gradients 0..20 deg) = a near-vertical edge, half brightness
  const hog = new Float32Array(36);
  hog[4] = 1;
  hog[3 * 9 + 0] = 0.5;
  assert.equal(hogUpscale(2), 4);
  const out = hogGlyphImage(img, plan, hog, layout, 4, { maskedShade: 0 });
  assert.deepEqual([out.height, out.width, out.channels], [64, 64, 3]);
  // patch 5 spans pixels 16..31 in both axes (upscaled); cell (0, 0) is rows / cols 16..23
  const lit = (y0: number, x0: number) => {
    const on: [number, number, number][] = [];
    for (let y = y0; y < y0 + 8; y++) {
      for (let x = x0; x < x0 + 8; x++) {
        const v = out.data[(y * 64 + x) * 3];
        if (v > 0) on.push([y - y0, x - x0, v]);
      }
    }
    return on;
  };
  const h = lit(16, 16);
  assert.ok(h.length >= 7 && h.every(([y, , v]) => y === 4 && v === 1), JSON.stringify(h));
  const vert = lit(24, 24);
  assert.ok(vert.length >= 7 && vert.every(([, x, v]) => (x === 3 || x === 4) && v === 0.5));
  assert.deepEqual(lit(16, 24), []); // empty cells stay dark
  const shaded = hogGlyphImage(img, plan, hog, layout, 4);
  assertClose(pixel(shaded, 16, 24), PLAN_COLORS.masked.map((v) => 0.2 * v), 1e-6, "shade");
  assertClose(pixel(out, 0, 0), PLAN_COLORS.thrown, 1e-7, "thrown");
  assertClose(pixel(out, 0, 20), [0.28, 0.28, 0.28], 1e-6, "visible, dimmed");
  assertClose(pixel(out, 0, 40), [0.8, 0.8, 0.8], 1e-6, "other patches as they are");
  // a row: image, plan, input, predicted, target, every cell at the glyph scale
  const row = hogRow(img, plan, hog, hog, layout, 4);
  assert.deepEqual(row.map((r) => [r.height, r.width]), Array(5).fill([64, 64]));
  assert.throws(() => hogGlyphImage(img, plan, hog.slice(1), layout, 4), /expected Km x F/);
});

Deno.test("maskedImage() greys out every patch that is not visible", () => {
  const img = ramp(4, 4, 1, true);
  const out = maskedImage(img, [1, 2], 2);
  assert.equal(out.channels, 1);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      const k = Math.floor(y / 2) * 2 + Math.floor(x / 2);
      const want = k === 1 || k === 2 ? img.data[y * 4 + x] : PLAN_COLORS.hidden[0];
      assert.ok(Math.abs(out.data[y * 4 + x] - want) < 1e-7, `(${y}, ${x})`);
    }
  }
});

Deno.test("pasteReconstruction() puts prediction row r at patch idx[r] in (row, col, ch) order", () => {
  const p = 2;
  const C = 3;
  const img: Raster = { data: new Float32Array(4 * 6 * C), height: 4, width: 6, channels: C };
  const idx = [4, 0]; // grid is 2 x 3: patch 4 = (row 1, col 1), patch 0 = (0, 0)
  const P = p * p * C;
  const pred = new Float32Array(idx.length * P);
  for (let i = 0; i < pred.length; i++) pred[i] = (i + 1) / 100;
  const out = pasteReconstruction(img, pred, idx, p);
  for (let r = 0; r < idx.length; r++) {
    const gy = Math.floor(idx[r] / 3) * p;
    const gx = (idx[r] % 3) * p;
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        const want = Array.from({ length: C }, (_, c) => pred[r * P + (i * p + j) * C + c]);
        assert.deepEqual(pixel(out, gy + i, gx + j), want);
      }
    }
  }
  // Untouched patches stay as they were (zero here).
  assert.deepEqual(pixel(out, 0, 2), [0, 0, 0]);
  assert.throws(() => pasteReconstruction(img, pred.subarray(1), idx, p), /expected K x p\*p\*C/);
});

// ---- run charts and run folders ---------------------------------------------------------

function stepRecords(n: number, phaseAt: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let s = 1; s <= n; s++) {
    out.push({
      type: "step",
      epoch: Math.floor((s - 1) / 4),
      step: s,
      loss: 2 / s,
      lr: 1e-4 * Math.min(1, s / 4),
      phase: s > phaseAt ? "amt" : "warmup",
    });
    if (s % 4 === 0) {
      out.push({
        type: "epoch",
        epoch: s / 4 - 1,
        step: s,
        loss: 2 / s,
        phase: s > phaseAt ? "amt" : "warmup",
        knnTop1: 0.3 + s / 100,
      });
    }
  }
  return out;
}

Deno.test("lossCurveChart() / lrCurveChart() plot step records and mark phase changes", async () => {
  const records = stepRecords(12, 4);
  assert.deepEqual(phaseChanges(records), [{ x: 4, label: "amt" }]);
  const loss = await lossCurveChart(records)!;
  assert.equal(marks(loss, "line mark"), 2, "logged steps + epoch means");
  assert.equal(points(loss).length, 12 + 3);
  assert.equal(marks(loss, "rule mark"), 1);
  const lr = await lrCurveChart(records)!;
  assert.equal(points(lr).length, 12);
  assert.ok(lr.includes(">1.0e-4</text>"), "lr ticks in exponent notation");
  assert.equal(lossCurveChart([{ type: "epoch", epoch: 0, loss: 1 }]), null);
});

Deno.test("epochSeries() and accuracyCurveChart() show 1-based epochs, fractions as percent", async () => {
  const recs = [
    { epoch: 0, testTop1: 0.5 },
    { epoch: 1, testTop1: 0.6 },
    { epoch: 1, testTop1: 0.62 }, // re-logged after a resume: the last one wins
    { epoch: 2, trainTop1: 0.9 },
  ];
  assert.deepEqual(epochSeries(recs, "testTop1"), { epochs: [1, 2], values: [0.5, 0.62] });
  assert.deepEqual(epochSeries([{ epoch: 3, testTop1: 1 }], "testTop1").epochs, [3]);
  const svg = await accuracyCurveChart([
    { name: "linear probe", epochs: [1, 2, 3], top1: [0.5, 0.6, 0.65] },
    { name: "fine-tune", epochs: [1, 2], top1: [0.7, 0.8] },
  ])!;
  assert.equal(marks(svg, "line mark"), 2);
  assert.equal(points(svg).length, 5);
  assert.ok(/>\d+%<\/text>/.test(svg), "percent ticks");
  assert.equal(accuracyCurveChart([{ name: "empty", epochs: [], top1: [] }]), null);
});

Deno.test("planProbabilities() matches the sampler's group sizes and follows the weights", () => {
  const L = 16;
  const draws = 4000;
  const uniform = planProbabilities(new Float32Array(L).fill(1), {
    maskRatio: 0.5,
    throwRatio: 0.25,
    strategy: "random",
    rng: makeRng(1),
    draws,
  });
  // Binomial standard error <= 0.5 / sqrt(4000) ~ 0.008: allow 5 of them.
  for (let i = 0; i < L; i++) {
    assert.ok(Math.abs(uniform.masked[i] - 0.5) < 0.04, `masked[${i}] ${uniform.masked[i]}`);
    assert.ok(Math.abs(uniform.thrown[i] - 0.25) < 0.04, `thrown[${i}] ${uniform.thrown[i]}`);
    const sum = uniform.masked[i] + uniform.thrown[i] + uniform.visible[i];
    assert.ok(Math.abs(sum - 1) < 1e-4, `sum ${sum}`);
  }
  const w = new Float32Array(L).fill(0.05);
  w[5] = 1;
  const amt = planProbabilities(w, { maskRatio: 0.25, throwRatio: 0.25, rng: makeRng(2), draws });
  assert.ok(
    amt.masked[5] > 0.9,
    `the most attended patch is almost always masked: ${amt.masked[5]}`,
  );
  assert.throws(() => planProbabilities(w, { maskRatio: 0.5, throwRatio: 0, draws: 0 }), /draws/);
});

Deno.test("writeCurveFigures() writes loss, lr, kNN and probe / fine-tune curves from files", async () => {
  await withTmp(async (dir) => {
    const lines = (rs: unknown[]) => rs.map((r) => JSON.stringify(r)).join("\n") + "\n";
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines(stepRecords(8, 4)) + "{torn");
    await Deno.mkdir(`${dir}/linprobe`);
    await Deno.writeTextFile(
      `${dir}/linprobe/metrics.jsonl`,
      lines(
        [0, 1, 2].map((e) => ({
          type: "epoch",
          epoch: e,
          testTop1: 0.5 + e / 10,
          trainTop1: 0.6 + e / 10,
        })),
      ),
    );
    const written = await writeCurveFigures(dir);
    const names = written.map((p) => p.slice(dir.length + 1)).sort();
    assert.deepEqual(names, [
      "plots/accuracy.png",
      "plots/knn.png",
      "plots/loss.png",
      "plots/lr.png",
    ]);
    const png = await readPng(`${dir}/plots/accuracy.png`);
    assert.deepEqual([png.height, png.width], [800, 1280]);
    assert.ok(darkPixels(png) > 2000);
  });
});

Deno.test("writeAllRunFigures() regenerates curves and the reconstruction grid from a run folder", async () => {
  await withTmp(async (dir) => {
    const { config } = resolveConfig({
      argv: [
        ...TINY_MODEL_ARGS,
        "--data.limit=32",
        "--train.epochs=2",
        "--train.logEvery=1",
        "--train.ckptEvery=0",
        "--amt.strategy=amt",
        "--amt.warmup=1",
        "--amt.interval=1",
        "--amt.maskRatio=0.45",
        "--amt.throwRatio=0.4",
        "--run.vizImages=3",
        `--run.dir=${dir}/run`,
      ],
    });
    await pretrain(config, { quiet: true, figures: false });
    // Whatever loading a run leaves behind by itself (nothing, ideally) is not ours to count.
    const b0 = tf.memory().numTensors;
    (await loadRun(`${dir}/run`)).model.dispose();
    const loadLeak = tf.memory().numTensors - b0;
    const logs: string[] = [];
    const before = tf.memory().numTensors;
    const r = await writeAllRunFigures(`${dir}/run`, { log: (s) => logs.push(s) });
    assert.equal(tf.memory().numTensors - before, loadLeak, "figures leave no tensors behind");
    assert.deepEqual(r.skipped, [], logs.join("\n"));
    const names = r.written.map((p) => p.slice(`${dir}/run/`.length)).sort();
    assert.deepEqual(names, ["plots/loss.png", "plots/lr.png", "plots/reconstruction.png"]);
    // 3 rows x 4 columns of 16 px images scaled 6x (96 px) with 2 px padding, plus the labels.
    const grid = await readPng(`${dir}/run/plots/reconstruction.png`);
    assert.ok(grid.width >= 4 * 96 + 5 * 2, String(grid.width));
    assert.ok(grid.height > 3 * 96 + 4 * 2, String(grid.height));
    // The first column is the image itself: a synthetic object (bright) on a dark background.
    let bright = 0;
    for (let i = 0; i < grid.data.length; i += grid.channels) if (grid.data[i] > 150) bright++;
    assert.ok(bright > 500, `bright pixels ${bright}`);

    // Without a checkpoint the curves are still made and the grid is skipped with a reason.
    await Deno.remove(`${dir}/run/checkpoints`, { recursive: true });
    const r2 = await writeAllRunFigures(`${dir}/run`, { log: () => {} });
    assert.equal(r2.written.length, 2);
    assert.match(r2.skipped[0], /reconstruction\.png: .*no checkpoint/);
    await assert.rejects(() => writeAllRunFigures(`${dir}/nowhere`), /is it a run folder/);
  });
});
