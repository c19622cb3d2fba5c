/**
 * Charts for run folders, drawn by Vega-Lite: line (loss / lr / accuracy
 * curves), grouped bars (accuracy and cost per method, ours vs paper),
 * labelled scatter (cost vs accuracy) and heat maps (confusion matrices,
 * per-patch probabilities). Each builder compiles a Vega-Lite spec, renders
 * it headless with Vega (no browser, no canvas) and resolves to a standalone
 * SVG string; turn it into a PNG with `svgToPng`.
 *
 * Vega measures text with a canvas when it has one; here it has none, so
 * {@linkcode renderVegaLite} installs a table of DejaVu Sans advance widths
 * (the font librsvg draws with) instead of Vega's rough `0.8 em` guess, so
 * legends and axis titles are laid out to fit.
 *
 * Non-finite values (and, on log axes, non-positive ones) and nulls are
 * dropped before the spec is built.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import { type ColormapName, colormapRgb, rgbHex } from "./colormap.ts";

/** A Vega-Lite specification (the `vega-lite` package's `TopLevelSpec`). */
export type VegaLiteSpec = TopLevelSpec;

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

/** The font every chart asks for; librsvg (sharp) has it on Debian / Ubuntu. */
export const CHART_FONT = "DejaVu Sans, Verdana, Arial, sans-serif";

// Advance widths of ASCII 32..126 in DejaVu Sans (regular, bold), in 1/1000 em,
// read from the fonts' hmtx tables.
// deno-fmt-ignore
const DEJAVU_REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
  636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632,
  575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685,
  611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
  278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
// deno-fmt-ignore
const DEJAVU_BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
  696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683,
  683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
  724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
  343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];

/**
 * Width in pixels of `text` set in DejaVu Sans at `fontSize` px (characters
 * outside ASCII count 0.65 em).
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? DEJAVU_BOLD : DEJAVU_REGULAR;
  let w = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    w += c >= 32 && c < 127 ? table[c - 32] : 650;
  }
  return (w / 1000) * fontSize;
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

/** Short label for a data value (about 3 significant digits). */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/** Shared look: font, sizes, white background, light grid. */
const BASE_CONFIG = {
  font: CHART_FONT,
  background: "#ffffff",
  padding: 12,
  title: { fontSize: 15, anchor: "middle", offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 13, gridColor: "#e4e4e4", titlePadding: 8 },
  legend: { labelFontSize: 12, titleFontSize: 12, symbolSize: 120 },
  header: { labelFontSize: 12, titleFontSize: 13 },
  view: { stroke: "#444" },
} as const;

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  text?: unknown;
  limit?: number;
}

let vegaModule: Promise<typeof import("vega")> | null = null;

/** Vega, loaded on first use (it is large; tasks that draw nothing never pay for it). */
function loadVega(): Promise<typeof import("vega")> {
  vegaModule ??= import("vega").then((vega) => {
    const metrics = (vega as unknown as { textMetrics?: { width: unknown } }).textMetrics;
    if (metrics) {
      metrics.width = (item: TextItem, text?: unknown) => {
        const value = text ?? item.text;
        const s = Array.isArray(value) ? value.join(" ") : value == null ? "" : String(value);
        const w = item.fontWeight;
        const bold = w === "bold" || (typeof w === "number" && w >= 600) ||
          (typeof w === "string" && Number(w) >= 600);
        return textWidth(s, item.fontSize ?? 11, bold);
      };
    }
    return vega;
  });
  return vegaModule;
}

