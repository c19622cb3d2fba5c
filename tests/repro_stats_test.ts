import assert from "node:assert/strict";
import {
  fCdf,
  formatPaired,
  formatSeeds,
  lnGamma,
  mean,
  oneWayAnova,
  pairedDifference,
  readInterval,
  regularizedIncompleteBeta,
  sampleSd,
  summarize,
  tCdf,
  tQuantile,
} from "../lib/repro/stats.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

Deno.test("t quantiles match the tables (two-sided 95 %)", () => {
  const table: [number, number][] = [
    [1, 12.7062047],
    [2, 4.3026527],
    [3, 3.1824463],
    [4, 2.7764451],
    [9, 2.2621572],
    [10, 2.2281389],
    [30, 2.0422725],
    [100, 1.9839715],
  ];
  for (const [df, t] of table) close(tQuantile(0.975, df), t, 1e-6, `t(0.975; ${df})`);
  // the spec's rounded values
  assert.equal(tQuantile(0.975, 1).toFixed(3), "12.706");
  assert.equal(tQuantile(0.975, 2).toFixed(3), "4.303");
  assert.equal(tQuantile(0.975, 4).toFixed(3), "2.776");
  assert.equal(tQuantile(0.975, 9).toFixed(3), "2.262");
  assert.equal(tQuantile(0.975, 30).toFixed(3), "2.042");
  // other levels and closed forms: df 1 is Cauchy, df 2 has t = (2p-1) / sqrt(2p(1-p))
  close(tQuantile(0.995, 1), Math.tan(Math.PI * 0.495), 1e-6, "t(0.995; 1)");
  close(tQuantile(0.9, 2), 0.8 / Math.sqrt(2 * 0.9 * 0.1), 1e-9, "t(0.9; 2)");
  close(tQuantile(0.995, 5), 4.0321430, 1e-6, "t(0.995; 5)");
  // symmetry and the centre
  assert.equal(tQuantile(0.5, 3), 0);
  close(tQuantile(0.025, 4), -tQuantile(0.975, 4), 1e-12);
  // large df tends to the normal quantile
  close(tQuantile(0.975, 1e6), 1.959966, 1e-5);
  assert.throws(() => tQuantile(1, 3), RangeError);
  assert.throws(() => tQuantile(0.975, 0), RangeError);
});

Deno.test("t CDF and the incomplete beta behind it", () => {
  close(tCdf(1, 1), 0.75, 1e-12, "Cauchy");
  assert.equal(tCdf(0, 7), 0.5);
  close(tCdf(-2, 5) + tCdf(2, 5), 1, 1e-12);
  for (const df of [1, 2, 4, 9, 30]) close(tCdf(tQuantile(0.975, df), df), 0.975, 1e-12);
  // I_x(2, 3) = 6x^2(1-x)^2 + 4x^3(1-x) + x^4
  const x = 0.3;
  close(
    regularizedIncompleteBeta(x, 2, 3),
    6 * x ** 2 * (1 - x) ** 2 + 4 * x ** 3 * (1 - x) + x ** 4,
    1e-12,
  );
  close(regularizedIncompleteBeta(0.8, 2, 3), 1 - regularizedIncompleteBeta(0.2, 3, 2), 1e-12);
  close(lnGamma(5), Math.log(24), 1e-12);
  close(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12);
});

Deno.test("mean and sample sd (n - 1)", () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  close(sampleSd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-12);
  assert.equal(sampleSd([1, 2, 3]), 1);
  assert.ok(Number.isNaN(sampleSd([5])));
  assert.ok(Number.isNaN(mean([])));
  const s = summarize(new Map([[2, 78.6], [0, 75.9], [1, NaN]]));
  assert.deepEqual(s.seeds, [0, 2]);
  assert.equal(s.n, 2);
  assert.equal(formatSeeds(s), "77.3 ± 1.9 (75.9, 78.6)");
  assert.equal(formatSeeds(summarize(new Map([[0, 80]]))), "80.0");
  assert.equal(formatSeeds(summarize(new Map())), "-");
});

Deno.test("paired difference: diffs [1, 2, 3] give 2 ± 4.303 / sqrt(3)", () => {
  const a = new Map([[0, 81], [1, 82], [2, 83], [7, 99]]);
  const b = new Map([[0, 80], [1, 80], [2, 80], [5, 10]]);
  const d = pairedDifference(a, b)!;
  assert.deepEqual(d.seeds, [0, 1, 2]); // only the seeds both have
  assert.deepEqual(d.diffs, [1, 2, 3]);
  assert.equal(d.mean, 2);
  assert.equal(d.sd, 1);
  const half = 4.302652729749464 / Math.sqrt(3);
  close(d.lo, 2 - half, 1e-9);
  close(d.hi, 2 + half, 1e-9);
  assert.equal(d.reading, "no difference detected"); // [-0.48, 4.48] contains 0
  assert.equal(formatPaired(d), "+2.0 [-0.5, +4.5] (n=3): no difference detected");
});

