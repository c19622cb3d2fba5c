/**
 * SVG charts for run folders: line (loss / accuracy curves), grouped bars
 * (accuracy per method, ours vs paper), scatter (cost vs accuracy) and a
 * confusion-matrix heatmap. Each builder returns a standalone SVG string;
 * render it with `svgToPng`.
 *
 * Ticks are "nice" numbers (1, 2 or 5 x 10^k) that cover the data range;
 * log axes tick at decades. Non-finite (and, on log axes, non-positive)
 * values and nulls are skipped. All text is XML-escaped.
 *
 * @module
 */

import { type ColormapName, colormapRgb, rgbHex } from "./colormap.ts";

/** Categorical palette (Tableau 10), used in series order. */
export const PALETTE: readonly string[] = Object.freeze([
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
]);

const FONT = "DejaVu Sans, Verdana, Arial, sans-serif";
const TITLE_SIZE = 16;
const LABEL_SIZE = 13;
const TICK_SIZE = 11;
/** Rough advance width of one character, as a fraction of the font size. */
const CHAR_W = 0.64;

/** Tick positions of one axis. */
export interface Ticks {
  /** Axis range (the first and last major tick). */
  min: number;
  max: number;
  /** Labelled tick values, ascending. */
  values: number[];
  /** Unlabelled minor ticks (log axes: 2..9 x 10^k). */
  minor: number[];
  /** Step between major ticks (log axes: decades per tick). */
  step: number;
  log: boolean;
}

/** Escapes `& < > " '` for use in SVG text and attributes. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

/** The nice step (1, 2 or 5 x 10^k) nearest above `span / (maxTicks - 1)`. */
export function niceStep(span: number, maxTicks = 6): number {
  const raw = span / Math.max(1, maxTicks - 1);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const m = norm <= 1 + 1e-9 ? 1 : norm <= 2 + 1e-9 ? 2 : norm <= 5 + 1e-9 ? 5 : 10;
  return m * mag;
}

function decimalsOf(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/**
 * Linear ticks at multiples of a nice step, from at or below `lo` to at or
 * above `hi`. A degenerate range is widened; non-finite bounds give [0, 1].
 *
 * @example
 * ```ts
 * import { niceTicks } from "./charts.ts";
 * const t = niceTicks(0.13, 0.87); // 0, 0.2, 0.4, 0.6, 0.8, 1
 * if (t.values.length !== 6) throw new Error(String(t.values));
 * ```
 */
export function niceTicks(lo: number, hi: number, maxTicks = 6): Ticks {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= lo === 0 ? 0 : d;
    hi += d;
  }
  const step = niceStep(hi - lo, maxTicks);
  const eps = 1e-10;
  const i0 = Math.floor(lo / step + eps);
  const i1 = Math.ceil(hi / step - eps);
  const d = decimalsOf(step);
  const values: number[] = [];
  for (let i = i0; i <= i1; i++) values.push(Number((i * step).toFixed(d)));
  return { min: values[0], max: values[values.length - 1], values, minor: [], step, log: false };
}

/**
 * Log-axis ticks at powers of ten covering [lo, hi] (both > 0), with minor
 * ticks at 2..9 x 10^k. Long ranges label every n-th decade.
 */
export function logTicks(lo: number, hi: number, maxTicks = 8): Ticks {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 1;
    hi = 10;
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  let k0 = Math.floor(Math.log10(lo) + 1e-9);
  let k1 = Math.ceil(Math.log10(hi) - 1e-9);
  if (k1 <= k0) k1 = k0 + 1;
  const stride = Math.max(1, Math.ceil((k1 - k0) / Math.max(1, maxTicks - 1)));
  k0 = Math.floor(k0 / stride) * stride;
  k1 = Math.ceil(k1 / stride) * stride;
  const values: number[] = [];
  for (let k = k0; k <= k1; k += stride) values.push(Number(`1e${k}`));
  const minor: number[] = [];
  for (let k = k0; k < k1; k++) {
    const decade = Number(`1e${k}`);
    if (stride > 1) {
      if (k % stride !== 0) minor.push(decade);
    } else {
      for (let m = 2; m <= 9; m++) minor.push(Number((m * decade).toPrecision(3)));
    }
  }
  return { min: values[0], max: values[values.length - 1], values, minor, step: stride, log: true };
}

