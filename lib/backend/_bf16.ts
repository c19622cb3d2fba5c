/**
 * bf16 copies of matmul operands in the wasm heap, for oneDNN's bf16 gemm (`_blas.ts`).
 *
 * Conversion: fp32 -> bf16 with round to nearest even (NaN stays NaN, Inf stays Inf, values
 * above the largest bf16 round to Inf, denormals round like any other value), by the wasm SIMD
 * kernel `simd/bf16.wat` working in place on tfjs-backend-wasm's shared heap (8 values per
 * step); a scalar JS loop of the same formula where the heap is not shared or SIMD is off.
 * Arrays of `NATIVE_MIN_ELEMENTS` values or more go to oneDNN's reorder when it is loaded
 * (`_native_eltwise.ts`: threaded, AVX-512), which rounds the same way except that fp32
 * denormals (|x| < 2^-126) become signed zero, as the hardware conversion does.
 *
 * Cache: tfjs tensors are immutable, so the bf16 copy of a tensor's data stays right for as
 * long as that data lives. Copies are kept per `dataId` (the key tfjs's wasm backend stores a
 * tensor's heap offset under) and reused while the backend still holds that `dataId` at the
 * same heap offset: within a training step a weight feeds the forward product and the input
 * gradient, an activation the forward product and the weight gradient, an output gradient
 * three products; each is converted once. Copies of disposed tensors are freed on the next
 * sweep; the cache holds at most {@link bf16CacheBudget} bytes (least recently used go first,
 * never the operands of the product being computed). {@link clearBf16Cache} frees everything
 * (a step boundary); {@link forgetBf16Copies} frees the copies of tensors whose memory was
 * written in place (tfjs never does that; amt-mim's in-place AdamW step does, and calls it).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { heapMemory, type WasmBackendLike } from "./_wasm_types.ts";
import { simdExports } from "./_simd.ts";
import { WASM_BASE64 as BF16_WASM } from "./simd/bf16_wasm.ts";
import { heapAt, nativeEltwise } from "./_native_eltwise.ts";

/** fp32 bits (u32) -> bf16 bits (u16): round to nearest even, NaN quieted (as `bf16.wat`). */
export function bf16Bits(b: number): number {
  b >>>= 0;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Counters since the last {@link resetBf16Stats} (not timed: counts and sizes). */
export interface Bf16Stats {
  /** Operands converted (cache misses and uncached conversions). */
  conversions: number;
  /** Elements converted. */
  convertedElements: number;
  /** Operands served from the cache. */
  cacheHits: number;
  /** Elements those hits did not convert again. */
  cacheHitElements: number;
  /** Conversions done by the SIMD kernel (the rest ran the scalar loop or oneDNN). */
  simdConversions: number;
  /** Conversions done by oneDNN's reorder (threaded; arrays of 32K values or more). */
  nativeConversions: number;
  /** Copies refreshed in place by the writer of their tensor (the in-place AdamW step). */
  refreshed: number;
  /** Copies held now and their bytes. */
  cacheEntries: number;
  cacheBytes: number;
}

interface Entry {
  /** Heap offset of the bf16 copy. */
  ptr: number;
  bytes: number;
  /** Heap offset of the fp32 data it was made from. */
  src: number;
  elems: number;
  /** The product it was last used by (pinned while that product runs). */
  use: number;
}

const DEFAULT_BUDGET = 256 * 2 ** 20;
/** Inserts between sweeps of copies whose tensors were disposed. */
const SWEEP_EVERY = 16;

let owner: WasmBackendLike["wasm"] | null = null;
let ownerBackend: WasmBackendLike | null = null;
const cache = new Map<unknown, Entry>();
let cacheBytes = 0;
let budget = DEFAULT_BUDGET;
let cacheOn = true;
let use = 0;
let inserts = 0;
/** Per-operand scratch (A, B) for uncached conversions. */
const scratch = [{ ptr: 0, bytes: 0 }, { ptr: 0, bytes: 0 }];
const counts = {
  conversions: 0,
  convertedElements: 0,
  cacheHits: 0,
  cacheHitElements: 0,
  simdConversions: 0,
  nativeConversions: 0,
  refreshed: 0,
};

/** The counters (see {@link Bf16Stats}). */
export function bf16Stats(): Bf16Stats {
  return { ...counts, cacheEntries: cache.size, cacheBytes };
}

/** Zeroes the counters. */
export function resetBf16Stats(): void {
  for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] = 0;
}

