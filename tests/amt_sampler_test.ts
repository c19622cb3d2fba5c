/**
 * Tests of the AMT mask sampler.
 *
 * Statistical claims use fixed seeds (makeRng), so they cannot flake; each
 * states its tolerance. The Plackett-Luce law is computed here by
 * enumerating permutations, independently of the sampler's key trick.
 */

import assert from "node:assert/strict";
import {
  planCounts,
  sampleMaskPlan,
  sampleMaskPlans,
  STRATEGIES,
  type Strategy,
} from "../lib/amt/sampler.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { makeRng } from "../lib/util/rng.ts";

type Group = "masked" | "thrown" | "visible";
const GROUPS: Group[] = ["masked", "thrown", "visible"];

/** Asserts counts, ranges, ascending rows and that each row partitions 0..L-1. */
function assertPartition(plan: MaskPlan): void {
  const { batch, numPatches: L } = plan;
  assert.equal(plan.numMasked + plan.numThrown + plan.numVisible, L);
  assert.equal(plan.masked.length, batch * plan.numMasked);
  assert.equal(plan.thrown.length, batch * plan.numThrown);
  assert.equal(plan.visible.length, batch * plan.numVisible);
  const seen = new Uint8Array(L);
  for (let b = 0; b < batch; b++) {
    seen.fill(0);
    for (
      const [arr, n] of [
        [plan.masked, plan.numMasked],
        [plan.thrown, plan.numThrown],
        [plan.visible, plan.numVisible],
      ] as const
    ) {
      for (let j = 0; j < n; j++) {
        const i = arr[b * n + j];
        assert.ok(i >= 0 && i < L, `index ${i} outside 0..${L - 1}`);
        assert.equal(seen[i], 0, `patch ${i} appears twice in row ${b}`);
        seen[i] = 1;
        if (j > 0) assert.ok(arr[b * n + j - 1] < i, `row ${b} is not sorted ascending`);
      }
    }
  }
}

/** Per-patch frequency of each group over the rows of a plan: freq[group][i]. */
function frequencies(plan: MaskPlan): Record<Group, Float64Array> {
  const L = plan.numPatches;
  const out = {} as Record<Group, Float64Array>;
  for (const g of GROUPS) {
    const f = new Float64Array(L);
    for (const i of plan[g]) f[i]++;
    for (let i = 0; i < L; i++) f[i] /= plan.batch;
    out[g] = f;
  }
  return out;
}

function tile(w: number[], rows: number): Float32Array {
  const out = new Float32Array(w.length * rows);
  for (let b = 0; b < rows; b++) out.set(w, b * w.length);
  return out;
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let k = 0; k <= p.length; k++) out.push([...p.slice(0, k), n - 1, ...p.slice(k)]);
  }
  return out;
}

/**
 * Exact Plackett-Luce probability of an order of `items`: each pick has
 * probability w / (sum of the weights left); when only zero weights are
 * left, each of them is equally likely (the spec's rule for zeros).
 */
function plProbability(order: number[], w: number[]): number {
  let p = 1;
  let left = order.reduce((s, i) => s + w[i], 0);
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    p *= left > 0 ? w[i] / left : 1 / (order.length - k);
    left -= w[i];
  }
  return p;
}

function subsets(n: number, size: number): number[][] {
  if (size === 0) return [[]];
  if (n < size) return [];
  return [...subsets(n - 1, size), ...subsets(n - 1, size - 1).map((s) => [...s, n - 1])];
}

