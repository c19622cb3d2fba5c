/**
 * The safetensors format (Hugging Face): read and write named tensors.
 *
 * Layout: u64 little-endian `N` · `N` bytes of UTF-8 JSON header · the byte buffer. The header
 * maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into the byte
 * buffer, end exclusive), plus an optional `__metadata__` map of strings to strings. Tensors
 * are little-endian, row-major (C order), and together cover the byte buffer exactly: no gap,
 * no overlap. The writer pads the header with spaces so that the buffer starts on an 8-byte
 * boundary, as the reference implementation does.
 *
 * Reading keeps each tensor's raw bytes; {@linkcode tensorFloat32} turns an F32, F16, BF16 or
 * F64 tensor into a `Float32Array`. Writing takes `Float32Array`s and stores them as F32 (or
 * F16 / BF16, rounded to nearest even).
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors, tensorFloat32 } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   new Map([["w", { shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }]]),
 *   { format: "pt" },
 * );
 * const file = decodeSafetensors(bytes);
 * if (tensorFloat32(file, "w")[3] !== 4 || file.metadata.format !== "pt") throw new Error();
 * ```
 *
 * @module
 */

/** Bytes per element of each safetensors dtype. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** The dtypes {@linkcode encodeSafetensors} writes. */
export type WritableDtype = "F32" | "F16" | "BF16";

/** Headers above this many bytes are refused (the reference reader's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor of a file: its dtype, shape and raw little-endian bytes (a view, not a copy). */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** A decoded file: tensors by name in header order, and `__metadata__` (empty when absent). */
export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** A tensor to write: float32 values and a shape, optionally stored as F16 / BF16. */
export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array;
  dtype?: WritableDtype;
}

/**
 * Raised for a file that is not valid safetensors; the message names the file and what is
 * wrong. A `RangeError`, so a task prints it as one line.
 */
export class SafetensorsError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** float32 -> IEEE half bits, rounding to nearest even (overflow to infinity). */
function toHalf(v: number, f32: Float32Array, u32: Uint32Array): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mant |= 0x800000; // the implicit bit, then shift into a subnormal
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: right
  return h;
}

/** IEEE half bits -> number. */
function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 -> bfloat16 bits, rounding to nearest even. */
function toBf16(v: number, f32: Float32Array, u32: Uint32Array): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40; // nan
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Serialise tensors (in the map's order) and string metadata to safetensors bytes.
 *
 * @throws {RangeError} when a tensor's data length is not the product of its shape.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new RangeError(`tensor name "__metadata__" is reserved`);
    const dtype = t.dtype ?? "F32";
    if (t.data.length !== product(t.shape)) {
      throw new RangeError(
        `tensor "${name}": ${t.data.length} values for shape [${t.shape}] (${product(t.shape)})`,
      );
    }
    const size = t.data.length * SAFETENSORS_DTYPES[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8; // the buffer starts 8-byte aligned
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  let at = 8 + padded;
  for (const t of tensors.values()) {
    const dtype = t.dtype ?? "F32";
    const n = t.data.length;
    if (dtype === "F32") {
      for (let i = 0; i < n; i++) view.setFloat32(at + 4 * i, t.data[i], true);
    } else {
      const conv = dtype === "F16" ? toHalf : toBf16;
      for (let i = 0; i < n; i++) view.setUint16(at + 2 * i, conv(t.data[i], f32, u32), true);
    }
    at += n * SAFETENSORS_DTYPES[dtype];
  }
  return out;
}

/**
 * Parse safetensors bytes, checking the header against the buffer: known dtypes, whole
 * shapes, offsets that match each shape and tile the buffer exactly. `path` names the file
 * in messages.
 *
 * @throws {SafetensorsError} naming what is wrong (truncated, malformed header, bad entry).
 */
export function decodeSafetensors(bytes: Uint8Array, path = "<memory>"): SafetensorsFile {
  const fail = (what: string): never => {
    throw new SafetensorsError(`${path}: not a valid safetensors file: ${what}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, less than the 8-byte header size`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header size ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) {
    fail(`truncated: the header says ${headerLen} bytes but only ${bytes.length - 8} follow`);
  }
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let raw: string;
  try {
    raw = text.decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail("the header is not UTF-8");
  }
  if (!raw.startsWith("{")) {
    fail(`the header does not start with "{" (${JSON.stringify(raw.slice(0, 20))})`);
  }
  let header: unknown;
  try {
    header = JSON.parse(raw);
  } catch (e) {
    return fail(`the header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("the header is not a JSON object");
  }
  const buffer = bytes.subarray(8 + headerLen);
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail("__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) fail(`tensor "${name}": entry is not an object`);
    const size = typeof e.dtype === "string" ? SAFETENSORS_DTYPES[e.dtype] : undefined;
    if (size === undefined) {
      fail(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    }
    const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!Array.isArray(e.shape) || !e.shape.every(isCount)) {
      fail(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of sizes`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
      fail(`tensor "${name}": data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    }
    const shape = e.shape as number[];
    const [begin, end] = off as [number, number];
    const want = product(shape) * size!;
    if (end - begin !== want) {
      fail(
        `tensor "${name}": shape [${shape}] of ${e.dtype} needs ${want} bytes, ` +
          `data_offsets [${begin}, ${end}] give ${end - begin}`,
      );
    }
    if (end > buffer.length) {
      fail(
        `truncated: tensor "${name}" ends at byte ${end} of the data, which has ${buffer.length}`,
      );
    }
    spans.push({ name, begin, end });
    tensors.set(name, { dtype: e.dtype as string, shape, bytes: buffer.subarray(begin, end) });
  }
  // the tensors tile the buffer: sorted by begin, each starts where the previous one ended
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of spans) {
    if (s.begin < at) fail(`tensor "${s.name}" overlaps the tensor before it (byte ${s.begin})`);
    if (s.begin > at) fail(`bytes ${at}..${s.begin} of the data belong to no tensor`);
    at = s.end;
  }
  if (at !== buffer.length) {
    fail(`the data has ${buffer.length} bytes but the tensors cover ${at}`);
  }
  return { tensors, metadata };
}

/** Read and decode a `.safetensors` file. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await Deno.readFile(path), path);
}

/**
 * Tensor `name` of `file` as float32 values (F32 as stored; F16, BF16 and F64 converted).
 *
 * @throws {SafetensorsError} when there is no such tensor or it holds integers.
 */
export function tensorFloat32(file: SafetensorsFile, name: string): Float32Array {
  const e = file.tensors.get(name);
  if (!e) throw new SafetensorsError(`no tensor "${name}"`);
  const n = product(e.shape);
  const view = new DataView(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength);
  const out = new Float32Array(n);
  switch (e.dtype) {
    case "F32":
      // an aligned copy is the values on a little-endian host (every one Deno runs on)
      if (e.bytes.byteOffset % 4 === 0) return new Float32Array(e.bytes.slice().buffer);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case "F64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = fromHalf(view.getUint16(2 * i, true));
      break;
    case "BF16": {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    default:
      throw new SafetensorsError(
        `tensor "${name}" is ${e.dtype}; only floating-point tensors (F32, F16, BF16, F64) can be read as weights`,
      );
  }
  return out;
}
