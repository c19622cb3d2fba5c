/**
 * The statistics of the repro tables: mean and sample standard deviation over
 * seeds, Student's t quantiles, and the paired difference of two runs over the
 * seeds both have, with its confidence interval and a plain reading.
 *
 * @module
 */

/** Arithmetic mean (NaN for no values). */
export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation, divisor n - 1 (NaN for fewer than two values). */
export function sampleSd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; about 15 significant digits). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b), 0 <= x <= 1, a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0) || !(x >= 0 && x <= 1)) {
    throw new RangeError(`regularizedIncompleteBeta(${x}, ${a}, ${b}): need 0<=x<=1, a>0, b>0`);
  }
  if (x === 0 || x === 1) return x;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) +
    b * Math.log(1 - x);
  // the continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry otherwise
  if (x < (a + 1) / (a + b + 2)) return Math.exp(lnFront) * betaContinuedFraction(x, a, b) / a;
  return 1 - Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a) / b;
}

/** Student's t cumulative distribution P(T <= t) with `df` > 0 degrees of freedom. */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`tCdf: degrees of freedom ${df} must be > 0`);
  if (t === 0) return 0.5;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/**
 * Student's t quantile: the t with P(T <= t) = p, `df` > 0 degrees of freedom, by bisection on
 * {@link tCdf} (to about 1e-12 relative).
 *
 * @example
 * ```ts
 * import { tQuantile } from "./stats.ts";
 * tQuantile(0.975, 2); // 4.3027
 * ```
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`tQuantile: p ${p} must be in (0, 1)`);
  if (!(df > 0)) throw new RangeError(`tQuantile: degrees of freedom ${df} must be > 0`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (tCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e12) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Mean, sample sd and the values of a set of seeds. */
export interface SeedSummary {
  n: number;
  mean: number;
  /** Sample sd (n - 1); NaN for one value. */
  sd: number;
  /** The seeds, ascending, and each one's value. */
  seeds: number[];
  values: number[];
}

/** Summary of per-seed values (non-finite values are left out). */
export function summarize(bySeed: ReadonlyMap<number, number>): SeedSummary {
  const seeds = [...bySeed.keys()].filter((s) => Number.isFinite(bySeed.get(s)!)).sort((a, b) =>
    a - b
  );
  const values = seeds.map((s) => bySeed.get(s)!);
  return { n: values.length, mean: mean(values), sd: sampleSd(values), seeds, values };
}

/** What a paired comparison says. */
export type PairedReading = "higher" | "lower" | "no difference detected" | "n=1, no interval";

/** The paired difference `a - b` over the seeds both have. */
export interface PairedDifference {
  /** Common seeds, ascending. */
  seeds: number[];
  diffs: number[];
  n: number;
  mean: number;
  /** Sample sd of the differences (NaN for n = 1). */
  sd: number;
  /** Confidence level of the interval (0.95). */
  level: number;
  /** Student t quantile used (NaN for n = 1). */
  t: number;
  /** Interval mean ± t * sd / sqrt(n) (NaN for n = 1). */
  lo: number;
  hi: number;
  reading: PairedReading;
}

/**
 * Paired difference `a - b` over the seeds both runs have, with a `level` Student-t confidence
 * interval on n - 1 degrees of freedom. "no difference detected" when the interval contains 0;
 * "higher" / "lower" when it lies above / below; "n=1, no interval" with one common seed.
 * Null when the runs share no seed.
 */
export function pairedDifference(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
  level = 0.95,
): PairedDifference | null {
  const seeds = [...a.keys()]
    .filter((s) => b.has(s) && Number.isFinite(a.get(s)!) && Number.isFinite(b.get(s)!))
    .sort((x, y) => x - y);
  if (seeds.length === 0) return null;
  const diffs = seeds.map((s) => a.get(s)! - b.get(s)!);
  const n = diffs.length, m = mean(diffs);
  if (n === 1) {
    return {
      seeds,
      diffs,
      n,
      mean: m,
      sd: NaN,
      level,
      t: NaN,
      lo: NaN,
      hi: NaN,
      reading: "n=1, no interval",
    };
  }
  const sd = sampleSd(diffs);
  const t = tQuantile(1 - (1 - level) / 2, n - 1);
  const half = t * sd / Math.sqrt(n);
  const lo = m - half, hi = m + half;
  return {
    seeds,
    diffs,
    n,
    mean: m,
    sd,
    level,
    t,
    lo,
    hi,
    reading: readInterval(lo, hi),
  };
}

/** The difference of two independent samples' means, with Welch's interval. */
export interface WelchDifference {
  /** mean(a) - mean(b). */
  mean: number;
  /** Welch-Satterthwaite degrees of freedom (NaN under 2 values on a side). */
  df: number;
  lo: number;
  hi: number;
  reading: PairedReading;
}

/**
 * `mean(a) - mean(b)` for independent samples (e.g. runs with different settings), with a
 * `level` Welch t interval: standard error `sqrt(sa²/na + sb²/nb)` and the Welch-Satterthwaite
 * degrees of freedom. Under 2 values on either side there is no interval ("n=1, no interval").
 */
