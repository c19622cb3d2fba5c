/**
 * Figures for run folders: PNG I/O, SVG charts, colormaps, image grids,
 * mask-plan pictures and reconstruction pastes.
 *
 * @module
 */

export {
  encodePng,
  readPng,
  svgToPng,
  svgToPngBytes,
  toUint8,
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
  formatTick,
  formatValue,
  lineChart,
  type LineChartOptions,
  type LineSeries,
  logTicks,
  niceStep,
  niceTicks,
  PALETTE,
  scatterChart,
  type ScatterChartOptions,
  type ScatterPoint,
  type Ticks,
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
  type ImageGridPngOptions,
  type ImagePlan,
  maskedImage,
  pasteReconstruction,
  PLAN_COLORS,
  planForImage,
  planImage,
  type PlanImageOptions,
} from "./grid.ts";
