/**
 * Figures for run folders: PNG I/O, Vega-Lite charts, colormaps, image grids,
 * mask-plan pictures, reconstruction pastes and rows.
 *
 * @module
 */

export {
  encodePng,
  readPng,
  svgToPng,
  svgToPngBytes,
  type SvgToPngOptions,
  toUint8,
  writePng,
  type WritePngOptions,
} from "./png.ts";
export {
  barChart,
  type BarChartOptions,
  type BarSeries,
  CHART_FONT,
  type ConfusionMatrixOptions,
  confusionMatrixSvg,
  escapeXml,
  formatValue,
  type HeatmapGridOptions,
  heatmapGridSvg,
  type HeatmapPanel,
  lineChart,
  type LineChartOptions,
  type LineSeries,
  PALETTE,
  renderVegaLite,
  type RuleMark,
  scatterChart,
  type ScatterChartOptions,
  type ScatterPoint,
  textWidth,
  type VegaLiteSpec,
} from "./charts.ts";
export {
  colorize,
  type ColormapName,
  colormapRgb,
  normalizeMap,
  overlay,
  type Rgb,
  rgbHex,
} from "./colormap.ts";
export {
  type GridLayout,
  gridLayout,
  imageGrid,
  type ImageGridOptions,
  imageGridPng,
  imageGridPngBytes,
  type ImageGridPngOptions,
  type LegendEntry,
  maskedImage,
  pasteReconstruction,
  PLAN_COLORS,
  PLAN_LEGEND,
  planImage,
  type PlanImageOptions,
  reconstructionRow,
} from "./grid.ts";
// One image's rows of a plan: a mim function, re-exported for the figure code that uses it.
export { type ImagePlan, planForImage } from "../mim/plan.ts";
export {
  type AccuracyCurve,
  accuracyCurveChart,
  type AttentionCurve,
  attentionOnObjectChart,
  epochSeries,
  type LogRecord,
  lossCurveChart,
  lrCurveChart,
  phaseChanges,
} from "./run_charts.ts";
export { type PlanProbabilities, planProbabilities } from "./plan_stats.ts";
