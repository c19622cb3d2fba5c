/** Tests of per-patch weights and the SimMIM unit-to-patch expansion. */

import assert from "node:assert/strict";
import { batchPatchWeights, expandUnitPlan, patchWeights } from "../lib/amt/weights.ts";
import { sampleMaskPlans } from "../lib/amt/sampler.ts";
import type { Raster } from "../lib/data/types.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { makeRng } from "../lib/util/rng.ts";

function map(size: number, f: (y: number, x: number) => number): Raster {
  const data = new Float32Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data[y * size + x] = f(y, x);
  return { data, height: size, width: size, channels: 1 };
}

Deno.test("patchWeights() sums the map inside each cell, row-major", () => {
  // 4x4 map of 0..15 (/16), 2x2 cells: {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
  const w = patchWeights(map(4, (y, x) => (y * 4 + x) / 16), 2);
  assert.deepEqual(Array.from(w), [10 / 16, 18 / 16, 42 / 16, 50 / 16]);
  assert.deepEqual(Array.from(patchWeights(map(4, () => 1), 1)), Array(16).fill(1));
  assert.deepEqual(Array.from(patchWeights(map(4, () => 0.25), 4)), [4]);
});

Deno.test("patchWeights() gives weight only to the patches covering an object", () => {
  // 16x16 map, 4 px patches (4x4 grid); the object is rows 4..11, cols 8..15.
  const aligned = patchWeights(map(16, (y, x) => (y >= 4 && y < 12 && x >= 8 ? 1 : 0)), 4);
  const expected = new Float32Array(16);
  for (const i of [6, 7, 10, 11]) expected[i] = 16;
  assert.deepEqual(aligned, expected);
  // An object straddling cells: rows 2..5, cols 2..5 puts 2x2 px in each of cells 0, 1, 4, 5.
  const straddle = patchWeights(map(16, (y, x) => (y >= 2 && y < 6 && x >= 2 && x < 6 ? 1 : 0)), 4);
  const expected2 = new Float32Array(16);
  for (const i of [0, 1, 4, 5]) expected2[i] = 4;
  assert.deepEqual(straddle, expected2);
});

Deno.test("patchWeights() sums a Uint8Array map as stored and a 224 px map accurately", () => {
  const u8: Raster = { data: new Uint8Array(16).fill(255), height: 4, width: 4, channels: 1 };
  assert.deepEqual(Array.from(patchWeights(u8, 2)), [1020, 1020, 1020, 1020]);
  const rng = makeRng(3, "map");
  const big = map(224, () => rng());
  const w = patchWeights(big, 16);
  assert.equal(w.length, 196);
  let exact = 0; // cell 100 = row 7, col 2, summed in float64 here
  for (let y = 112; y < 128; y++) for (let x = 32; x < 48; x++) exact += big.data[y * 224 + x];
  assert.equal(w[100], Math.fround(exact));
});

Deno.test("patchWeights() rejects a unit that does not divide the map and multi-channel maps", () => {
  assert.throws(() => patchWeights(map(10, () => 1), 4), /unit=4 does not divide.*10x10/);
  assert.throws(() => patchWeights(map(8, () => 1), 0), /unit must be a positive integer/);
  const rgb: Raster = { data: new Float32Array(48), height: 4, width: 4, channels: 3 };
  assert.throws(() => patchWeights(rgb, 2), /1 channel, got channels=3/);
  const short: Raster = { data: new Float32Array(15), height: 4, width: 4, channels: 1 };
  assert.throws(() => patchWeights(short, 2), /15 values/);
});