/**
 * Renders a Vega-Lite spec to an SVG string, headless. The spec's own
 * `config` is merged over the shared chart look (font, sizes, background).
 *
 * @example
 * ```ts
 * import { renderVegaLite } from "./charts.ts";
 * const svg = await renderVegaLite({
 *   data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] },
 *   mark: "line",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * if (!svg.startsWith("<svg")) throw new Error("not svg");
 * ```
 */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<string> {
  const [vega, vl] = await Promise.all([loadVega(), import("vega-lite")]);
  const merged = {
    ...spec,
    config: mergeDeep(BASE_CONFIG, (spec as { config?: object }).config ?? {}),
  } as VegaLiteSpec;
  const compiled = vl.compile(merged).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function mergeDeep(a: object, b: object): object {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && prev && typeof prev === "object"
      ? mergeDeep(prev as object, v as object)
      : v;
  }
  return out;
}

function keep(v: number | null | undefined, log: boolean): v is number {
  return typeof v === "number" && Number.isFinite(v) && (!log || v > 0);
}

/** Width and height of the plot area for a chart of `width x height` pixels in all. */
function fitSize(width: number, height: number) {
  return { width, height, autosize: { type: "fit", contains: "padding" } } as const;
}

/** One line of a {@linkcode lineChart}. */
export interface LineSeries {
  name: string;
  x: readonly number[];
  /** Same length as `x`; null / NaN points are skipped. */
  y: readonly (number | null)[];
  /** Dashed stroke (e.g. train accuracy next to test accuracy). */
  dashed?: boolean;
}

/** A vertical marker line of a {@linkcode lineChart} (e.g. "AMT starts"). */
export interface RuleMark {
  x: number;
  label: string;
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
  /** Y axis tick format (d3-format, e.g. `".0%"` for fractions shown as percent). */
  yFormat?: string;
  /** Y range override (default: the data, padded to nice numbers). */
  yDomain?: readonly [number, number];
  /** Vertical marker lines with labels. */
  rules?: readonly RuleMark[];
  /** Pixels of the whole chart (default 640 x 400). */
  width?: number;
  height?: number;
}

/**
 * A line chart, one coloured line per series (legend on the right when there
 * are several), with optional markers, log axes and labelled vertical rules.
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const svg = await lineChart({ title: "loss", xLabel: "epoch", yLabel: "MSE", logY: true,
 *   series: [{ name: "MAE", x: [1, 2, 3], y: [1, 0.3, 0.1] }] });
 * if (!svg.includes('aria-roledescription="line mark"')) throw new Error("no line");
 * ```
 */
export function lineChart(opts: LineChartOptions): Promise<string> {
  const { width = 640, height = 400, title, xLabel, yLabel, series } = opts;
  const logY = opts.logY ?? false;
  const logX = opts.logX ?? false;
  const names = uniqueNames(series.map((s) => s.name));
  const rows: { series: string; x: number; y: number; i: number }[] = [];
  series.forEach((s, k) => {
    if (s.x.length !== s.y.length) {
      throw new Error(
        `lineChart: series "${s.name}" has ${s.x.length} x but ${s.y.length} y values`,
      );
    }
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (keep(x, logX) && keep(y, logY)) rows.push({ series: names[k], x, y, i });
    }
  });
  const counts = names.map((n) => rows.filter((r) => r.series === n).length);
  const markers = opts.markers ?? counts.every((c) => c <= 40);
  const dashedNames = names.filter((_, k) => series[k].dashed);
  const legend = series.length > 1 ? { title: null, orient: "right" as const } : null;
  const color = {
    field: "series",
    type: "nominal" as const,
    scale: { domain: names, range: names.map((_, k) => PALETTE[k % PALETTE.length]) },
    legend,
  };
  const layers: unknown[] = [{
    mark: {
      type: "line",
      strokeWidth: 2,
      clip: opts.yDomain !== undefined,
      point: markers ? { size: 30 } : false,
    },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: xLabel ?? null,
        scale: logX ? { type: "log", nice: true } : { zero: false, nice: true },
        // Epochs and steps: no ticks between whole numbers.
        axis: !logX && rows.every((r) => Number.isInteger(r.x)) ? { tickMinStep: 1 } : {},
      },
      y: {
        field: "y",
        type: "quantitative",
        title: yLabel ?? null,
        scale: {
          ...(logY ? { type: "log" } : { zero: false }),
          nice: true,
          ...(opts.yDomain ? { domain: [...opts.yDomain] } : {}),
        },
        axis: opts.yFormat ? { format: opts.yFormat } : {},
      },
      color,
      order: { field: "i", type: "quantitative" },
      ...(dashedNames.length > 0
        ? {
          strokeDash: {
            field: "series",
            type: "nominal",
            scale: {
              domain: names,
              range: names.map((n) => (dashedNames.includes(n) ? [6, 4] : [1, 0])),
            },
            // Same field and legend as the colour: Vega-Lite merges them into one legend.
            legend,
          },
        }
        : {}),
    },
  }];
  const rules = (opts.rules ?? []).filter((r) => keep(r.x, logX));
  if (rules.length > 0) {
    layers.push({
      data: { values: rules.map((r) => ({ x: r.x, label: r.label })) },
      mark: { type: "rule", color: "#666", strokeDash: [4, 3] },
      encoding: { x: { field: "x", type: "quantitative" } },
    }, {
      data: { values: rules.map((r) => ({ x: r.x, label: r.label })) },
      mark: {
        type: "text",
        align: "left",
        baseline: "top",
        dx: 4,
        dy: 4,
        y: 0,
        fontSize: 11,
        color: "#444",
      },
      encoding: { x: { field: "x", type: "quantitative" }, text: { field: "label" } },
    });
  }
  return renderVegaLite({
    ...fitSize(width, height),
    ...(title ? { title } : {}),
    data: { values: rows },
    layer: layers,
  } as VegaLiteSpec);
}

