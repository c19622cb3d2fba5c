/**
 * COCO run-length encoded (RLE) masks: encode / decode, the compressed string
 * form, polygon rasterisation, area, bounding box, union and IoU.
 *
 * Conventions (as COCO's `maskApi`): a mask of `h x w` pixels is flattened in
 * **column-major** order (pixel `(y, x)` is element `y + h * x`); `counts`
 * alternate runs of 0s and 1s and always start with a (possibly empty) run of
 * 0s. Masks handed to and returned by this module as bitmaps are **row-major**
 * `Uint8Array`s (`y * w + x`, 1 = inside), like every raster in this toolkit.
 *
 * Polygons are rasterised by pixel-centre sampling: pixel `(x, y)` is inside
 * when its centre `(x + 0.5, y + 0.5)` is inside the polygon (even-odd rule).
 * COCO's own `rleFrPoly` traces edges on a 5x upsampled grid; the two agree
 * on interior pixels and may differ by one pixel along slanted edges.
 *
 * @module
 */

/** A run-length encoded mask with integer counts (COCO's "uncompressed RLE"). */
export interface Rle {
  /** `[height, width]` of the image the mask belongs to. */
  size: [number, number];
  /** Alternating run lengths, starting with 0s, column-major. */
  counts: number[];
}

/** COCO's compressed RLE: the counts as a string. */
export interface CompressedRle {
  size: [number, number];
  counts: string;
}

/** A COCO polygon list: each polygon is `[x1, y1, x2, y2, ...]` in pixels. */
export type Polygons = number[][];

/** Any segmentation COCO files hold: polygons, uncompressed or compressed RLE. */
export type Segmentation = Polygons | Rle | CompressedRle;

/**
 * Encode a row-major bitmap (`y * w + x`, nonzero = inside) as RLE.
 *
 * @example
 * ```ts
 * import { encodeMask } from "./rle.ts";
 * // 2x2 mask with the right column set: column-major 0,0,1,1
 * const r = encodeMask(new Uint8Array([0, 1, 0, 1]), 2, 2);
 * if (r.counts.join() !== "2,2") throw new Error(String(r.counts));
 * ```
 */
export function encodeMask(mask: ArrayLike<number>, h: number, w: number): Rle {
  checkSize(h, w, "encodeMask");
  if (mask.length !== h * w) {
    throw new RangeError(
      `encodeMask: mask has ${mask.length} pixels, expected ${h}x${w} = ${h * w}`,
    );
  }
  const counts: number[] = [];
  let prev = 0, run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== prev) {
        counts.push(run);
        run = 0;
        prev = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/** Decode RLE into a row-major bitmap of 0/1 (`y * w + x`). */
export function decodeMask(rle: Rle | CompressedRle): Uint8Array {
  const r = toUncompressed(rle);
  const [h, w] = r.size;
  const out = new Uint8Array(h * w);
  let p = 0, v = 0;
  for (const c of r.counts) {
    if (v) {
      for (let k = p; k < p + c; k++) out[(k % h) * w + Math.floor(k / h)] = 1;
    }
    p += c;
    v ^= 1;
  }
  return out;
}

/**
 * The compressed string form of RLE counts (COCO's `rleToString`): each count
 * (from the fourth on, as a difference to the count two places back) is
 * written in 5-bit groups, low first, with a continuation bit 0x20 and a sign
 * bit 0x10 in the last group, offset by 48 into printable ASCII.
 */
export function countsToString(counts: readonly number[]): string {
  let s = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      // floor division keeps the arithmetic shift of negative numbers without 32-bit limits
      const low = x - Math.floor(x / 32) * 32;
      x = Math.floor(x / 32);
      more = (low & 0x10) ? x !== -1 : x !== 0;
      s += String.fromCharCode((more ? low | 0x20 : low) + 48);
    }
  }
  return s;
}

/** Inverse of {@link countsToString} (COCO's `rleFrString`). */
export function countsFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      if (p >= s.length) {
        throw new SyntaxError(`RLE string ends inside a count at character ${p}: "${s}"`);
      }
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 0x3f) {
        throw new SyntaxError(`RLE string has an invalid character "${s[p]}" at ${p}`);
      }
      x += (c & 0x1f) * 32 ** k;
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 32 ** k; // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** RLE with string counts (for JSON files). */
export function compressRle(rle: Rle | CompressedRle): CompressedRle {
  if (typeof rle.counts === "string") return { size: [...rle.size], counts: rle.counts };
  return { size: [rle.size[0], rle.size[1]], counts: countsToString(rle.counts) };
}

