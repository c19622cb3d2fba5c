/**
 * Host-side training targets of the CenterNet-style head: per pyramid level a
 * class heatmap with Gaussian peaks at object centres, box regression at the
 * centre cells, and per object a one-hot selector of its centre cell plus a
 * mask target at prototype resolution. Built as typed arrays and uploaded
 * once per batch.
 *
 * Level assignment: an object goes to the level whose stride makes its longer
 * side closest (in log scale) to `objectCells` cells.
 *
 * @module
 */

/** One ground-truth object in input pixels. */
export interface GtObject {
  /** Class index 0..K-1. */
  label: number;
  /** `[x, y, w, h]` in input pixels. */
  bbox: readonly number[];
  /** Row-major `S x S` bitmap, or null. */
  mask: Uint8Array | null;
  /** Crowd regions are left out of the targets. */
  iscrowd?: boolean;
}

/** The geometry the targets are built for. */
export interface TargetGeometry {
  imageSize: number;
  numClasses: number;
  /** Stride (pixels per cell) of each level. */
  strides: number[];
  /** Prototype map stride (pixels per cell). */
  protoStride: number;
  objectCells: number;
}

/** A batch of targets. */
export interface DetTargets {
  batch: number;
  /** Per level: [B, h, w, K] Gaussian heatmap (exactly 1 at centres). */
  heat: Float32Array[];
  /** Per level: [B, h, w, 4] = (dx, dy, log(w/stride), log(h/stride)) at centre cells. */
  reg: Float32Array[];
  /** Per level: [B, h, w, 1], 1 at centre cells. */
  regMask: Float32Array[];
  /** Number of centre cells over all levels. */
  numPos: number;
  /** Objects with a centre cell (N). */
  numObjects: number;
  /** [N, totalCells] one-hot: the object's centre cell in the concatenation of all levels' [B*h*w] cells. */
  select: Float32Array;
  totalCells: number;
  /** [N, B*P] soft mask target at prototype resolution (P = cells of the prototype map). */
  maskTarget: Float32Array;
  /** [N, B*P] loss weights: the object's own image, inside its box (+1 cell); each row sums to 1 (0 without mask). */
  maskWeight: Float32Array;
  /** Objects with a mask (the mask loss divides by it). */
  numMasks: number;
}

/** Level of an object of longer side `side` px (see module doc). */
export function assignLevel(side: number, strides: readonly number[], objectCells: number): number {
  let best = 0, bestD = Infinity;
  strides.forEach((s, l) => {
    const d = Math.abs(Math.log(Math.max(side, 1) / (s * objectCells)));
    if (d < bestD) {
      bestD = d;
      best = l;
    }
  });
  return best;
}

/**
 * Radius (cells) of the Gaussian around a centre so that a box shifted by it
 * still has IoU >= `minOverlap` with the ground truth (CenterNet's bound; the
 * smallest of its three cases).
 */