/** Formats a tick value with as many decimals as its step needs. */
export function formatTick(v: number, ticks: Pick<Ticks, "step" | "log">): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (ticks.log) {
    const k = Math.round(Math.log10(a));
    if (k >= -3 && k <= 4) return k < 0 ? v.toFixed(-k) : String(Math.round(v));
    return `1e${k}`;
  }
  if (a >= 1e6 || a < 1e-4) return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
  return v.toFixed(decimalsOf(ticks.step));
}

/** Short label for a data value (about 3 significant digits). */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

function n2(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function textWidth(s: string, size: number): number {
  return s.length * size * CHAR_W;
}

/** An axis: its ticks and a map from data value to [0, 1] along the axis. */
interface Axis {
  ticks: Ticks;
  unit(v: number): number;
}

function keep(v: number | null | undefined, log: boolean): v is number {
  return typeof v === "number" && Number.isFinite(v) && (!log || v > 0);
}

/** Axis over the kept values; `pad` widens the data range by that fraction per side first. */
function makeAxis(
  values: Iterable<number | null | undefined>,
  log: boolean,
  maxTicks: number,
  pad = 0,
): Axis {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!keep(v, log)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (pad > 0 && hi > lo) {
    if (log) {
      const f = (hi / lo) ** pad;
      lo /= f;
      hi *= f;
    } else {
      const d = (hi - lo) * pad;
      lo -= d;
      hi += d;
    }
  }
  if (log) {
    const ticks = logTicks(lo, hi, maxTicks);
    const a = Math.log10(ticks.min);
    const b = Math.log10(ticks.max);
    return { ticks, unit: (v) => (Math.log10(v) - a) / (b - a) };
  }
  const ticks = niceTicks(lo, hi, maxTicks);
  return { ticks, unit: (v) => (v - ticks.min) / (ticks.max - ticks.min) };
}

/** Plot rectangle inside the SVG. */
interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface LegendItem {
  name: string;
  color: string;
  kind: "line" | "rect" | "dot";
}

function svgOpen(width: number, height: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT}">\n` +
    `<rect width="${width}" height="${height}" fill="#ffffff"/>\n`;
}

function titleSvg(title: string | undefined, width: number): string {
  if (!title) return "";
  return `<text class="title" x="${n2(width / 2)}" y="26" font-size="${TITLE_SIZE}" ` +
    `font-weight="bold" text-anchor="middle" fill="#222">${escapeXml(title)}</text>\n`;
}

function legendWidth(items: LegendItem[]): number {
  if (items.length === 0) return 0;
  return 40 + Math.max(...items.map((it) => textWidth(it.name, TICK_SIZE + 1)));
}

function legendSvg(items: LegendItem[], x: number, y: number): string {
  if (items.length === 0) return "";
  const rowH = 20;
  const w = legendWidth(items);
  let s = `<g class="legend">\n<rect x="${n2(x)}" y="${n2(y)}" width="${n2(w)}" ` +
    `height="${items.length * rowH + 8}" fill="#fff" stroke="#ccc"/>\n`;
  items.forEach((it, i) => {
    const cy = y + 4 + rowH * i + rowH / 2;
    if (it.kind === "line") {
      s += `<line x1="${n2(x + 6)}" y1="${n2(cy)}" x2="${n2(x + 26)}" y2="${n2(cy)}" ` +
        `stroke="${it.color}" stroke-width="2.5"/>\n`;
    } else if (it.kind === "dot") {
      s += `<circle cx="${n2(x + 16)}" cy="${n2(cy)}" r="4.5" fill="${it.color}"/>\n`;
    } else {
      s += `<rect x="${n2(x + 9)}" y="${n2(cy - 6)}" width="14" height="12" fill="${it.color}"/>\n`;
    }
    s += `<text x="${n2(x + 30)}" y="${n2(cy + 4)}" font-size="${TICK_SIZE + 1}" fill="#222">` +
      `${escapeXml(it.name)}</text>\n`;
  });
  return s + "</g>\n";
}