Deno.test("paired difference: readings", () => {
  const base = new Map([[0, 70], [1, 71], [2, 72]]);
  const higher = pairedDifference(new Map([[0, 75], [1, 76.2], [2, 76.8]]), base)!;
  assert.equal(higher.reading, "higher");
  assert.ok(higher.lo > 0);
  const lower = pairedDifference(new Map([[0, 65], [1, 66.2], [2, 66.8]]), base)!;
  assert.equal(lower.reading, "lower");
  assert.ok(lower.hi < 0);
  const same = pairedDifference(base, base)!;
  assert.equal(same.reading, "no difference detected");
  assert.equal(formatPaired(same), "0.0 [0.0, 0.0] (n=3): no difference detected");
  const one = pairedDifference(new Map([[0, 71.5]]), base)!;
  assert.equal(one.n, 1);
  assert.equal(one.reading, "n=1, no interval");
  assert.equal(formatPaired(one), "+1.5 (n=1, no interval)");
  assert.equal(pairedDifference(new Map([[9, 1]]), base), null);
  assert.equal(formatPaired(null), "-");
  assert.equal(readInterval(-1, 1), "no difference detected");
  assert.equal(readInterval(0, 1), "no difference detected");
  assert.equal(readInterval(0.1, 1), "higher");
  assert.equal(readInterval(-1, -0.1), "lower");
  // two seeds: the t quantile on 1 degree of freedom
  const two = pairedDifference(new Map([[0, 2], [1, 4]]), new Map([[0, 0], [1, 0]]))!;
  close(two.hi - two.mean, 12.706204736 * Math.SQRT2 / Math.sqrt(2), 1e-6);
});

Deno.test("fCdf() matches the closed form for d1 = 2 and a table's critical value", () => {
  // d1 = 2: P(F > x) = (1 + 2x / d2)^(-d2 / 2)
  for (const [x, d2] of [[0.5, 4], [3, 15], [9.2647, 15]]) {
    close(1 - fCdf(x, 2, d2), (1 + 2 * x / d2) ** (-d2 / 2), 1e-10);
  }
  close(fCdf(3.7083, 3, 10), 0.95, 1e-4); // F(0.95; 3, 10) = 3.708 in the tables
  assert.equal(fCdf(0, 3, 10), 0);
  assert.throws(() => fCdf(1, 0, 10), RangeError);
});

Deno.test("oneWayAnova() matches hand-computed cases, equal and unequal group sizes", () => {
  // a textbook case: three groups of six
  const a = oneWayAnova([[6, 8, 4, 5, 3, 4], [8, 12, 9, 11, 6, 8], [13, 9, 11, 8, 7, 12]]);
  assert.deepEqual([a.groups, a.n, a.df1, a.df2], [3, 18, 2, 15]);
  close(a.msBetween, 42, 1e-12);
  close(a.msWithin, 4.533333333333, 1e-9);
  close(a.f, 9.264705882353, 1e-9);
  close(a.p, 0.002398777329, 1e-9);
  // s²b = (42 - 4.5333) / 6; share = s²b / (s²b + 4.5333)
  close(a.betweenShare, (37.4666667 / 6) / (37.4666667 / 6 + 4.5333333), 1e-6);
  // sizes 3, 2, 4: MSb 24.1667, MSw 1.9444, n0 = (9 - 29/9) / 2
  const b = oneWayAnova([[1, 2, 4], [3, 5], [7, 6, 9, 8], []]);
  assert.equal(b.groups, 3);
  close(b.f, 12.428571428571, 1e-9);
  close(b.p, (1 + 2 * b.f / 6) ** -3, 1e-10);
  close(b.betweenShare, 0.798226164080, 1e-9);
  // groups no farther apart than their members: share 0, p large
  const c = oneWayAnova([[1, 5, 3], [2, 4, 3.2]]);
  assert.equal(c.betweenShare, 0);
  assert.ok(c.p > 0.9);
  assert.throws(() => oneWayAnova([[1, 2, 3]]), RangeError);
  assert.throws(() => oneWayAnova([[1], [2]]), RangeError);
});
