/**
 * Figures for run folders: PNG I/O, Vega-Lite charts, colormaps, image grids,
 * mask-plan pictures, reconstruction pastes and rows, HOG glyphs (MaskFeat).
 *
 * @module
 */

export {
  encodePng,
  readPng,
  svgToPng,
  svgToPngBytes,
  type SvgToPngOptions,
  writePng,
  type WritePngOptions,
} from "./png.ts";
export {
  barChart,
  type BarChartOptions,
  type BarSeries,
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
  renderVegaLite,
  type RuleMark,
  scatterChart,
  type ScatterChartOptions,
  type ScatterPoint,
  textWidth,
  type VegaLiteSpec,
} from "./charts.ts";
export { colorize, type ColormapName, colormapRgb, overlay, type Rgb } from "./colormap.ts";
export {
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
export { hogGlyphImage, type HogGlyphOptions, hogMaxValue, hogRow, hogUpscale } from "./hog.ts";
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