/** Frame, grid lines, ticks and tick labels of a y axis. */
function yAxisSvg(r: Rect, axis: Axis): string {
  let s = "";
  for (const v of axis.ticks.minor) {
    const py = r.y + r.h * (1 - axis.unit(v));
    s += `<line x1="${n2(r.x - 3)}" y1="${n2(py)}" x2="${n2(r.x)}" y2="${
      n2(py)
    }" stroke="#444"/>\n`;
  }
  for (const v of axis.ticks.values) {
    const py = r.y + r.h * (1 - axis.unit(v));
    s += `<line class="grid" x1="${n2(r.x)}" y1="${n2(py)}" x2="${n2(r.x + r.w)}" y2="${n2(py)}" ` +
      `stroke="#e4e4e4"/>\n`;
    s += `<line x1="${n2(r.x - 5)}" y1="${n2(py)}" x2="${n2(r.x)}" y2="${
      n2(py)
    }" stroke="#444"/>\n`;
    s += `<text class="ytick" x="${n2(r.x - 8)}" y="${n2(py + 4)}" font-size="${TICK_SIZE}" ` +
      `text-anchor="end" fill="#333">${escapeXml(formatTick(v, axis.ticks))}</text>\n`;
  }
  return s;
}

function xAxisSvg(r: Rect, axis: Axis): string {
  let s = "";
  const base = r.y + r.h;
  for (const v of axis.ticks.minor) {
    const px = r.x + r.w * axis.unit(v);
    s += `<line x1="${n2(px)}" y1="${n2(base)}" x2="${n2(px)}" y2="${
      n2(base + 3)
    }" stroke="#444"/>\n`;
  }
  for (const v of axis.ticks.values) {
    const px = r.x + r.w * axis.unit(v);
    s += `<line class="grid" x1="${n2(px)}" y1="${n2(r.y)}" x2="${n2(px)}" y2="${n2(base)}" ` +
      `stroke="#e4e4e4"/>\n`;
    s += `<line x1="${n2(px)}" y1="${n2(base)}" x2="${n2(px)}" y2="${
      n2(base + 5)
    }" stroke="#444"/>\n`;
    s += `<text class="xtick" x="${n2(px)}" y="${n2(base + 18)}" font-size="${TICK_SIZE}" ` +
      `text-anchor="middle" fill="#333">${escapeXml(formatTick(v, axis.ticks))}</text>\n`;
  }
  return s;
}

function axisLabelsSvg(r: Rect, height: number, xLabel?: string, yLabel?: string): string {
  let s = "";
  if (xLabel) {
    s += `<text class="xlabel" x="${n2(r.x + r.w / 2)}" y="${n2(height - 10)}" ` +
      `font-size="${LABEL_SIZE}" text-anchor="middle" fill="#222">${escapeXml(xLabel)}</text>\n`;
  }
  if (yLabel) {
    const cy = r.y + r.h / 2;
    s += `<text class="ylabel" x="18" y="${n2(cy)}" font-size="${LABEL_SIZE}" ` +
      `text-anchor="middle" transform="rotate(-90 18 ${n2(cy)})" fill="#222">` +
      `${escapeXml(yLabel)}</text>\n`;
  }
  return s;
}

function frameSvg(r: Rect): string {
  return `<rect class="frame" x="${n2(r.x)}" y="${n2(r.y)}" width="${n2(r.w)}" height="${
    n2(r.h)
  }" ` +
    `fill="none" stroke="#444"/>\n`;
}

function clipSvg(r: Rect): string {
  // A little slack so markers on the frame are not cut in half.
  return `<defs><clipPath id="plot-area"><rect x="${n2(r.x - 5)}" y="${n2(r.y - 5)}" ` +
    `width="${n2(r.w + 10)}" height="${n2(r.h + 10)}"/></clipPath></defs>\n`;
}

/** Plot rectangle for an x/y chart given the axes' tick labels and the legend. */
function layout(
  width: number,
  height: number,
  yAxis: Axis,
  legend: LegendItem[],
  title?: string,
  yLabel?: string,
  bottomExtra = 0,
): { rect: Rect; legendX: number } {
  const yTickW = Math.max(
    ...yAxis.ticks.values.map((v) => textWidth(formatTick(v, yAxis.ticks), TICK_SIZE)),
  );
  const left = (yLabel ? 32 : 8) + yTickW + 10;
  const lw = legendWidth(legend);
  const right = lw > 0 ? lw + 24 : 20;
  const top = title ? 44 : 16;
  const bottom = 52 + bottomExtra;
  const rect = {
    x: left,
    y: top,
    w: Math.max(40, width - left - right),
    h: Math.max(40, height - top - bottom),
  };
  return { rect, legendX: rect.x + rect.w + 12 };
}