/** Exact per-patch group probabilities of a strategy, by enumeration. */
function exactLaw(
  w: number[],
  nM: number,
  nT: number,
  strategy: Strategy,
): Record<Group, number[]> {
  const n = w.length;
  const nV = n - nM - nT;
  const law: Record<Group, number[]> = {
    masked: Array(n).fill(0),
    thrown: Array(n).fill(0),
    visible: Array(n).fill(0),
  };
  const add = (ids: number[], g: Group, p: number) => ids.forEach((i) => (law[g][i] += p));
  if (strategy === "random-throw") {
    const throws = subsets(n, nT);
    for (const thrown of throws) {
      const rest = [...Array(n).keys()].filter((i) => !thrown.includes(i));
      for (const perm of permutations(rest.length)) {
        const order = perm.map((k) => rest[k]);
        const p = plProbability(order, w) / throws.length;
        add(thrown, "thrown", p);
        add(order.slice(0, nM), "masked", p);
        add(order.slice(nM), "visible", p);
      }
    }
    return law;
  }
  for (const order of permutations(n)) {
    const p = strategy === "random" ? 1 / permutations(n).length : plProbability(order, w);
    add(order.slice(0, nM), "masked", p);
    if (strategy === "attn-throw-low") {
      add(order.slice(nM, nM + nV), "visible", p);
      add(order.slice(nM + nV), "thrown", p);
    } else {
      add(order.slice(nM, nM + nT), "thrown", p);
      add(order.slice(nM + nT), "visible", p);
    }
  }
  return law;
}

/** |freq - p| <= z binomial standard deviations (exact when p is 0 or 1). */
function assertNear(freq: number, p: number, draws: number, z: number, what: string): void {
  const sd = Math.sqrt((p * (1 - p)) / draws);
  const tol = sd === 0 ? 1e-12 : z * sd;
  assert.ok(
    Math.abs(freq - p) <= tol,
    `${what}: frequency ${freq.toFixed(5)} vs exact ${p.toFixed(5)} (tolerance ${tol.toFixed(5)})`,
  );
}

Deno.test("planCounts() follows MAE floor and SimMIM ceil counting", () => {
  assert.deepEqual(planCounts(196, 0.75, 0, "floor"), {
    numMasked: 147,
    numThrown: 0,
    numVisible: 49,
  });
  // 196*0.45 = 88.2, 196*0.85 = 166.6
  assert.deepEqual(planCounts(196, 0.45, 0.4), { numMasked: 88, numThrown: 78, numVisible: 30 });
  // SimMIM 224 px, 32 px unit: 49 units; ceil(21.56) = 22, ceil(12.74) = 13.
  assert.deepEqual(planCounts(49, 0.44, 0.26, "ceil"), {
    numMasked: 22,
    numThrown: 13,
    numVisible: 14,
  });
  assert.deepEqual(planCounts(49, 0.6, 0, "ceil"), { numMasked: 30, numThrown: 0, numVisible: 19 });
});

Deno.test("planCounts() is immune to floating error in L * ratio", () => {
  // 100 * 0.45 = 45.00000000000001 and 100 * 0.29 = 28.999999999999996.
  assert.equal(planCounts(100, 0.45, 0.4, "floor").numMasked, 45);
  assert.equal(planCounts(100, 0.45, 0.4, "floor").numThrown, 40);
  assert.equal(planCounts(100, 0.45, 0.4, "ceil").numMasked, 45);
  assert.equal(planCounts(100, 0.29, 0.1, "floor").numMasked, 29);
  assert.equal(planCounts(100, 0.29, 0.1, "ceil").numMasked, 29);
});