/** RLE with integer counts; checks that the counts cover the image exactly. */
export function toUncompressed(rle: Rle | CompressedRle): Rle {
  if (!rle || !Array.isArray(rle.size) || rle.size.length !== 2) {
    throw new TypeError(`RLE needs size [h, w], got ${JSON.stringify(rle?.size)}`);
  }
  const [h, w] = rle.size;
  checkSize(h, w, "RLE");
  const counts = typeof rle.counts === "string" ? countsFromString(rle.counts) : rle.counts;
  if (!Array.isArray(counts)) {
    throw new TypeError(`RLE counts must be a string or a number array, got ${typeof rle.counts}`);
  }
  let total = 0;
  for (const c of counts) {
    if (!Number.isInteger(c) || c < 0) {
      throw new RangeError(`RLE counts must be non-negative integers, found ${c}`);
    }
    total += c;
  }
  if (total !== h * w) {
    throw new RangeError(`RLE counts sum to ${total}, expected h*w = ${h}*${w} = ${h * w}`);
  }
  return { size: [h, w], counts: counts as number[] };
}

/** Number of pixels inside the mask. */
export function rleArea(rle: Rle | CompressedRle): number {
  const { counts } = toUncompressed(rle);
  let a = 0;
  for (let i = 1; i < counts.length; i += 2) a += counts[i];
  return a;
}

