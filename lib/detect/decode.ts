/**
 * From head outputs to detections: heatmap peaks (3x3 max-pool on the
 * device), boxes from offsets and log-sizes, class-wise NMS across levels,
 * top-k, and masks from prototypes (bilinear upsampling, cropped to the box).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DetectorOutput } from "./model.ts";
import { boxIou } from "./rle.ts";

/** One detection in input pixels. */
export interface Detection {
  label: number;
  score: number;
  /** `[x, y, w, h]` in input pixels. */
  bbox: [number, number, number, number];
  /** Row-major `S x S` bitmap (when masks were asked for). */
  mask?: Uint8Array;
}

/** Options of {@link decodeDetections}. */
export interface DecodeOptions {
  imageSize: number;
  strides: number[];
  protoStride: number;
  /** Detections kept per image (default 100). */
  maxDets?: number;
  /** Peaks below this score are dropped (default 0.01). */
  scoreThreshold?: number;
  /** Class-wise NMS IoU (default 0.6). */
  nmsIou?: number;
  /** Compute masks (default true). */
  masks?: boolean;
}

/** Host copies of the outputs a decode needs. */
interface HostOutput {
  peaks: Float32Array[];
  reg: Float32Array[];
  coef: Float32Array[];
  protos: Float32Array;
  sizes: number[];
  K: number;
  M: number;
  protoSize: number;
}

/** Heatmap peaks and the other maps, read to the host in one go. */
async function toHost(out: DetectorOutput): Promise<HostOutput> {
  const peaksT = tf.tidy(() =>
    out.heat.map((logits) => {
      const p = tf.sigmoid(logits);
      const m = tf.maxPool(p, 3, 1, "same");
      return tf.mul(p, tf.cast(tf.equal(m, p), "float32"));
    })
  );
  try {
    const [peaks, reg, coef, protos] = await Promise.all([
      Promise.all(peaksT.map((t) => t.data() as Promise<Float32Array>)),
      Promise.all(out.reg.map((t) => t.data() as Promise<Float32Array>)),
      Promise.all(out.coef.map((t) => t.data() as Promise<Float32Array>)),
      out.protos.data() as Promise<Float32Array>,
    ]);
    return {
      peaks,
      reg,
      coef,
      protos,
      sizes: out.heat.map((h) => h.shape[1]),
      K: out.heat[0].shape[3],
      M: out.protos.shape[3],
      protoSize: out.protos.shape[1],
    };
  } finally {
    tf.dispose(peaksT);
  }
}

/** Greedy class-wise NMS; `dets` sorted by score, descending. */
export function nms<T extends { label: number; bbox: readonly number[] }>(
  dets: T[],
  iou: number,
): T[] {
  const kept: T[] = [];
  for (const d of dets) {
    if (kept.some((k) => k.label === d.label && boxIou(d.bbox, k.bbox) > iou)) continue;
    kept.push(d);
  }
  return kept;
}

/**
 * Decode a batch of outputs into detections per image (the outputs stay the
 * caller's to dispose).
 */
export async function decodeDetections(
  out: DetectorOutput,
  opts: DecodeOptions,
): Promise<Detection[][]> {
  const h = await toHost(out);
  const S = opts.imageSize;
  const maxDets = opts.maxDets ?? 100, thr = opts.scoreThreshold ?? 0.01;
  const B = out.heat[0].shape[0];
  const result: Detection[][] = [];
  for (let b = 0; b < B; b++) {
    const cands: (Detection & { l: number; cell: number })[] = [];
    h.sizes.forEach((n, l) => {
      const s = opts.strides[l];
      for (let iy = 0; iy < n; iy++) {
        for (let ix = 0; ix < n; ix++) {
          const cell = (b * n + iy) * n + ix;
          for (let k = 0; k < h.K; k++) {
            const score = h.peaks[l][cell * h.K + k];
            if (score < thr) continue;
            const r = h.reg[l].subarray(cell * 4, cell * 4 + 4);
            const cx = (ix + r[0]) * s, cy = (iy + r[1]) * s;
            const w = Math.exp(Math.min(r[2], 10)) * s, hh = Math.exp(Math.min(r[3], 10)) * s;
            const x0 = clamp(cx - w / 2, 0, S), y0 = clamp(cy - hh / 2, 0, S);
            const x1 = clamp(cx + w / 2, 0, S), y1 = clamp(cy + hh / 2, 0, S);
            if (x1 - x0 <= 0 || y1 - y0 <= 0) continue;
            cands.push({ label: k, score, bbox: [x0, y0, x1 - x0, y1 - y0], l, cell });
          }
        }
      }
    });
    cands.sort((a, c) => c.score - a.score);
    const kept = nms(cands.slice(0, 4 * maxDets), opts.nmsIou ?? 0.6).slice(0, maxDets);
    if (opts.masks !== false) {
      for (const d of kept) d.mask = instanceMask(h, b, d.l, d.cell, d.bbox, S);
    }
    result.push(
      kept.map((
        { label, score, bbox, mask },
      ) => (mask ? { label, score, bbox, mask } : { label, score, bbox })),
    );
  }
  return result;
}

/** `coef · protos[b]`, bilinearly upsampled to `S x S`, > 0 (sigmoid > 0.5) inside the box. */
function instanceMask(
  h: HostOutput,
  b: number,
  l: number,
  cell: number,
  bbox: number[],
  S: number,
): Uint8Array {
  const M = h.M, n = h.protoSize, P = n * n;
  const coef = h.coef[l].subarray(cell * M, cell * M + M);
  const logit = new Float32Array(P);
  const base = b * P * M;
  for (let p = 0; p < P; p++) {
    let v = 0;
    for (let m = 0; m < M; m++) v += coef[m] * h.protos[base + p * M + m];
    logit[p] = v;
  }
  const out = new Uint8Array(S * S);
  const x0 = Math.floor(bbox[0]), y0 = Math.floor(bbox[1]);
  const x1 = Math.min(S - 1, Math.ceil(bbox[0] + bbox[2]) - 1);
  const y1 = Math.min(S - 1, Math.ceil(bbox[1] + bbox[3]) - 1);
  const r = n / S;
  for (let y = y0; y <= y1; y++) {
    const fy = clamp((y + 0.5) * r - 0.5, 0, n - 1);
    const ya = Math.floor(fy), yb = Math.min(ya + 1, n - 1), ty = fy - ya;
    for (let x = x0; x <= x1; x++) {
      const fx = clamp((x + 0.5) * r - 0.5, 0, n - 1);
      const xa = Math.floor(fx), xb = Math.min(xa + 1, n - 1), tx = fx - xa;
      const v = (logit[ya * n + xa] * (1 - tx) + logit[ya * n + xb] * tx) * (1 - ty) +
        (logit[yb * n + xa] * (1 - tx) + logit[yb * n + xb] * tx) * ty;
      if (v > 0) out[y * S + x] = 1;
    }
  }
  return out;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