Deno.test("sampleMaskPlans() gives exact counts and a partition for every draw (property loop)", () => {
  const rng = makeRng(11, "property");
  for (let trial = 0; trial < 400; trial++) {
    const L = 2 + Math.floor(rng() * 300);
    const batch = 1 + Math.floor(rng() * 4);
    const strategy = STRATEGIES[trial % STRATEGIES.length];
    const counting = trial % 2 === 0 ? "floor" : "ceil";
    // Ratios that are exact multiples of 1/L must give exactly those counts.
    const nM = 1 + Math.floor(rng() * (L - 1));
    const nT = strategy === "attn-mask" ? 0 : Math.floor(rng() * (L - nM));
    const weights = new Float32Array(batch * L);
    for (let i = 0; i < weights.length; i++) weights[i] = rng() < 0.2 ? 0 : rng() * 10;
    const options = { maskRatio: nM / L, throwRatio: nT / L, strategy, counting, rng } as const;
    const plan = sampleMaskPlans(weights, batch, options);
    assert.deepEqual(
      [plan.batch, plan.numPatches, plan.numMasked, plan.numThrown, plan.numVisible],
      [batch, L, nM, nT, L - nM - nT],
      `trial ${trial}: L=${L} ${strategy} ${counting}`,
    );
    assertPartition(plan);
    // Arbitrary ratios: the counts are planCounts'.
    const r = 0.05 + rng() * 0.6;
    const t = strategy === "attn-mask" ? 0 : rng() * (0.9 - r);
    let counts;
    try {
      counts = planCounts(L, r, t, counting);
    } catch {
      continue; // too few patches for these ratios (checked in the error tests)
    }
    const plan2 = sampleMaskPlans(weights, batch, { ...options, maskRatio: r, throwRatio: t });
    assert.deepEqual(
      [plan2.numMasked, plan2.numThrown, plan2.numVisible],
      [counts.numMasked, counts.numThrown, counts.numVisible],
    );
    assertPartition(plan2);
  }
});

Deno.test("sampleMaskPlan() single rows are partitions with the right counts", () => {
  const rng = makeRng(5, "single");
  for (const strategy of STRATEGIES) {
    const t = strategy === "attn-mask" ? 0 : 0.4;
    const w = Float64Array.from({ length: 196 }, () => rng());
    const p = sampleMaskPlan(w, { maskRatio: 0.45, throwRatio: t, strategy, rng });
    const plan: MaskPlan = {
      batch: 1,
      numPatches: 196,
      numMasked: p.masked.length,
      numThrown: p.thrown.length,
      numVisible: p.visible.length,
      ...p,
    };
    assert.equal(p.masked.length, 88);
    assert.equal(p.thrown.length, t === 0 ? 0 : 78);
    assertPartition(plan);
  }
});

Deno.test("sampleMaskPlans() follows the exact Plackett-Luce law (4.5 sd per cell)", () => {
  // Tolerance: every (patch, group) frequency over N draws is within 4.5
  // binomial standard deviations sqrt(p(1-p)/N) of the exact probability,
  // obtained by enumerating all orders with PL probabilities.
  const N = 40_000;
  const cases: { w: number[]; r: number; t: number; strategy: Strategy }[] = [
    { w: [1, 2, 3, 5, 9], r: 0.4, t: 0.4, strategy: "amt" }, // 2 / 2 / 1
    { w: [1, 2, 3, 5, 9], r: 0.4, t: 0.2, strategy: "attn-throw-low" }, // 2 / 1 / 2
    { w: [1, 2, 3, 5, 9], r: 0.4, t: 0.2, strategy: "random-throw" }, // 2 / 1 / 2
    { w: [1, 2, 3, 5, 9], r: 0.4, t: 0.4, strategy: "random" },
    { w: [4, 1, 1, 2], r: 0.5, t: 0, strategy: "attn-mask" }, // 2 / 0 / 2
    { w: [0, 1, 0, 4, 2], r: 0.4, t: 0.4, strategy: "amt" }, // zeros: last, uniform among them
    { w: [3, 0, 0, 0, 0], r: 0.4, t: 0.2, strategy: "attn-throw-low" },
  ];
  for (const [c, { w, r, t, strategy }] of cases.entries()) {
    const plan = sampleMaskPlans(tile(w, N), N, {
      maskRatio: r,
      throwRatio: t,
      strategy,
      rng: makeRng(2023, "pl-law", c),
    });
    assertPartition(plan);
    const law = exactLaw(w, plan.numMasked, plan.numThrown, strategy);
    const freq = frequencies(plan);
    for (const g of GROUPS) {
      for (let i = 0; i < w.length; i++) {
        assertNear(freq[g][i], law[g][i], N, 4.5, `case ${c} (${strategy}) patch ${i} ${g}`);
      }
    }
  }
});