export function welchDifference(
  a: readonly number[],
  b: readonly number[],
  level = 0.95,
): WelchDifference {
  const m = mean(a) - mean(b);
  if (a.length < 2 || b.length < 2) {
    return { mean: m, df: NaN, lo: NaN, hi: NaN, reading: "n=1, no interval" };
  }
  const va = sampleSd(a) ** 2 / a.length, vb = sampleSd(b) ** 2 / b.length;
  const se = Math.sqrt(va + vb);
  if (se === 0) return { mean: m, df: Infinity, lo: m, hi: m, reading: readInterval(m, m) };
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const half = tQuantile(1 - (1 - level) / 2, df) * se;
  return { mean: m, df, lo: m - half, hi: m + half, reading: readInterval(m - half, m + half) };
}

/** "higher" above 0, "lower" below, "no difference detected" when [lo, hi] contains 0. */
export function readInterval(lo: number, hi: number): PairedReading {
  if (lo > 0) return "higher";
  if (hi < 0) return "lower";
  return "no difference detected";
}

function signed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  if (Number(s) === 0) return (0).toFixed(digits); // no "-0.0"
  return x > 0 ? `+${s}` : s;
}

/**
 * A table cell for a paired difference: `+1.2 [-0.4, +2.8] (n=3): no difference detected`, or
 * `+1.2 (n=1, no interval)`, or "-" when there is none.
 */
export function formatPaired(d: PairedDifference | null, digits = 1): string {
  if (!d) return "-";
  if (d.n === 1) return `${signed(d.mean, digits)} (n=1, no interval)`;
  return `${signed(d.mean, digits)} [${signed(d.lo, digits)}, ${
    signed(d.hi, digits)
  }] (n=${d.n}): ${d.reading}`;
}

/** A table cell for values over seeds: `77.3 ± 1.6 (75.9, 77.4, 78.6)`, `77.3`, or "-". */
export function formatSeeds(s: SeedSummary, digits = 1): string {
  if (s.n === 0) return "-";
  if (s.n === 1) return s.mean.toFixed(digits);
  return `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)} (${
    s.values.map((v) => v.toFixed(digits)).join(", ")
  })`;
}

/** Fisher's F cumulative distribution P(F <= x) with `d1`, `d2` > 0 degrees of freedom. */
export function fCdf(x: number, d1: number, d2: number): number {
  if (!(d1 > 0) || !(d2 > 0)) throw new RangeError(`fCdf: degrees of freedom ${d1}, ${d2}`);
  if (x <= 0) return 0;
  if (x === Infinity) return 1;
  return regularizedIncompleteBeta(d1 * x / (d1 * x + d2), d1 / 2, d2 / 2);
}

/** A one-way analysis of variance over groups (e.g. settings, each run at several seeds). */
export interface OneWayAnova {
  /** Groups with at least one value, and all their values. */
  groups: number;
  n: number;
  /** Mean squares between and within the groups. */
  msBetween: number;
  msWithin: number;
  f: number;
  df1: number;
  df2: number;
  /** P(F >= f) under "every group has the same mean". */
  p: number;
  /**
   * The share of the variance that lies between the groups (the intraclass correlation ICC(1):
   * `s²b / (s²b + s²w)`, with `s²b = max(0, (MSb - MSw) / n0)` and `n0` the size-weighted
   * group size); 0 when the groups differ no more than their members do.
   */
  betweenShare: number;
}

/**
 * One-way ANOVA: does the group explain more of the spread than the spread within the groups
 * (the seeds)? Needs at least 2 groups and more values than groups; throws otherwise.
 */
export function oneWayAnova(groups: readonly (readonly number[])[]): OneWayAnova {
  const gs = groups.filter((g) => g.length > 0);
  const n = gs.reduce((a, g) => a + g.length, 0);
  const k = gs.length;
  if (k < 2 || n <= k) {
    throw new RangeError(
      `oneWayAnova: need 2 or more groups and more values (${n}) than groups (${k})`,
    );
  }
  const grand = mean(gs.flat());
  const ssB = gs.reduce((a, g) => a + g.length * (mean(g) - grand) ** 2, 0);
  const ssW = gs.reduce((a, g) => {
    const m = mean(g);
    return a + g.reduce((b, x) => b + (x - m) ** 2, 0);
  }, 0);
  const df1 = k - 1, df2 = n - k;
  const msBetween = ssB / df1, msWithin = ssW / df2;
  const f = msWithin === 0 ? (msBetween === 0 ? 0 : Infinity) : msBetween / msWithin;
  const p = 1 - fCdf(f, df1, df2);
  const n0 = (n - gs.reduce((a, g) => a + g.length ** 2, 0) / n) / df1;
  const s2b = Math.max(0, (msBetween - msWithin) / n0);
  const betweenShare = s2b + msWithin === 0 ? 0 : s2b / (s2b + msWithin);
  return { groups: k, n, msBetween, msWithin, f, df1, df2, p, betweenShare };
}