/** One line of a {@linkcode lineChart}. */
export interface LineSeries {
  name: string;
  x: readonly number[];
  /** Same length as `x`; null / NaN points are skipped. */
  y: readonly (number | null)[];
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: readonly LineSeries[];
  /** Log-scaled y axis (non-positive values are skipped). */
  logY?: boolean;
  logX?: boolean;
  /** Draw point markers; default: when every series has at most 40 points. */
  markers?: boolean;
  /** Pixels (default 640 x 400). */
  width?: number;
  height?: number;
}

/**
 * A line chart: one `<polyline class="series">` per series, with axes, nice
 * ticks, grid, axis labels, title and a legend right of the plot.
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const svg = lineChart({ title: "loss", xLabel: "epoch", yLabel: "MSE", logY: true,
 *   series: [{ name: "MAE", x: [1, 2, 3], y: [1, 0.3, 0.1] }] });
 * if (!svg.startsWith("<svg")) throw new Error("not svg");
 * ```
 */
export function lineChart(opts: LineChartOptions): string {
  const { width = 640, height = 400, title, xLabel, yLabel, series } = opts;
  const logY = opts.logY ?? false;
  const logX = opts.logX ?? false;
  const pts = series.map((s) => {
    if (s.x.length !== s.y.length) {
      throw new Error(
        `lineChart: series "${s.name}" has ${s.x.length} x but ${s.y.length} y values`,
      );
    }
    const out: [number, number][] = [];
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (keep(x, logX) && keep(y, logY)) out.push([x, y]);
    }
    return out;
  });
  const xAxis = makeAxis(pts.flatMap((p) => p.map((q) => q[0])), logX, 8);
  const yAxis = makeAxis(pts.flatMap((p) => p.map((q) => q[1])), logY, 6);
  const legend: LegendItem[] = series.map((s, i) => ({
    name: s.name,
    color: PALETTE[i % PALETTE.length],
    kind: "line",
  }));
  const { rect: r, legendX } = layout(width, height, yAxis, legend, title, yLabel);
  const markers = opts.markers ?? pts.every((p) => p.length <= 40);

  let s = svgOpen(width, height) + titleSvg(title, width) + clipSvg(r);
  s += yAxisSvg(r, yAxis) + xAxisSvg(r, xAxis);
  s += `<g clip-path="url(#plot-area)">\n`;
  pts.forEach((p, i) => {
    const color = PALETTE[i % PALETTE.length];
    const xy = p.map(([x, y]) => [r.x + r.w * xAxis.unit(x), r.y + r.h * (1 - yAxis.unit(y))]);
    s += `<polyline class="series" data-name="${escapeXml(series[i].name)}" fill="none" ` +
      `stroke="${color}" stroke-width="2" stroke-linejoin="round" ` +
      `points="${xy.map(([a, b]) => `${n2(a)},${n2(b)}`).join(" ")}"/>\n`;
    if (markers) {
      for (const [a, b] of xy) {
        s += `<circle class="marker" cx="${n2(a)}" cy="${n2(b)}" r="3" fill="${color}"/>\n`;
      }
    }
  });
  s += "</g>\n" + frameSvg(r) + axisLabelsSvg(r, height, xLabel, yLabel);
  s += legendSvg(legend, legendX, r.y);
  return s + "</svg>\n";
}

