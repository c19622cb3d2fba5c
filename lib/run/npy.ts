/**
 * NumPy's `.npy` format for float arrays: write float32 (`<f4`, C order, format
 * version 1.0), read `<f4` / `<f8` (versions 1.0 to 3.0) back as float32.
 *
 * Layout: `\x93NUMPY` · major, minor · u16 (v1) or u32 (v2, v3) header length · an ASCII
 * Python dict `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }` padded with
 * spaces and a final newline so that the data starts on a 64-byte boundary · the values.
 *
 * @example
 * ```ts
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 * const bytes = encodeNpy(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
 * const back = decodeNpy(bytes);
 * if (back.shape.join() !== "2,3" || back.data[5] !== 6) throw new Error();
 * ```
 *
 * @module
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** A float array read from `.npy`. */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
  /** The stored dtype (`<f4` or `<f8`). */
  descr: string;
}

/**
 * Serialise a float32 array of `shape` (C order) as `.npy` version 1.0.
 *
 * @throws {RangeError} when `data` does not hold `prod(shape)` values.
 */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new RangeError(`encodeNpy: ${data.length} values for shape [${shape}] (${n})`);
  }
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  // magic (6) + version (2) + length (2) + dict + padding + "\n" is a multiple of 64
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = dict + " ".repeat(total - 10 - dict.length - 1) + "\n";
  const out = new Uint8Array(total + 4 * n);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  for (let i = 0; i < n; i++) view.setFloat32(total + 4 * i, data[i], true);
  return out;
}

/**
 * Parse `.npy` bytes holding a little-endian float32 or float64 array in C order; `path`
 * names the file in messages.
 *
 * @throws {RangeError} for another format, dtype or order, or a truncated file.
 */
export function decodeNpy(bytes: Uint8Array, path = "<memory>"): NpyArray {
  const fail = (what: string): never => {
    throw new RangeError(`${path}: ${what}`);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail("not a .npy file (magic)");
  const major = bytes[6];
  if (major < 1 || major > 3) fail(`.npy format version ${major}.${bytes[7]} is not 1, 2 or 3`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (start > bytes.length) fail("truncated header");
  const header = new TextDecoder().decode(bytes.subarray(8 + lenBytes, start));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || dims === undefined) {
    fail(`unreadable header ${JSON.stringify(header.trim())}`);
  }
  if (descr !== "<f4" && descr !== "<f8") fail(`dtype ${descr}: expected '<f4' or '<f8'`);
  if (fortran === "True") fail("Fortran order: save the array in C order");
  const shape = dims!.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const size = descr === "<f4" ? 4 : 8;
  if (bytes.length - start !== n * size) {
    fail(
      `shape (${shape}) of ${descr} needs ${n * size} data bytes, found ${bytes.length - start}`,
    );
  }
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    data[i] = size === 4
      ? view.getFloat32(start + 4 * i, true)
      : view.getFloat64(start + 8 * i, true);
  }
  return { shape, data, descr: descr! };
}