/** Tight box `[x, y, w, h]` of the mask's pixels (`[0, 0, 0, 0]` when empty), as COCO's `toBbox`. */
export function rleToBbox(rle: Rle | CompressedRle): [number, number, number, number] {
  const r = toUncompressed(rle);
  const h = r.size[0];
  let xs = Infinity, ys = Infinity, xe = -Infinity, ye = -Infinity;
  let p = 0;
  r.counts.forEach((c, i) => {
    if (i % 2 === 1 && c > 0) {
      const first = p, last = p + c - 1;
      const x0 = Math.floor(first / h), x1 = Math.floor(last / h);
      xs = Math.min(xs, x0);
      xe = Math.max(xe, x1);
      // a run spanning a column boundary covers the full column height
      if (x1 > x0) {
        ys = 0;
        ye = h - 1;
      } else {
        ys = Math.min(ys, first % h);
        ye = Math.max(ye, last % h);
      }
    }
    p += c;
  });
  if (xs === Infinity) return [0, 0, 0, 0];
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/**
 * Rasterise polygons (pixel-centre sampling, even-odd rule per polygon, union
 * over polygons) into a row-major bitmap.
 */
export function polygonsToMask(polys: Polygons, h: number, w: number): Uint8Array {
  checkSize(h, w, "polygonsToMask");
  const out = new Uint8Array(h * w);
  for (const [pi, poly] of polys.entries()) {
    if (!Array.isArray(poly) || poly.length % 2 !== 0 || poly.some((v) => !Number.isFinite(v))) {
      throw new TypeError(
        `polygon ${pi} must be a flat [x1, y1, x2, y2, ...] list of finite numbers, got ${
          JSON.stringify(poly).slice(0, 80)
        }`,
      );
    }
    const n = poly.length / 2;
    if (n < 3) continue; // degenerate: covers no pixel centre
    const xs: number[] = [];
    for (let y = 0; y < h; y++) {
      const cy = y + 0.5;
      xs.length = 0;
      for (let i = 0, j = n - 1; i < n; j = i++) {
        const xi = poly[2 * i], yi = poly[2 * i + 1];
        const xj = poly[2 * j], yj = poly[2 * j + 1];
        // half-open rule: an edge counts when cy is in [min y, max y)
        if ((yi <= cy) !== (yj <= cy)) xs.push(xi + (cy - yi) * (xj - xi) / (yj - yi));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        // pixels whose centre x + 0.5 lies in [xs[k], xs[k+1])
        const x0 = Math.max(0, Math.ceil(xs[k] - 0.5));
        const x1 = Math.min(w - 1, Math.ceil(xs[k + 1] - 0.5) - 1);
        for (let x = x0; x <= x1; x++) out[y * w + x] = 1;
      }
    }
  }
  return out;
}

/**
 * Any COCO segmentation as uncompressed RLE. Polygons and uncompressed RLE
 * need the image size (polygons to rasterise, RLE to check it).
 */
export function segmentationToRle(seg: Segmentation, h: number, w: number): Rle {
  if (Array.isArray(seg)) return encodeMask(polygonsToMask(seg, h, w), h, w);
  if (seg && typeof seg === "object" && "counts" in seg) {
    const r = toUncompressed(seg);
    if (r.size[0] !== h || r.size[1] !== w) {
      throw new RangeError(
        `RLE size [${r.size}] does not match the image size [${h}, ${w}]`,
      );
    }
    return r;
  }
  throw new TypeError(
    `segmentation must be a polygon list or an RLE {size, counts}, got ${
      JSON.stringify(seg).slice(0, 80)
    }`,
  );
}

/** Union (`intersect = false`) or intersection of masks of one size. */
export function mergeRles(rles: readonly (Rle | CompressedRle)[], intersect = false): Rle {
  if (rles.length === 0) throw new RangeError("mergeRles: no masks to merge");
  const [h, w] = rles[0].size;
  const acc = decodeMask(rles[0]);
  for (const r of rles.slice(1)) {
    if (r.size[0] !== h || r.size[1] !== w) {
      throw new RangeError(`mergeRles: sizes differ, [${h}, ${w}] vs [${r.size}]`);
    }
    const m = decodeMask(r);
    for (let i = 0; i < acc.length; i++) acc[i] = intersect ? acc[i] & m[i] : acc[i] | m[i];
  }
  return encodeMask(acc, h, w);
}

/** Pixels inside both masks, by walking the two run lists. */
export function intersectionArea(a: Rle, b: Rle): number {
  let ia = 0, ib = 0; // run index
  let ra = a.counts[0] ?? 0, rb = b.counts[0] ?? 0; // pixels left in the current run
  let total = 0;
  const na = a.counts.length, nb = b.counts.length;
  while (ia < na && ib < nb) {
    const step = Math.min(ra, rb);
    if ((ia & 1) && (ib & 1)) total += step;
    ra -= step;
    rb -= step;
    while (ra === 0 && ia < na) ra = a.counts[++ia] ?? 0;
    while (rb === 0 && ib < nb) rb = b.counts[++ib] ?? 0;
  }
  return total;
}

/**
 * IoU of two masks; with `crowd`, intersection over the area of `dt` (COCO's
 * rule for crowd ground truth). 0 when the union is empty.
 */
export function rleIou(dt: Rle | CompressedRle, gt: Rle | CompressedRle, crowd = false): number {
  const d = toUncompressed(dt), g = toUncompressed(gt);
  if (d.size[0] !== g.size[0] || d.size[1] !== g.size[1]) {
    throw new RangeError(
      `rleIou: detection mask is [${d.size}] but ground truth is [${g.size}]; masks must be in image pixels`,
    );
  }
  const i = intersectionArea(d, g);
  const u = crowd ? rleArea(d) : rleArea(d) + rleArea(g) - i;
  return u > 0 ? i / u : 0;
}

/**
 * IoU of two `[x, y, w, h]` boxes; with `crowd`, intersection over the area of
 * `dt` (COCO's `bbIou`).
 */
export function boxIou(dt: readonly number[], gt: readonly number[], crowd = false): number {
  const iw = Math.min(dt[0] + dt[2], gt[0] + gt[2]) - Math.max(dt[0], gt[0]);
  if (iw <= 0) return 0;
  const ih = Math.min(dt[1] + dt[3], gt[1] + gt[3]) - Math.max(dt[1], gt[1]);
  if (ih <= 0) return 0;
  const inter = iw * ih;
  const u = crowd ? dt[2] * dt[3] : dt[2] * dt[3] + gt[2] * gt[3] - inter;
  return u > 0 ? inter / u : 0;
}

function checkSize(h: number, w: number, what: string): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) {
    throw new RangeError(`${what}: size must be non-negative integers [h, w], got [${h}, ${w}]`);
  }
}