/** One bar colour of a {@linkcode barChart}: a value per group (null = missing). */
export interface BarSeries {
  name: string;
  values: readonly (number | null)[];
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions {
  title?: string;
  yLabel?: string;
  /** Category labels along x (e.g. methods). */
  groups: readonly string[];
  /** One bar per group each (e.g. "ours", "paper"). */
  series: readonly BarSeries[];
  /** Print values above bars; default: when they fit. */
  valueLabels?: boolean;
  /** Y range overrides (by default it spans 0 and the data). */
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

/**
 * Grouped bar chart: `<rect class="bar">` per non-null value; missing values
 * are marked "n/a" at the baseline.
 */
export function barChart(opts: BarChartOptions): string {
  const { width = 640, height = 400, title, yLabel, groups, series } = opts;
  for (const s of series) {
    if (s.values.length !== groups.length) {
      throw new Error(
        `barChart: series "${s.name}" has ${s.values.length} values for ${groups.length} groups`,
      );
    }
  }
  const all = series.flatMap((s) => s.values.filter((v): v is number => keep(v, false)));
  const lo = opts.yMin ?? Math.min(0, ...all);
  const hi = opts.yMax ?? Math.max(0, ...all);
  const ticks = niceTicks(lo, hi === lo ? lo + 1 : hi, 6);
  const yAxis: Axis = { ticks, unit: (v) => (v - ticks.min) / (ticks.max - ticks.min) };
  const legend: LegendItem[] = series.map((s, i) => ({
    name: s.name,
    color: PALETTE[i % PALETTE.length],
    kind: "rect",
  }));

  // Rotate group labels when they do not fit their slot.
  const probe = layout(width, height, yAxis, legend, title, yLabel).rect;
  const slot = probe.w / Math.max(1, groups.length);
  const maxLabel = Math.max(0, ...groups.map((g) => textWidth(g, TICK_SIZE)));
  const rotate = maxLabel > slot - 6;
  const extra = rotate ? Math.min(140, maxLabel * 0.6) : 0;
  const { rect: r, legendX } = layout(width, height, yAxis, legend, title, yLabel, extra);

  const G = Math.max(1, groups.length);
  const S = Math.max(1, series.length);
  const gw = r.w / G;
  const bw = (gw * 0.8) / S;
  const base = r.y + r.h * (1 - yAxis.unit(Math.min(Math.max(0, ticks.min), ticks.max)));
  const longest = Math.max(0, ...all.map((v) => textWidth(formatValue(v), 10)));
  const showValues = opts.valueLabels ?? longest <= bw + 4;

  let s = svgOpen(width, height) + titleSvg(title, width) + clipSvg(r) + yAxisSvg(r, yAxis);
  s += `<g clip-path="url(#plot-area)">\n`;
  series.forEach((ser, j) => {
    const color = PALETTE[j % PALETTE.length];
    ser.values.forEach((v, g) => {
      const x = r.x + g * gw + gw * 0.1 + j * bw;
      if (!keep(v, false)) {
        s += `<text class="missing" x="${n2(x + bw / 2)}" y="${n2(base - 4)}" font-size="9" ` +
          `text-anchor="middle" fill="#888">n/a</text>\n`;
        return;
      }
      const py = r.y + r.h * (1 - yAxis.unit(v));
      const top = Math.min(py, base);
      s += `<rect class="bar" data-series="${escapeXml(ser.name)}" x="${n2(x)}" y="${n2(top)}" ` +
        `width="${n2(Math.max(1, bw - 1))}" height="${
          n2(Math.abs(base - py))
        }" fill="${color}"/>\n`;
      if (showValues) {
        const ty = v >= 0 ? top - 4 : top + Math.abs(base - py) + 12;
        s += `<text class="value" x="${n2(x + bw / 2)}" y="${n2(ty)}" font-size="10" ` +
          `text-anchor="middle" fill="#222">${escapeXml(formatValue(v))}</text>\n`;
      }
    });
  });
  s += "</g>\n";
  groups.forEach((g, i) => {
    const cx = r.x + gw * (i + 0.5);
    const ty = r.y + r.h + 18;
    s += rotate
      ? `<text class="xtick" x="${n2(cx)}" y="${
        n2(ty)
      }" font-size="${TICK_SIZE}" text-anchor="end" ` +
        `transform="rotate(-35 ${n2(cx)} ${n2(ty)})" fill="#333">${escapeXml(g)}</text>\n`
      : `<text class="xtick" x="${n2(cx)}" y="${n2(ty)}" font-size="${TICK_SIZE}" ` +
        `text-anchor="middle" fill="#333">${escapeXml(g)}</text>\n`;
  });
  s += `<line x1="${n2(r.x)}" y1="${n2(base)}" x2="${n2(r.x + r.w)}" y2="${
    n2(base)
  }" stroke="#444"/>\n`;
  s += frameSvg(r) + axisLabelsSvg(r, height, undefined, yLabel);
  s += legendSvg(legend, legendX, r.y);
  return s + "</svg>\n";
}

/** One labelled point of a {@linkcode scatterChart}. */
export interface ScatterPoint {
  x: number;
  y: number;
  /** Printed beside the point. */
  label: string;
  /** Colour group (shown in the legend); default: one colour for all. */
  group?: string;
}

/** Options of {@linkcode scatterChart}. */
export interface ScatterChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  points: readonly ScatterPoint[];
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
}

/** Labelled scatter plot (e.g. pre-training cost vs accuracy): `<circle class="point">` each. */
export function scatterChart(opts: ScatterChartOptions): string {
  const { width = 640, height = 400, title, xLabel, yLabel, points } = opts;
  const logX = opts.logX ?? false;
  const logY = opts.logY ?? false;
  const shown = points.filter((p) => keep(p.x, logX) && keep(p.y, logY));
  // Padded ranges keep points (and their labels) off the frame.
  const xAxis = makeAxis(shown.map((p) => p.x), logX, 8, 0.06);
  const yAxis = makeAxis(shown.map((p) => p.y), logY, 6, 0.08);
  const groupNames = [...new Set(shown.map((p) => p.group).filter((g): g is string => !!g))];
  const colorOf = (g?: string) =>
    g === undefined ? PALETTE[0] : PALETTE[Math.max(0, groupNames.indexOf(g)) % PALETTE.length];
  const legend: LegendItem[] = groupNames.map((g) => ({ name: g, color: colorOf(g), kind: "dot" }));
  const { rect: r, legendX } = layout(width, height, yAxis, legend, title, yLabel);

  let s = svgOpen(width, height) + titleSvg(title, width);
  s += yAxisSvg(r, yAxis) + xAxisSvg(r, xAxis);
  const xy = shown.map((p) => [r.x + r.w * xAxis.unit(p.x), r.y + r.h * (1 - yAxis.unit(p.y))]);
  shown.forEach((p, i) => {
    const [px, py] = xy[i];
    s += `<circle class="point" cx="${n2(px)}" cy="${n2(py)}" r="5" fill="${colorOf(p.group)}" ` +
      `stroke="#fff"/>\n`;
  });
  // Labels are not clipped: a label may run past the frame rather than vanish.
  shown.forEach((p, i) => {
    const [px, py] = xy[i];
    if (p.label) {
      // Keep labels inside the plot: put them left of points in the right quarter.
      const right = px > r.x + r.w * 0.75;
      s += `<text class="label" x="${n2(right ? px - 8 : px + 8)}" y="${n2(py - 7)}" ` +
        `font-size="${TICK_SIZE}" text-anchor="${right ? "end" : "start"}" fill="#222">` +
        `${escapeXml(p.label)}</text>\n`;
    }
  });
  s += frameSvg(r) + axisLabelsSvg(r, height, xLabel, yLabel);
  s += legendSvg(legend, legendX, r.y);
  return s + "</svg>\n";
}

/** Options of {@linkcode confusionMatrixSvg}. */
export interface ConfusionMatrixOptions {
  title?: string;
  /** Colour and print row-normalised fractions (default true); else raw counts. */
  normalize?: boolean;
  colormap?: ColormapName;
  /** Side of one cell in pixels (default: fits about 480 px, 14..60). */
  cellSize?: number;
}

/**
 * Confusion-matrix heatmap: rows are true classes, columns predictions; one
 * `<rect class="cell">` per entry, values printed when cells are large
 * enough, and a colour bar.
 */
export function confusionMatrixSvg(
  matrix: readonly (readonly number[])[],
  classNames: readonly string[],
  opts: ConfusionMatrixOptions = {},
): string {
  const n = matrix.length;
  if (n === 0) throw new Error("confusionMatrixSvg: empty matrix");
  matrix.forEach((row, i) => {
    if (row.length !== n) {
      throw new Error(`confusionMatrixSvg: row ${i} has ${row.length} entries, expected ${n}`);
    }
  });
  if (classNames.length !== n) {
    throw new Error(`confusionMatrixSvg: ${classNames.length} class names for a ${n}x${n} matrix`);
  }
  const normalize = opts.normalize ?? true;
  const cmap = opts.colormap ?? "viridis";
  const cell = opts.cellSize ?? Math.min(60, Math.max(14, Math.floor(480 / n)));
  const shown = matrix.map((row) => {
    const sum = row.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    return row.map((v) => (normalize ? (sum > 0 ? v / sum : 0) : v));
  });
  const vmax = normalize ? 1 : Math.max(1e-12, ...shown.flat().filter(Number.isFinite));

  const nameW = Math.max(...classNames.map((c) => textWidth(c, TICK_SIZE)));
  const left = 34 + nameW + 8;
  const top = opts.title ? 48 : 16;
  const gridW = cell * n;
  const bottom = 32 + nameW * 0.72 + 8;
  const barX = left + gridW + 20;
  const width = Math.ceil(barX + 16 + 50);
  const height = Math.ceil(top + gridW + bottom);

  let s = svgOpen(width, height) + titleSvg(opts.title, width);
  const font = Math.min(12, cell * 0.32);
  const showText = cell >= 22;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = shown[i][j];
      const t = Number.isFinite(v) ? v / vmax : 0;
      const rgb = colormapRgb(t, cmap);
      const x = left + j * cell;
      const y = top + i * cell;
      s += `<rect class="cell" x="${n2(x)}" y="${n2(y)}" width="${cell}" height="${cell}" ` +
        `fill="${rgbHex(rgb)}"/>\n`;
      if (showText) {
        const lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
        const label = normalize ? v.toFixed(2) : formatValue(v);
        s += `<text x="${n2(x + cell / 2)}" y="${n2(y + cell / 2 + font * 0.35)}" ` +
          `font-size="${n2(font)}" text-anchor="middle" fill="${lum < 0.5 ? "#fff" : "#000"}">` +
          `${escapeXml(label)}</text>\n`;
      }
    }
  }
  s +=
    `<rect x="${left}" y="${top}" width="${gridW}" height="${gridW}" fill="none" stroke="#444"/>\n`;
  classNames.forEach((c, i) => {
    const cy = top + (i + 0.5) * cell;
    s += `<text class="ytick" x="${n2(left - 6)}" y="${n2(cy + 4)}" font-size="${TICK_SIZE}" ` +
      `text-anchor="end" fill="#333">${escapeXml(c)}</text>\n`;
    const cx = left + (i + 0.5) * cell;
    const ty = top + gridW + 12;
    s +=
      `<text class="xtick" x="${n2(cx)}" y="${
        n2(ty)
      }" font-size="${TICK_SIZE}" text-anchor="end" ` +
      `transform="rotate(-45 ${n2(cx)} ${n2(ty)})" fill="#333">${escapeXml(c)}</text>\n`;
  });
  const cy = top + gridW / 2;
  s += `<text class="ylabel" x="16" y="${n2(cy)}" font-size="${LABEL_SIZE}" text-anchor="middle" ` +
    `transform="rotate(-90 16 ${n2(cy)})" fill="#222">True</text>\n`;
  s +=
    `<text class="xlabel" x="${n2(left + gridW / 2)}" y="${
      height - 10
    }" font-size="${LABEL_SIZE}" ` +
    `text-anchor="middle" fill="#222">Predicted</text>\n`;

  // Colour bar: 0 at the bottom, vmax at the top.
  s += `<defs><linearGradient id="cbar" x1="0" y1="1" x2="0" y2="0">\n`;
  for (let k = 0; k <= 10; k++) {
    s += `<stop offset="${k / 10}" stop-color="${rgbHex(colormapRgb(k / 10, cmap))}"/>\n`;
  }
  s += `</linearGradient></defs>\n`;
  s += `<rect x="${
    n2(barX)
  }" y="${top}" width="16" height="${gridW}" fill="url(#cbar)" stroke="#444"/>\n`;
  const barTicks = niceTicks(0, vmax, 5);
  for (const v of barTicks.values) {
    if (v > vmax + 1e-12) continue;
    const py = top + gridW * (1 - v / vmax);
    s += `<line x1="${n2(barX + 16)}" y1="${n2(py)}" x2="${n2(barX + 20)}" y2="${
      n2(py)
    }" stroke="#444"/>\n`;
    s += `<text x="${n2(barX + 23)}" y="${n2(py + 4)}" font-size="${TICK_SIZE - 1}" fill="#333">` +
      `${escapeXml(formatTick(v, barTicks))}</text>\n`;
  }
  return s + "</svg>\n";
}