/**
 * Turns the operand cache on (default) or off (every product converts both operands into
 * scratch), and sets its size limit in bytes (default 256 MiB). Turning it off frees it.
 */
export function setBf16Cache(on: boolean, budgetBytes = DEFAULT_BUDGET): void {
  if (!(budgetBytes >= 0)) throw new RangeError(`bf16 cache budget must be >= 0: ${budgetBytes}`);
  cacheOn = on;
  budget = budgetBytes;
  if (!on) clearBf16Cache();
}

/** The cache's size limit in bytes. */
export function bf16CacheBudget(): number {
  return budget;
}

/** Frees every cached copy and the scratch buffers. */
export function clearBf16Cache(): void {
  if (ownerBackend !== null) {
    for (const e of cache.values()) ownerBackend.wasm._free(e.ptr);
    for (const s of scratch) if (s.ptr !== 0) ownerBackend.wasm._free(s.ptr);
  }
  cache.clear();
  cacheBytes = 0;
  for (const s of scratch) s.ptr = s.bytes = 0;
}

/** Frees the cached copies of these data ids (their memory was written in place). */
export function forgetBf16Copies(dataIds: Iterable<unknown>): void {
  if (ownerBackend === null) return;
  for (const id of dataIds) {
    const e = cache.get(id);
    if (e !== undefined) drop(ownerBackend, id, e);
  }
}

/** fp32 bits -> bf16 bits as oneDNN's reorder rounds: {@link bf16Bits}, denormals to signed 0. */
export function bf16BitsFtz(b: number): number {
  b >>>= 0;
  return (b & 0x7f800000) === 0 ? (b >>> 16) & 0x8000 : bf16Bits(b);
}

/**
 * The cached bf16 copy of tensor `t`'s data, for the writer of that data to refresh in place
 * (the in-place AdamW step, which then calls {@link countBf16Refresh}): the copy's heap offset,
 * and whether its conversion flushes denormals (oneDNN's reorder, which converts arrays of
 * `NATIVE_MIN_ELEMENTS` or more when loaded; the refresh must round as it would). Null when no
 * copy is cached.
 */
export function cachedBf16Copy(
  be: WasmBackendLike,
  t: tf.TensorInfo,
): { ptr: number; ftz: boolean } | null {
  if (be.wasm !== owner) return null;
  const e = cache.get(t.dataId);
  if (e === undefined) return null;
  let n = 1;
  for (const d of t.shape) n *= d;
  if (e.src !== be.dataIdMap.get(t.dataId).memoryOffset || e.elems !== n) return null;
  return { ptr: e.ptr, ftz: nativeEltwise(n) !== null };
}

/** Counts copies refreshed by their tensor's writer (see {@link cachedBf16Copy}). */
export function countBf16Refresh(copies: number): void {
  counts.refreshed += copies;
}

/** Starts one product: its operands stay pinned in the cache until the next call. */
export function beginBf16Product(be: WasmBackendLike): void {
  if (be.wasm !== owner) {
    // a new wasm module (a restarted backend): the old heap and its copies are gone
    cache.clear();
    cacheBytes = 0;
    for (const s of scratch) s.ptr = s.bytes = 0;
    owner = be.wasm;
    ownerBackend = be;
  }
  use++;
}

function alive(be: WasmBackendLike, id: unknown, e: Entry): boolean {
  return be.dataIdMap.has(id) && be.dataIdMap.get(id).memoryOffset === e.src;
}

function drop(be: WasmBackendLike, id: unknown, e: Entry): void {
  be.wasm._free(e.ptr);
  cacheBytes -= e.bytes;
  cache.delete(id);
}

/** Frees copies of disposed tensors; then, while over budget, the least recently used. */
function makeRoom(be: WasmBackendLike, need: number): void {
  for (const [id, e] of cache) if (!alive(be, id, e)) drop(be, id, e);
  for (const [id, e] of cache) {
    if (cacheBytes + need <= budget) break;
    if (e.use !== use) drop(be, id, e);
  }
}