/** Series names made unique (Vega groups by name), keeping order. */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = seen.get(n) ?? 0;
    seen.set(n, k + 1);
    return k === 0 ? n : `${n} (${k + 1})`;
  });
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
  /** Print values above bars (default true). */
  valueLabels?: boolean;
  /** Y axis tick format (d3-format), also used for value labels. */
  yFormat?: string;
  /** Y range overrides (by default it spans 0 and the data). */
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

/**
 * Grouped bar chart: one bar per non-null value, side by side within each
 * group; missing values are marked "n/a" at the baseline.
 *
 * @example
 * ```ts
 * import { barChart } from "./charts.ts";
 * const svg = await barChart({ title: "linear probe", yLabel: "top-1 (%)",
 *   groups: ["MAE", "MAE+AMT"], series: [{ name: "ours", values: [71, 73] },
 *   { name: "paper", values: [68, null] }] });
 * if (!svg.includes("n/a")) throw new Error("missing value not marked");
 * ```
 */
export function barChart(opts: BarChartOptions): Promise<string> {
  const { width = 640, height = 400, title, yLabel, groups, series } = opts;
  for (const s of series) {
    if (s.values.length !== groups.length) {
      throw new Error(
        `barChart: series "${s.name}" has ${s.values.length} values for ${groups.length} groups`,
      );
    }
  }
  const names = uniqueNames(series.map((s) => s.name));
  const groupNames = uniqueNames(groups);
  const rows: { group: string; series: string; value: number; label: string }[] = [];
  const missing: { group: string; series: string }[] = [];
  series.forEach((s, k) =>
    s.values.forEach((v, g) => {
      if (keep(v, false)) {
        rows.push({ group: groupNames[g], series: names[k], value: v, label: formatValue(v) });
      } else missing.push({ group: groupNames[g], series: names[k] });
    })
  );
  const all = rows.map((r) => r.value);
  const showValues = opts.valueLabels ?? true;
  const lo = opts.yMin ?? Math.min(0, ...all);
  const top = Math.max(0, ...all, lo + 1e-9);
  // Headroom for the value labels above the tallest bar.
  const hi = opts.yMax ?? (showValues ? top + (top - lo) * 0.06 : top);
  const longest = Math.max(0, ...groups.map((g) => textWidth(g, 11)));
  // Plot width left by the y axis, the padding and (with several series) the legend.
  const legendW = series.length > 1 ? Math.max(...names.map((n) => textWidth(n, 12))) + 40 : 0;
  const plotW = width - 90 - legendW;
  const rotate = longest > plotW / Math.max(1, groups.length) - 8;
  const x = {
    field: "group",
    type: "nominal" as const,
    sort: groupNames,
    title: null,
    axis: { labelAngle: rotate ? -35 : 0, labelLimit: 160 },
  };
  const xOffset = { field: "series", type: "nominal" as const, sort: names };
  const y = {
    field: "value",
    type: "quantitative" as const,
    title: yLabel ?? null,
    scale: { domain: [lo, hi], nice: true, zero: true },
    axis: opts.yFormat ? { format: opts.yFormat } : {},
  };
  const color = {
    field: "series",
    type: "nominal" as const,
    scale: { domain: names, range: names.map((_, k) => PALETTE[k % PALETTE.length]) },
    legend: series.length > 1 ? { title: null } : null,
  };
  const layers: unknown[] = [{
    mark: { type: "bar", clip: true },
    encoding: { x, xOffset, y, color },
  }];
  if (showValues) {
    layers.push({
      mark: { type: "text", dy: -5, fontSize: 10, color: "#222", clip: true },
      encoding: {
        x,
        xOffset,
        y,
        text: opts.yFormat
          ? { field: "value", type: "quantitative", format: opts.yFormat }
          : { field: "label" },
      },
    });
  }
  if (missing.length > 0) {
    layers.push({
      data: { values: missing.map((m) => ({ ...m, value: Math.max(lo, Math.min(0, hi)) })) },
      mark: { type: "text", dy: -5, fontSize: 9, color: "#888", text: "n/a" },
      encoding: { x, xOffset, y },
    });
  }
  return renderVegaLite({
    ...fitSize(width, height),
    ...(title ? { title } : {}),
    data: { values: rows },
    layer: layers,
  } as VegaLiteSpec);
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
  /** Axis tick formats (d3-format). */
  xFormat?: string;
  yFormat?: string;
  width?: number;
  height?: number;
}

