import assert from "node:assert/strict";
import { patchify, unpatchify } from "../lib/vit/patch.ts";
import { sincosPosEmbed2d } from "../lib/vit/pos_embed.ts";
import { resolveShape } from "../lib/vit/vit.ts";
import { randomMaskCounts, randomMaskPlan } from "../lib/mim/random.ts";
import { makeRng } from "../lib/util/rng.ts";

Deno.test("patchify() and unpatchify() round-trip and place pixels in (row, col, channel) order", () => {
  const B = 2, S = 8, C = 3, p = 4;
  const rng = makeRng(1, "x");
  const images = Float32Array.from({ length: B * S * S * C }, () => rng());
  const patches = patchify(images, B, S, C, p);
  assert.equal(patches.length, images.length);
  assert.deepEqual(unpatchify(patches, B, S, C, p), images);
  // image 1, pixel (y=5, x=2), channel 1 lies in patch (1, 0) = 2 at in-patch (1, 2)
  const L = (S / p) ** 2, P = p * p * C;
  const src = ((1 * S + 5) * S + 2) * C + 1;
  const dst = (1 * L + 2) * P + (1 * p + 2) * C + 1;
  assert.equal(patches[dst], images[src]);
  assert.throws(() => patchify(images, B, S, C, 3), /does not divide/);
});

Deno.test("sincosPosEmbed2d() matches the closed form", () => {
  const D = 16, g = 5;
  const table = sincosPosEmbed2d(D, g);
  const q = D / 4;
  for (const [r, c] of [[0, 0], [2, 3], [4, 1]]) {
    for (let k = 0; k < q; k++) {
      const w = Math.pow(10000, -k / q);
      const row = (r * g + c) * D;
      assert.ok(Math.abs(table[row + k] - Math.sin(c * w)) < 1e-6);
      assert.ok(Math.abs(table[row + q + k] - Math.cos(c * w)) < 1e-6);
      assert.ok(Math.abs(table[row + 2 * q + k] - Math.sin(r * w)) < 1e-6);
      assert.ok(Math.abs(table[row + 3 * q + k] - Math.cos(r * w)) < 1e-6);
    }
  }
  assert.throws(() => sincosPosEmbed2d(10, 2), /divisible by 4/);
});

Deno.test("randomMaskPlan() partitions every row with the floor counts and is seeded", () => {
  const B = 16, L = 49;
  const plan = randomMaskPlan(B, L, 0.75, makeRng(3, "m"));
  const { masked, visible } = randomMaskCounts(L, 0.75);
  assert.equal(visible, 13); // the one count rule: floor(49 * 0.75) = 36 masked
  assert.equal(plan.numMasked, masked);
  assert.equal(plan.numVisible, visible);
  for (let b = 0; b < B; b++) {
    const all = [
      ...plan.masked.subarray(b * masked, (b + 1) * masked),
      ...plan.visible.subarray(b * visible, (b + 1) * visible),
    ].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: L }, (_, i) => i));
  }
  const again = randomMaskPlan(B, L, 0.75, makeRng(3, "m"));
  assert.deepEqual(again.masked, plan.masked);
  const other = randomMaskPlan(B, L, 0.75, makeRng(4, "m"));
  assert.notDeepEqual(other.masked, plan.masked);
});

Deno.test("randomMaskPlan() masks each patch with probability nM/L", () => {
  // 4000 rows; each patch's masked count ~ Binomial(4000, 37/49): sd ~ 27; tolerance 5 sd.
  const B = 4000, L = 49;
  const plan = randomMaskPlan(B, L, 0.75, makeRng(9, "u"));
  const counts = new Float64Array(L);
  for (const i of plan.masked) counts[i]++;
  const p = plan.numMasked / L;
  const sd = Math.sqrt(B * p * (1 - p));
  for (let i = 0; i < L; i++) {
    assert.ok(Math.abs(counts[i] - B * p) < 5 * sd, `patch ${i}: ${counts[i]}`);
  }
});

Deno.test("resolveShape() applies overrides and refuses a patch that does not divide the image", () => {
  const s = resolveShape({ preset: "vit-tiny-32", depth: 2 }, 3);
  assert.equal(s.depth, 2);
  assert.equal(s.dim, 192);
  assert.throws(
    () => resolveShape({ preset: "vit-tiny-32", patchSize: 5 }, 3),
    /patchSize 5 does not divide/,
  );
  assert.throws(() => resolveShape({ preset: "vit-nope" }, 3), /Valid presets/);
});