export function gaussianRadius(h: number, w: number, minOverlap = 0.7): number {
  const b1 = h + w, c1 = w * h * (1 - minOverlap) / (1 + minOverlap);
  const r1 = (b1 + Math.sqrt(b1 * b1 - 4 * c1)) / 2;
  const b2 = 2 * (h + w), c2 = (1 - minOverlap) * w * h;
  const r2 = (b2 + Math.sqrt(b2 * b2 - 16 * c2)) / 2;
  const a3 = 4 * minOverlap, b3 = -2 * minOverlap * (h + w), c3 = (minOverlap - 1) * w * h;
  const r3 = (b3 + Math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return Math.min(r1, r2, r3);
}

/** Build the targets of a batch (see {@link DetTargets}). */
export function buildTargets(
  objects: readonly (readonly GtObject[])[],
  g: TargetGeometry,
): DetTargets {
  const B = objects.length, K = g.numClasses, S = g.imageSize;
  const sizes = g.strides.map((s) => {
    if (S % s !== 0) throw new RangeError(`stride ${s} does not divide the input size ${S}`);
    return S / s;
  });
  const heat = sizes.map((n) => new Float32Array(B * n * n * K));
  const reg = sizes.map((n) => new Float32Array(B * n * n * 4));
  const regMask = sizes.map((n) => new Float32Array(B * n * n));
  const levelOffset: number[] = [];
  let totalCells = 0;
  for (const n of sizes) {
    levelOffset.push(totalCells);
    totalCells += B * n * n;
  }
  const P = (S / g.protoStride) ** 2, pn = S / g.protoStride;

  // one centre per cell and level: the smaller object wins a shared cell
  const owner = new Map<
    string,
    { area: number; obj: GtObject; b: number; cell: number; l: number }
  >();
  objects.forEach((list, b) => {
    for (const obj of list) {
      const [x, y, w, h] = obj.bbox;
      if (obj.iscrowd || !(w > 0 && h > 0)) continue;
      if (!(obj.label >= 0 && obj.label < K)) {
        throw new RangeError(`object label ${obj.label} is outside 0..${K - 1}`);
      }
      const l = assignLevel(Math.max(w, h), g.strides, g.objectCells);
      const s = g.strides[l], n = sizes[l];
      const cx = (x + w / 2) / s, cy = (y + h / 2) / s;
      const ix = Math.min(n - 1, Math.max(0, Math.floor(cx)));
      const iy = Math.min(n - 1, Math.max(0, Math.floor(cy)));
      const cell = (b * n + iy) * n + ix;
      // Gaussian splat (max with what is there)
      const r = Math.max(0, Math.floor(gaussianRadius(h / s, w / s)));
      const sigma = (2 * r + 1) / 6;
      for (let yy = Math.max(0, iy - r); yy <= Math.min(n - 1, iy + r); yy++) {
        for (let xx = Math.max(0, ix - r); xx <= Math.min(n - 1, ix + r); xx++) {
          const v = Math.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma * sigma));
          const p = ((b * n + yy) * n + xx) * K + obj.label;
          if (v > heat[l][p]) heat[l][p] = v;
        }
      }
      heat[l][cell * K + obj.label] = 1;
      const key = `${l}:${cell}`;
      const prev = owner.get(key);
      if (!prev || w * h < prev.area) owner.set(key, { area: w * h, obj, b, cell, l });
    }
  });

  const entries = [...owner.values()];
  const N = entries.length;
  const select = new Float32Array(N * totalCells);
  const maskTarget = new Float32Array(N * B * P);
  const maskWeight = new Float32Array(N * B * P);
  let numMasks = 0;
  entries.forEach((e, i) => {
    const { obj, b, cell, l } = e;
    const s = g.strides[l];
    const [x, y, w, h] = obj.bbox;
    const cx = (x + w / 2) / s, cy = (y + h / 2) / s;
    const n = sizes[l];
    const ix = cell % n, iy = Math.floor(cell / n) % n;
    reg[l].set([cx - ix, cy - iy, Math.log(w / s), Math.log(h / s)], cell * 4);
    regMask[l][cell] = 1;
    select[i * totalCells + levelOffset[l] + cell] = 1;
    if (!obj.mask) return;
    numMasks++;
    // soft target: the fraction of each prototype cell covered by the mask
    const ps = g.protoStride;
    const row = i * B * P + b * P;
    const x0 = Math.max(0, Math.floor(x / ps) - 1), x1 = Math.min(pn - 1, Math.ceil((x + w) / ps));
    const y0 = Math.max(0, Math.floor(y / ps) - 1), y1 = Math.min(pn - 1, Math.ceil((y + h) / ps));
    const cells = (x1 - x0 + 1) * (y1 - y0 + 1);
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let c = 0;
        for (let yy = py * ps; yy < (py + 1) * ps; yy++) {
          for (let xx = px * ps; xx < (px + 1) * ps; xx++) c += obj.mask[yy * S + xx];
        }
        maskTarget[row + py * pn + px] = c / (ps * ps);
        maskWeight[row + py * pn + px] = 1 / cells;
      }
    }
  });
  return {
    batch: B,
    heat,
    reg,
    regMask,
    numPos: N,
    numObjects: N,
    select,
    totalCells,
    maskTarget,
    maskWeight,
    numMasks,
  };
}