Deno.test("sampleMaskPlans() with strategy random is uniform and ignores weights (4.5 sd)", () => {
  const L = 49, N = 20_000;
  const w = Array.from({ length: L }, (_, i) => (i < 5 ? 100 : i % 3)); // skewed, some zeros
  const plan = sampleMaskPlans(tile(w, N), N, {
    maskRatio: 0.5,
    throwRatio: 0.25,
    strategy: "random",
    rng: makeRng(1, "uniform"),
  });
  const freq = frequencies(plan);
  for (const g of GROUPS) {
    const p = plan[g === "masked" ? "numMasked" : g === "thrown" ? "numThrown" : "numVisible"] / L;
    for (let i = 0; i < L; i++) assertNear(freq[g][i], p, N, 4.5, `patch ${i} ${g}`);
  }
});

Deno.test("sampleMaskPlans() with attn-throw-low throws the least attended patches most", () => {
  const L = 16, N = 10_000;
  const w = Array.from({ length: L }, (_, i) => (i + 1) ** 2);
  const plan = sampleMaskPlans(tile(w, N), N, {
    maskRatio: 0.25,
    throwRatio: 0.25,
    strategy: "attn-throw-low",
    rng: makeRng(3, "low"),
  });
  const freq = frequencies(plan);
  const thrown = Array.from(freq.thrown);
  assert.equal(thrown.indexOf(Math.max(...thrown)), 0, `thrown frequencies ${thrown}`);
  // Thrown frequency falls with weight over the low half (clear gaps there).
  for (let i = 1; i < 8; i++) assert.ok(thrown[i] < thrown[i - 1], `thrown ${thrown}`);
  assert.ok(thrown[L - 1] < 0.01, `most attended patch thrown ${thrown[L - 1]}`);
  // Masked favours the top.
  assert.ok(freq.masked[L - 1] > 0.5 && freq.masked[0] < 0.01, `masked ${freq.masked}`);
});

Deno.test("sampleMaskPlans() with random-throw throws uniformly but masks by weight", () => {
  const L = 16, N = 20_000;
  const w = Array.from({ length: L }, (_, i) => (i + 1) ** 2);
  const plan = sampleMaskPlans(tile(w, N), N, {
    maskRatio: 0.25,
    throwRatio: 0.25,
    strategy: "random-throw",
    rng: makeRng(4, "rthrow"),
  });
  const freq = frequencies(plan);
  // Thrown: each patch with probability 4/16 (4.5 sd per patch).
  for (let i = 0; i < L; i++) assertNear(freq.thrown[i], 0.25, N, 4.5, `patch ${i} thrown`);
  // Masked: monotone in weight at the ends, with wide margins.
  assert.ok(freq.masked[L - 1] > 0.4, `top patch masked ${freq.masked[L - 1]}`);
  assert.ok(freq.masked[0] < 0.01, `bottom patch masked ${freq.masked[0]}`);
  for (let i = 8; i < L; i++) assert.ok(freq.masked[i] > freq.masked[i - 4], `${freq.masked}`);
});