Deno.test("batchPatchWeights() stacks patchWeights rows and fills a given buffer", () => {
  const rng = makeRng(4, "batch");
  const maps = [0, 1, 2].map(() => map(8, () => rng()));
  const w = batchPatchWeights(maps, 2);
  assert.equal(w.length, 3 * 16);
  maps.forEach((m, b) => assert.deepEqual(w.subarray(b * 16, (b + 1) * 16), patchWeights(m, 2)));
  const out = new Float32Array(48).fill(-1);
  assert.equal(batchPatchWeights(maps, 2, out), out);
  assert.deepEqual(out, w);
  assert.throws(() => batchPatchWeights(maps, 2, new Float32Array(47)), /out has length 47/);
  assert.throws(() => batchPatchWeights([maps[0], map(4, () => 1)], 2), /maps\[1\] is 4x4/);
  assert.throws(() => batchPatchWeights([], 2), /empty/);
});

function unitOf(patch: number, k: number, unitGridWidth: number): number {
  const patchWidth = unitGridWidth * k;
  const py = Math.floor(patch / patchWidth), px = patch % patchWidth;
  return Math.floor(py / k) * unitGridWidth + Math.floor(px / k);
}

function groupOf(plan: MaskPlan, b: number): Map<number, string> {
  const out = new Map<number, string>();
  for (
    const [g, n] of [
      ["masked", plan.numMasked],
      ["thrown", plan.numThrown],
      ["visible", plan.numVisible],
    ] as const
  ) {
    for (const i of plan[g].subarray(b * n, (b + 1) * n)) out.set(i, g);
  }
  return out;
}

Deno.test("expandUnitPlan() maps 16 units of an 8x8-patch grid to 64 patches", () => {
  const B = 3;
  const units = sampleMaskPlans(new Float32Array(B * 16).fill(1), B, {
    maskRatio: 0.5,
    throwRatio: 0.25,
    counting: "ceil",
    rng: makeRng(5, "units"),
  });
  const p = expandUnitPlan(units, 2);
  assert.deepEqual(
    [p.batch, p.numPatches, p.numMasked, p.numThrown, p.numVisible],
    [B, 64, 32, 16, 16],
  );
  for (let b = 0; b < B; b++) {
    const unitGroup = groupOf(units, b);
    const patchGroup = groupOf(p, b);
    assert.equal(patchGroup.size, 64); // a partition of 0..63
    for (let i = 0; i < 64; i++) assert.equal(patchGroup.get(i), unitGroup.get(unitOf(i, 2, 4)));
    for (const [g, n] of [["masked", 32], ["thrown", 16], ["visible", 16]] as const) {
      const row = Array.from(p[g].subarray(b * n, (b + 1) * n));
      assert.deepEqual(row, [...row].sort((x, y) => x - y), `row ${b} ${g} not sorted`);
    }
  }
});

Deno.test("expandUnitPlan() handles k=1, non-square grids and bad input", () => {
  const plan: MaskPlan = {
    batch: 1,
    numPatches: 6, // 2 x 3 units
    numMasked: 2,
    numThrown: 1,
    numVisible: 3,
    masked: Int32Array.of(1, 5),
    thrown: Int32Array.of(3),
    visible: Int32Array.of(0, 2, 4),
  };
  assert.deepEqual(expandUnitPlan(plan, 1, 3), plan);
  // Units 3 wide, k = 2: patch grid 4 x 6. Unit 5 = (1, 2) -> patches rows 2-3, cols 4-5.
  const p = expandUnitPlan(plan, 2, 3);
  assert.deepEqual(Array.from(p.masked), [2, 3, 8, 9, 16, 17, 22, 23]);
  assert.deepEqual(Array.from(p.thrown), [12, 13, 18, 19]);
  assert.throws(() => expandUnitPlan(plan, 2), /not a square unit grid; pass gridWidth/);
  assert.throws(() => expandUnitPlan(plan, 2, 4), /gridWidth=4 does not divide/);
  assert.throws(() => expandUnitPlan(plan, 0, 3), /k .* must be a positive integer/);
  const broken = { ...plan, masked: Int32Array.of(1, 9) };
  assert.throws(() => expandUnitPlan(broken, 2, 3), /plan.masked\[0, 1\] = 9/);
});
