import assert from "node:assert/strict";
import type { Raster } from "../lib/data/types.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import {
  barChart,
  colorize,
  colormapRgb,
  confusionMatrixSvg,
  escapeXml,
  imageGrid,
  imageGridPng,
  lineChart,
  logTicks,
  maskedImage,
  niceTicks,
  overlay,
  pasteReconstruction,
  PLAN_COLORS,
  planForImage,
  planImage,
  readPng,
  scatterChart,
  svgToPng,
  writePng,
} from "../lib/viz/mod.ts";

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

/** Number pairs in a polyline's `points` attribute, per polyline. */
function polylinePointCounts(svg: string): number[] {
  return [...svg.matchAll(/<polyline class="series"[^>]*points="([^"]*)"/g)].map((m) =>
    m[1].trim() === "" ? 0 : m[1].trim().split(/\s+/).length
  );
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

Deno.test("niceTicks() gives 1/2/5 x 10^k steps covering the data range", () => {
  const cases: [number, number][] = [
    [0.13, 0.87],
    [0, 1],
    [-3.2, 17.9],
    [0.0012, 0.0047],
    [12345, 98765],
    [0.712, 0.7135],
    [5, 5],
    [-1e-3, 2e-3],
    [1, 300],
  ];
  for (const [lo, hi] of cases) {
    const t = niceTicks(lo, hi, 6);
    assert.ok(t.min <= lo && t.max >= hi, `[${lo}, ${hi}] → ${t.values}`);
    assert.ok(t.values.length >= 2 && t.values.length <= 8, `[${lo}, ${hi}] → ${t.values}`);
    const mant = t.step / 10 ** Math.floor(Math.log10(t.step) + 1e-9);
    assert.ok([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6), `step ${t.step}`);
    for (let i = 1; i < t.values.length; i++) {
      assert.ok(Math.abs(t.values[i] - t.values[i - 1] - t.step) < t.step * 1e-6);
      assert.ok(Math.abs(t.values[i] / t.step - Math.round(t.values[i] / t.step)) < 1e-6);
    }
  }
  assert.deepEqual(niceTicks(0.13, 0.87).values, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(NaN, 3).values, [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

Deno.test("logTicks() covers the range with decades", () => {
  const t = logTicks(0.003, 250);
  assert.deepEqual(t.values, [0.001, 0.01, 0.1, 1, 10, 100, 1000]);
  assert.ok(t.minor.includes(0.002) && t.minor.includes(500));
  const one = logTicks(2, 8);
  assert.deepEqual(one.values, [1, 10]);
  const wide = logTicks(1e-9, 1e9, 8);
  assert.ok(wide.values.length <= 8, String(wide.values));
  assert.ok(wide.min <= 1e-9 && wide.max >= 1e9);
});

Deno.test("lineChart() draws one polyline per series with its finite points and renders", async () => {
  const svg = lineChart({
    title: "Pre-training loss <MAE & AMT>",
    xLabel: "epoch",
    yLabel: "loss",
    width: 500,
    height: 320,
    series: [
      { name: "MAE", x: [1, 2, 3, 4, 5], y: [1.0, 0.8, 0.7, 0.65, 0.6] },
      { name: "MAE+AMT", x: [1, 2, 3, 4, 5], y: [0.9, NaN, 0.6, null, 0.5] },
      { name: "SimMIM", x: [1, 2, 3], y: [1.2, 1.1, 1.05] },
    ],
  });
  assert.deepEqual(polylinePointCounts(svg), [5, 3, 3]);
  assert.ok(svg.includes("&lt;MAE &amp; AMT&gt;"), "title escaped");
  assert.ok(!svg.includes("NaN"), "no NaN coordinates");
  for (const name of ["MAE", "MAE+AMT", "SimMIM", "epoch", "loss"]) {
    assert.ok(svg.includes(`>${name}</text>`), name);
  }
  await withTmp(async (dir) => {
    await svgToPng(svg, `${dir}/line.png`);
    const png = await readPng(`${dir}/line.png`);
    assert.deepEqual([png.height, png.width], [320, 500]);
    let dark = 0;
    for (let i = 0; i < png.data.length; i += png.channels) if (png.data[i] < 128) dark++;
    assert.ok(dark > 500, `expected drawn pixels, got ${dark}`);
  });
});

Deno.test("lineChart() logY ticks decades and skips non-positive values", () => {
  const svg = lineChart({
    title: "loss",
    xLabel: "step",
    yLabel: "MSE",
    logY: true,
    series: [{ name: "a", x: [0, 1, 2, 3, 4], y: [5, 0.5, 0.05, 0, -1] }],
  });
  assert.deepEqual(polylinePointCounts(svg), [3]);
  const yticks = [...svg.matchAll(/class="ytick"[^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(yticks, ["0.01", "0.1", "1", "10"]);
});

Deno.test("barChart() draws non-null bars, marks missing values, escapes names", async () => {
  const svg = barChart({
    title: "Linear probe accuracy",
    yLabel: "top-1 (%)",
    groups: ["MAE", "MAE+AMT", "SimMIM", "SimMIM+AMT"],
    series: [
      { name: "ours", values: [71.2, 73.4, null, 70.1] },
      { name: "paper <ref>", values: [68, 70.5, 66.1, NaN] },
    ],
  });
  assert.equal(count(svg, /<rect class="bar"/g), 6);
  assert.equal(count(svg, /class="missing"/g), 2);
  assert.ok(svg.includes("paper &lt;ref&gt;"));
  assert.ok(!svg.includes("<ref>"));
  await withTmp(async (dir) => {
    await svgToPng(svg, `${dir}/bar.png`);
    const png = await readPng(`${dir}/bar.png`);
    assert.deepEqual([png.height, png.width], [400, 640]);
  });
});

Deno.test("scatterChart() and confusionMatrixSvg() draw every element", async () => {
  const sc = scatterChart({
    title: "cost vs accuracy",
    xLabel: "GPU hours",
    yLabel: "accuracy",
    points: [
      { x: 10, y: 0.7, label: "MAE" },
      { x: 6, y: 0.72, label: "MAE+AMT" },
      { x: NaN, y: 0.5, label: "broken" },
    ],
  });
  assert.equal(count(sc, /<circle class="point"/g), 2);
  assert.ok(!sc.includes("broken"));
  const cm = confusionMatrixSvg([[5, 1, 0], [2, 7, 1], [0, 0, 9]], ["T-shirt", "Trouser", "Bag"], {
    title: "confusion",
  });
  assert.equal(count(cm, /<rect class="cell"/g), 9);
  assert.ok(cm.includes(">0.83<"), "row-normalised 5/6");
  await withTmp(async (dir) => {
    await svgToPng(cm, `${dir}/cm.png`);
    const png = await readPng(`${dir}/cm.png`);
    assert.ok(png.width > 100 && png.height > 100);
  });
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

Deno.test("planImage() paints thrown flat, tints masked, keeps visible", () => {
  const p = 3;
  const img = ramp(12, 12, 3, true);
  const plan = planForImage(testPlan(), 1);
  assert.deepEqual(Array.from(plan.thrown), [0, 1, 4, 5]);
  const out = planImage(img, plan, p);
  assert.deepEqual([out.height, out.width, out.channels], [12, 12, 3]);
  const a = PLAN_COLORS.maskedAlpha;
  for (let y = 0; y < 12; y++) {
    for (let x = 0; x < 12; x++) {
      const k = Math.floor(y / p) * 4 + Math.floor(x / p);
      const got = pixel(out, y, x);
      if ([0, 1, 4, 5].includes(k)) assertClose(got, PLAN_COLORS.thrown, 1e-7, `thrown ${k}`);
      else if ([10, 11, 12, 13, 14, 15].includes(k)) {
        assert.deepEqual(got, pixel(img, y, x), `visible ${k}`);
      } else {
        const want = pixel(img, y, x).map((v, c) => (1 - a) * v + a * PLAN_COLORS.masked[c]);
        assertClose(got, want, 1e-6, `masked ${k}`);
      }
    }
  }
  // Gray Uint8 input is promoted to RGB; visible pixels keep their value / 255.
  const gray = ramp(12, 12, 1, false);
  const g = planImage(gray, plan, p);
  const v = gray.data[11 * 12 + 11] / 255;
  assertClose(pixel(g, 11, 11), [v, v, v], 1e-7, "gray visible");
  assert.throws(() => planImage(ramp(10, 10, 3, true), plan, p), /divide/);
  assert.throws(() => planImage(img, { ...plan, thrown: [16] }, p), /patch index/);
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