Deno.test("random-throw throws first, then masks by attention: object counts on a 7x7 map", () => {
  // A 3x3 object in the middle of a 7x7 grid (weight 1) on a background of `bg`; 45 / 40 is
  // 22 masked, 19 thrown, 8 visible. The paper's reading (the toolkit's `random-throw`): 19
  // thrown uniformly, so 9 * 30 / 49 = 5.51 object patches survive, and attention masks nearly
  // all of them. The other reading ("mask by attention, then throw from the rest") masks what
  // `amt` masks: 9 with a zero background, 8.8 with bg = 0.1.
  const L = 49, N = 4000;
  const object = new Uint8Array(L);
  for (let r = 2; r < 5; r++) for (let c = 2; c < 5; c++) object[r * 7 + c] = 1;
  const meanObjectMasked = (strategy: Strategy, bg: number) => {
    const w = new Float32Array(L);
    for (let i = 0; i < L; i++) w[i] = object[i] ? 1 : bg;
    const rows = new Float32Array(N * L);
    for (let b = 0; b < N; b++) rows.set(w, b * L);
    const plan = sampleMaskPlans(rows, N, {
      maskRatio: 0.45,
      throwRatio: 0.4,
      strategy,
      rng: makeRng(11, strategy, bg),
    });
    assert.deepEqual([plan.numMasked, plan.numThrown, plan.numVisible], [22, 19, 8]);
    const per = new Float64Array(N);
    for (let k = 0; k < plan.masked.length; k++) per[Math.floor(k / 22)] += object[plan.masked[k]];
    const mean = per.reduce((a, x) => a + x, 0) / N;
    const sd = Math.sqrt(per.reduce((a, x) => a + (x - mean) ** 2, 0) / (N - 1));
    return { mean, se: sd / Math.sqrt(N) };
  };
  // Exact at bg = 0: random-throw 9 * 30 / 49 (hypergeometric survivors, all masked); amt 9.
  const rt0 = meanObjectMasked("random-throw", 0);
  assert.ok(Math.abs(rt0.mean - 9 * 30 / 49) < 4.5 * rt0.se, `random-throw bg 0: ${rt0.mean}`);
  assert.equal(meanObjectMasked("amt", 0).mean, 9);
  // bg = 0.1 (the documented example): 5.5 vs 8.8, within 0.1 (about 4 se).
  const rt = meanObjectMasked("random-throw", 0.1), amt = meanObjectMasked("amt", 0.1);
  assert.ok(Math.abs(rt.mean - 5.5) < 0.1, `random-throw bg 0.1: ${rt.mean} (se ${rt.se})`);
  assert.ok(Math.abs(amt.mean - 8.8) < 0.1, `amt bg 0.1: ${amt.mean} (se ${amt.se})`);
});

Deno.test("sampleMaskPlans() never picks a zero weight before a positive one", () => {
  const rng = makeRng(8, "zeros");
  const L = 20, B = 500;
  const weights = new Float32Array(B * L);
  const positives: number[][] = [];
  for (let b = 0; b < B; b++) {
    // Exactly 5 positive weights (tiny to large) at random places: masked == them.
    const idx = Array.from({ length: L }, (_, i) => i).sort(() => rng() - 0.5).slice(0, 5);
    idx.sort((a, c) => a - c);
    for (const i of idx) weights[b * L + i] = rng() < 0.5 ? 1e-30 : 1e6 * rng() + 1e-3;
    positives.push(idx);
  }
  const plan = sampleMaskPlans(weights, B, { maskRatio: 0.25, throwRatio: 0.5, rng });
  assert.equal(plan.numMasked, 5);
  for (let b = 0; b < B; b++) {
    assert.deepEqual(Array.from(plan.masked.subarray(b * 5, b * 5 + 5)), positives[b]);
  }
  // attn-throw-low with exactly nT zeros: the thrown set is the zeros.
  const w2 = new Float32Array(B * L).fill(1);
  for (let b = 0; b < B; b++) for (const i of positives[b].slice(0, 4)) w2[b * L + i] = 0;
  const low = sampleMaskPlans(w2, B, {
    maskRatio: 0.25,
    throwRatio: 0.2,
    strategy: "attn-throw-low",
    rng,
  });
  assert.equal(low.numThrown, 4);
  for (let b = 0; b < B; b++) {
    assert.deepEqual(Array.from(low.thrown.subarray(b * 4, b * 4 + 4)), positives[b].slice(0, 4));
  }
});

Deno.test("sampleMaskPlans() falls back to a uniform order on an all-zero row (4.5 sd)", () => {
  const L = 25, N = 20_000;
  const plan = sampleMaskPlans(new Float32Array(L * N), N, {
    maskRatio: 0.4,
    throwRatio: 0.4,
    rng: makeRng(9, "allzero"),
  });
  const freq = frequencies(plan);
  for (let i = 0; i < L; i++) {
    assertNear(freq.masked[i], 10 / 25, N, 4.5, `patch ${i} masked`);
    assertNear(freq.thrown[i], 10 / 25, N, 4.5, `patch ${i} thrown`);
  }
});