/**
 * Labelled scatter plot (e.g. pre-training cost vs accuracy). Labels sit
 * right of their point, or left of it in the right quarter of the plot.
 *
 * @example
 * ```ts
 * import { scatterChart } from "./charts.ts";
 * const svg = await scatterChart({ xLabel: "GPU hours", yLabel: "top-1",
 *   points: [{ x: 10, y: 0.7, label: "MAE" }, { x: 6, y: 0.72, label: "MAE+AMT" }] });
 * if (!svg.includes("MAE+AMT")) throw new Error("label missing");
 * ```
 */
export function scatterChart(opts: ScatterChartOptions): Promise<string> {
  const { width = 640, height = 400, title, xLabel, yLabel, points } = opts;
  const logX = opts.logX ?? false;
  const logY = opts.logY ?? false;
  const shown = points.filter((p) => keep(p.x, logX) && keep(p.y, logY));
  const xs = shown.map((p) => (logX ? Math.log10(p.x) : p.x));
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const rows = shown.map((p, i) => ({
    x: p.x,
    y: p.y,
    label: p.label,
    group: p.group ?? "",
    // Labels of the right-most points go to their left, so they stay inside.
    side: x1 > x0 && (xs[i] - x0) / (x1 - x0) > 0.75 ? "left" : "right",
  }));
  const groups = [...new Set(rows.map((r) => r.group).filter((g) => g !== ""))];
  const axis = (field: "x" | "y", label: string | undefined, log: boolean, format?: string) => ({
    field,
    type: "quantitative" as const,
    title: label ?? null,
    scale: { ...(log ? { type: "log" } : { zero: false }), nice: true, padding: 24 },
    axis: format ? { format } : {},
  });
  const color = groups.length > 0
    ? {
      field: "group",
      type: "nominal" as const,
      scale: { domain: groups, range: groups.map((_, k) => PALETTE[k % PALETTE.length]) },
      legend: { title: null },
    }
    : { value: PALETTE[0] };
  const enc = {
    x: axis("x", xLabel, logX, opts.xFormat),
    y: axis("y", yLabel, logY, opts.yFormat),
  };
  const label = (side: "left" | "right") => ({
    transform: [{ filter: `datum.side === '${side}'` }],
    mark: {
      type: "text",
      align: side === "right" ? "left" : "right",
      dx: side === "right" ? 8 : -8,
      dy: -7,
      fontSize: 11,
      color: "#222",
    },
    encoding: { ...enc, text: { field: "label" } },
  });
  return renderVegaLite({
    ...fitSize(width, height),
    ...(title ? { title } : {}),
    data: { values: rows },
    layer: [
      {
        mark: { type: "point", filled: true, size: 90, opacity: 1, stroke: "#fff" },
        encoding: { ...enc, color },
      },
      label("right"),
      label("left"),
    ],
  } as VegaLiteSpec);
}