function malloc(be: WasmBackendLike, bytes: number): number {
  let p = be.wasm._malloc(bytes) >>> 0;
  if (p === 0 && cache.size > 0) {
    // out of heap: give back the cache (except this product's operands) and retry
    const budgetWas = budget;
    budget = 0;
    makeRoom(be, bytes);
    budget = budgetWas;
    p = be.wasm._malloc(bytes) >>> 0;
  }
  if (p === 0) {
    throw new Error(
      `bf16 matmul: the wasm heap has no room for a ${bytes}-byte operand copy; ` +
        "use precision fp32 or a smaller batch",
    );
  }
  return p;
}

interface SimdBf16 {
  f32_to_bf16(src: number, dst: number, n: number): void;
}

/** Converts n fp32 values at heap offset `src` into bf16 at `dst`. */
function convert(be: WasmBackendLike, src: number, dst: number, n: number): void {
  counts.conversions++;
  counts.convertedElements += n;
  const mem = heapMemory(be);
  const simd = mem !== undefined
    ? simdExports("bf16", BF16_WASM, mem) as unknown as SimdBf16 | null
    : null;
  const native = nativeEltwise(n);
  if (native !== null && native.toBf16(heapAt(be, src), heapAt(be, dst), n)) {
    counts.nativeConversions++;
    return;
  }
  if (simd !== null) {
    counts.simdConversions++;
    simd.f32_to_bf16(src, dst, n);
    return;
  }
  const buf = (mem ?? be.wasm.HEAPU8).buffer;
  const from = new Uint32Array(buf, src, n), to = new Uint16Array(buf, dst, n);
  for (let i = 0; i < n; i++) to[i] = bf16Bits(from[i]);
}

/**
 * The heap offset of a bf16 copy of float32 tensor `t` (cached, or in scratch `slot` 0/1 when
 * the cache is off or the copy would not fit in its budget). Call {@link beginBf16Product}
 * first; the offset stays valid until the next product.
 */
export function bf16Operand(be: WasmBackendLike, t: tf.TensorInfo, slot: 0 | 1): number {
  const id = t.dataId;
  const src = be.dataIdMap.get(id).memoryOffset;
  let n = 1;
  for (const d of t.shape) n *= d;
  const bytes = n * 2;
  if (cacheOn && bytes <= budget) {
    const hit = cache.get(id);
    if (hit !== undefined && hit.src === src && hit.elems === n) {
      counts.cacheHits++;
      counts.cacheHitElements += n;
      hit.use = use;
      cache.delete(id);
      cache.set(id, hit); // most recently used last
      return hit.ptr;
    }
    if (hit !== undefined) drop(be, id, hit);
    if (cacheBytes + bytes > budget || ++inserts % SWEEP_EVERY === 0) makeRoom(be, bytes);
    const ptr = malloc(be, bytes);
    convert(be, src, ptr, n);
    cache.set(id, { ptr, bytes, src, elems: n, use });
    cacheBytes += bytes;
    return ptr;
  }
  const s = scratch[slot];
  if (s.bytes < bytes) {
    if (s.ptr !== 0) be.wasm._free(s.ptr);
    s.ptr = 0;
    s.bytes = 0;
    s.ptr = malloc(be, bytes);
    s.bytes = bytes;
  }
  convert(be, src, s.ptr, n);
  return s.ptr;
}

/**
 * fp32 values -> bf16 bits through the same conversion the matmul uses, on the wasm backend's
 * heap (`be`), for tests and checks.
 */
export function convertToBf16(be: WasmBackendLike, values: Float32Array): Uint16Array {
  const n = values.length;
  if (n === 0) return new Uint16Array(0);
  const src = malloc(be, n * 4), dst = malloc(be, n * 2);
  try {
    const heap = (be.wasm.wasmMemory ?? be.wasm.HEAPU8).buffer;
    new Float32Array(heap, src, n).set(values);
    convert(be, src, dst, n);
    return new Uint16Array((be.wasm.wasmMemory ?? be.wasm.HEAPU8).buffer, dst, n).slice();
  } finally {
    be.wasm._free(src);
    be.wasm._free(dst);
  }
}