Deno.test("sampleMaskPlans() splits ties by index and keeps exact counts", () => {
  // A constant rng makes every key equal: the order is then 0, 1, 2, ...
  for (const u of [0, 0.5, 0.999]) {
    const rng = () => u;
    const amt = sampleMaskPlan(new Float32Array(10).fill(2), {
      maskRatio: 0.3,
      throwRatio: 0.3,
      rng,
    });
    assert.deepEqual([...amt.masked, ...amt.thrown, ...amt.visible], [...Array(10).keys()]);
    const low = sampleMaskPlan(new Float32Array(10), {
      maskRatio: 0.3,
      throwRatio: 0.2,
      strategy: "attn-throw-low",
      rng,
    });
    assert.deepEqual(Array.from(low.masked), [0, 1, 2]);
    assert.deepEqual(Array.from(low.visible), [3, 4, 5, 6, 7]);
    assert.deepEqual(Array.from(low.thrown), [8, 9]);
  }
});

Deno.test("sampleMaskPlans() on many ties equals a stable sort by draw", () => {
  // With equal weights a patch's key falls as its draw u grows, so the order
  // is the draws sorted ascending, ties in index order. A coarse rng (8
  // values) makes ties at the cuts common.
  const coarse = makeRng(6, "coarse");
  for (let trial = 0; trial < 300; trial++) {
    const L = 2 + (trial % 40);
    const draws = Array.from({ length: L }, () => Math.floor(coarse() * 8) / 8);
    const order = [...Array(L).keys()].sort((a, b) => draws[a] - draws[b] || a - b);
    const nM = 1 + (trial % (L - 1));
    const nT = Math.floor(coarse() * (L - nM));
    const weight = trial % 2; // all ones, or all zeros
    for (const strategy of ["amt", "random", "attn-throw-low"] as const) {
      let k = 0;
      const p = sampleMaskPlan(new Float64Array(L).fill(weight), {
        maskRatio: nM / L,
        throwRatio: nT / L,
        strategy,
        rng: () => draws[k++],
      });
      const sorted = (a: number[]) => a.sort((x, y) => x - y);
      const nV = L - nM - nT;
      const low = strategy === "attn-throw-low";
      assert.deepEqual(
        Array.from(p.masked),
        sorted(order.slice(0, nM)),
        `trial ${trial} ${strategy}`,
      );
      assert.deepEqual(
        Array.from(p.thrown),
        sorted(low ? order.slice(nM + nV) : order.slice(nM, nM + nT)),
        `trial ${trial} ${strategy}`,
      );
    }
  }
});

Deno.test("sampleMaskPlans() is reproducible and equals row-by-row sampleMaskPlan", () => {
  const B = 6, L = 37;
  const wr = makeRng(1, "w");
  const weights = Float32Array.from({ length: B * L }, () => (wr() < 0.3 ? 0 : wr()));
  for (const strategy of STRATEGIES) {
    const options = { maskRatio: 0.3, throwRatio: strategy === "attn-mask" ? 0 : 0.3, strategy };
    const a = sampleMaskPlans(weights, B, { ...options, rng: makeRng(42, strategy) });
    const b = sampleMaskPlans(weights, B, { ...options, rng: makeRng(42, strategy) });
    assert.deepEqual(a, b, `${strategy} not reproducible`);
    // Rows consume the stream in order: B single calls on one generator.
    const rng = makeRng(42, strategy);
    for (let row = 0; row < B; row++) {
      const p = sampleMaskPlan(weights.subarray(row * L, (row + 1) * L), { ...options, rng });
      for (const g of GROUPS) {
        const n = p[g].length;
        assert.deepEqual(
          p[g],
          a[g].subarray(row * n, (row + 1) * n),
          `${strategy} row ${row} ${g}`,
        );
      }
    }
  }
});