/** `n` colours sampled evenly from a colormap, as a Vega scale range. */
function colormapRange(name: ColormapName, n = 9): string[] {
  return Array.from({ length: n }, (_, i) => rgbHex(colormapRgb(i / (n - 1), name)));
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
 * Confusion-matrix heat map: rows are true classes, columns predictions;
 * values printed when cells are large enough, with a colour legend.
 */
export function confusionMatrixSvg(
  matrix: readonly (readonly number[])[],
  classNames: readonly string[],
  opts: ConfusionMatrixOptions = {},
): Promise<string> {
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
  const names = uniqueNames(classNames);
  const rows: { truth: string; pred: string; value: number; label: string; dark: boolean }[] = [];
  let vmax = normalize ? 1 : 1e-12;
  const shown = matrix.map((row) => {
    const sum = row.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    return row.map((v) => (Number.isFinite(v) ? (normalize ? (sum > 0 ? v / sum : 0) : v) : 0));
  });
  if (!normalize) vmax = Math.max(vmax, ...shown.flat());
  shown.forEach((row, i) =>
    row.forEach((v, j) => {
      const rgb = colormapRgb(v / vmax, cmap);
      const lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
      rows.push({
        truth: names[i],
        pred: names[j],
        value: v,
        label: normalize ? v.toFixed(2) : formatValue(v),
        dark: lum < 0.5,
      });
    })
  );
  const enc = {
    x: {
      field: "pred",
      type: "ordinal",
      sort: names,
      title: "Predicted",
      axis: { labelAngle: -45 },
    },
    y: { field: "truth", type: "ordinal", sort: names, title: "True" },
  };
  const layers: unknown[] = [{
    mark: { type: "rect" },
    encoding: {
      ...enc,
      color: {
        field: "value",
        type: "quantitative",
        scale: { domain: [0, vmax], range: colormapRange(cmap) },
        legend: { title: null, gradientLength: Math.max(60, cell * n - 20) },
      },
    },
  }];
  if (cell >= 22) {
    layers.push({
      mark: { type: "text", fontSize: Math.min(12, cell * 0.32) },
      encoding: {
        ...enc,
        text: { field: "label" },
        color: { condition: { test: "datum.dark", value: "#fff" }, value: "#000" },
      },
    });
  }
  return renderVegaLite({
    ...(opts.title ? { title: opts.title } : {}),
    width: cell * n,
    height: cell * n,
    data: { values: rows },
    layer: layers,
  } as VegaLiteSpec);
}

/** One map of a {@linkcode heatmapGridSvg}, drawn in grid cell (row, column). */
export interface HeatmapPanel {
  /** Row label of the panel grid (e.g. a strategy). */
  row: string;
  /** Column label of the panel grid (e.g. "masked"). */
  column: string;
  /** [height, width] row-major values (e.g. per-patch probabilities). */
  values: ArrayLike<number>;
  height: number;
  width: number;
}

/** Options of {@linkcode heatmapGridSvg}. */
export interface HeatmapGridOptions {
  title?: string;
  /** Colour scale range (default [0, max of the data]). */
  domain?: readonly [number, number];
  colormap?: ColormapName;
  /** Legend title, e.g. "P(masked)". */
  legendTitle?: string;
  /** Side of one map cell in pixels (default 12). */
  cellSize?: number;
  /** Print each cell's value (only sensible for small maps). */
  valueLabels?: boolean;
}

/**
 * A grid of heat maps sharing one colour scale: panels are faceted by their
 * `row` and `column` labels (e.g. sampler probabilities per strategy and
 * patch group). Each panel draws one `rect` per value.
 *
 * @example
 * ```ts
 * import { heatmapGridSvg } from "./charts.ts";
 * const svg = await heatmapGridSvg([{ row: "amt", column: "masked", height: 2, width: 2,
 *   values: [0.1, 0.9, 0.5, 0.2] }], { legendTitle: "P" });
 * if (!svg.includes("masked")) throw new Error("no header");
 * ```
 */
export function heatmapGridSvg(
  panels: readonly HeatmapPanel[],
  opts: HeatmapGridOptions = {},
): Promise<string> {
  if (panels.length === 0) throw new Error("heatmapGridSvg: no panels");
  const rows: { row: string; column: string; i: number; j: number; value: number }[] = [];
  let vmax = -Infinity;
  let vmin = Infinity;
  for (const p of panels) {
    if (p.values.length !== p.height * p.width) {
      throw new Error(
        `heatmapGridSvg: panel ${p.row}/${p.column} has ${p.values.length} values, ` +
          `expected ${p.height}x${p.width} = ${p.height * p.width}`,
      );
    }
    for (let i = 0; i < p.height; i++) {
      for (let j = 0; j < p.width; j++) {
        const v = p.values[i * p.width + j];
        if (!Number.isFinite(v)) continue;
        rows.push({ row: p.row, column: p.column, i, j, value: v });
        vmax = Math.max(vmax, v);
        vmin = Math.min(vmin, v);
      }
    }
  }
  const domain = opts.domain ? [...opts.domain] : [Math.min(0, vmin), vmax > 0 ? vmax : 1];
  const cell = opts.cellSize ?? 12;
  const h = Math.max(...panels.map((p) => p.height));
  const w = Math.max(...panels.map((p) => p.width));
  const rowNames = [...new Set(panels.map((p) => p.row))];
  const colNames = [...new Set(panels.map((p) => p.column))];
  const noAxis = { labels: false, ticks: false, title: null, domain: false, grid: false };
  const enc = {
    x: { field: "j", type: "ordinal", axis: noAxis, scale: { domain: range(w) } },
    y: { field: "i", type: "ordinal", axis: noAxis, scale: { domain: range(h) } },
  };
  const layers: unknown[] = [{
    mark: { type: "rect" },
    encoding: {
      ...enc,
      color: {
        field: "value",
        type: "quantitative",
        scale: { domain, range: colormapRange(opts.colormap ?? "viridis") },
        legend: { title: opts.legendTitle ?? null, gradientLength: Math.max(80, cell * h) },
      },
    },
  }];
  if (opts.valueLabels) {
    layers.push({
      mark: { type: "text", fontSize: Math.min(11, cell * 0.3), color: "#fff" },
      encoding: { ...enc, text: { field: "value", type: "quantitative", format: ".2f" } },
    });
  }
  return renderVegaLite({
    ...(opts.title ? { title: opts.title } : {}),
    data: { values: rows },
    facet: {
      ...(rowNames.length > 1 || rowNames[0] !== ""
        ? { row: { field: "row", type: "nominal", sort: rowNames, title: null } }
        : {}),
      column: { field: "column", type: "nominal", sort: colNames, title: null },
    },
    spec: { width: cell * w, height: cell * h, layer: layers },
    resolve: { scale: { color: "shared" } },
  } as VegaLiteSpec);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