Deno.test("sampleMaskPlans() draws only from the given rng, L per row (2L for random-throw)", () => {
  const original = Math.random;
  Math.random = () => {
    throw new Error("Math.random used although rng was given");
  };
  try {
    for (const strategy of STRATEGIES) {
      let calls = 0;
      const inner = makeRng(0, strategy);
      const rng = () => (calls++, inner());
      const throwRatio = strategy === "attn-mask" ? 0 : 0.2;
      sampleMaskPlans(new Float32Array(3 * 30).fill(1), 3, {
        maskRatio: 0.5,
        throwRatio,
        strategy,
        rng,
      });
      assert.equal(calls, 3 * 30 * (strategy === "random-throw" ? 2 : 1), strategy);
    }
  } finally {
    Math.random = original;
  }
  // And the default generator works.
  assertPartition(sampleMaskPlans(new Float32Array(2 * 16).fill(1), 2, {
    maskRatio: 0.5,
    throwRatio: 0.25,
  }));
});

Deno.test("sampleMaskPlans() rejects bad options, naming the keys", () => {
  const w = new Float32Array(20).fill(1);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ maskRatio: -0.1, throwRatio: 0 }, /maskRatio.*-0\.1/],
    [{ maskRatio: 1, throwRatio: 0 }, /maskRatio.*\[0, 1\)/],
    [{ maskRatio: Number.NaN, throwRatio: 0 }, /maskRatio.*NaN/],
    [{ maskRatio: 0.5, throwRatio: -0.2 }, /throwRatio.*-0\.2/],
    [{ maskRatio: 0.5, throwRatio: 1.5 }, /throwRatio/],
    [{ maskRatio: 0, throwRatio: 0.5 }, /maskRatio must be > 0/],
    [{ maskRatio: 0.6, throwRatio: 0.4 }, /maskRatio \+ throwRatio must be < 1/],
    [{ maskRatio: 0.5, throwRatio: 0.2, strategy: "attn-mask" }, /attn-mask.*throwRatio=0\.2/],
    [{ maskRatio: 0.5, throwRatio: 0, strategy: "mae" }, /unknown strategy "mae".*random-throw/],
    [{ maskRatio: 0.5, throwRatio: 0, counting: "round" }, /counting/],
    [{ maskRatio: 0.02, throwRatio: 0 }, /maskRatio=0\.02.*masks no patch/],
    // ceil: 10 + 10 of 20 leaves nothing visible although 0.46 + 0.46 < 1.
    [{ maskRatio: 0.46, throwRatio: 0.46, counting: "ceil" }, /no visible.*maskRatio/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => sampleMaskPlans(w, 1, options as never),
      (e: Error) => (e instanceof RangeError || e instanceof TypeError) && message.test(e.message),
      JSON.stringify(options),
    );
    assert.throws(() => sampleMaskPlan(w, options as never), message);
  }
});

Deno.test("sampleMaskPlans() rejects bad weights and shapes", () => {
  const options = { maskRatio: 0.5, throwRatio: 0 };
  assert.throws(() => sampleMaskPlan([], options), /non-empty/);
  assert.throws(() => sampleMaskPlans(new Float32Array(0), 1, options), /non-empty/);
  assert.throws(
    () => sampleMaskPlans(new Float32Array(10), 3, options),
    /not divisible by batch=3/,
  );
  assert.throws(() => sampleMaskPlans(new Float32Array(10), 0, options), /batch/);
  assert.throws(() => sampleMaskPlan([1, 2, -1, 3], options), /weights\[2\] = -1/);
  assert.throws(
    () => sampleMaskPlans(Float32Array.of(1, 2, 3, 4, 5, Number.NaN), 2, options),
    /weights\[1, 2\].*NaN/,
  );
  assert.throws(() => sampleMaskPlan([1, Infinity], options), /weights\[1\] = Infinity/);
  assert.throws(
    () => sampleMaskPlan([1, 2, 3, 4], { ...options, rng: () => 1 }),
    /rng must return numbers in \[0, 1\)/,
  );
});
