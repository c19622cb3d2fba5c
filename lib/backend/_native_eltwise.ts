/**
 * The native elementwise kernels the wasm kernels may hand work to (oneDNN's GELU and fp32 ->
 * bf16 reorder, threaded and AVX-512; see `_dnnl.ts`), and the wasm heap's native base pointer
 * they are called with. `_blas.ts` attaches them when oneDNN loads; `fused.ts` (GELU) and
 * `_bf16.ts` (operand copies) read them, and run their own wasm SIMD kernels when there are
 * none, when a primitive cannot be made, or for arrays under {@linkcode NATIVE_MIN_ELEMENTS}.
 *
 * @module
 */
import type { DnnlEltwise } from "./_dnnl.ts";
import type { WasmBackendLike } from "./_wasm_types.ts";

/** Below this many values the wasm kernel is as fast (no threads to wake). */
export const NATIVE_MIN_ELEMENTS = 32768;

/**
 * Softmax's threshold is lower: its fallback is a scalar float64 loop, not a SIMD kernel. At
 * attention's shapes oneDNN's primitives took about half its time from a few thousand values up
 * (forward + backward of `[64, 3, 9, 9]`, 15,552 values: 0.18-0.25 ms against 0.45-0.47 ms,
 * nothing else running); MAE+AMT's encoder attention at batch 64 (`[64, 3, 11, 11]`) is there.
 */
export const SOFTMAX_NATIVE_MIN = 4096;

let attached: DnnlEltwise | null = null;
let enabled = true;

/** Attaches (or, with null, detaches) the native kernels. */
export function attachNativeEltwise(e: DnnlEltwise | null): void {
  attached = e;
}

/** Turns the native kernels off or back on (tests compare both paths). */
export function setNativeEltwise(on: boolean): void {
  enabled = on;
}

/**
 * The native kernels for an array of `n` values, or null: use the wasm kernel. `min` is the
 * smallest array worth the native call for this kernel.
 */
export function nativeEltwise(n: number, min = NATIVE_MIN_ELEMENTS): DnnlEltwise | null {
  return enabled && n >= min ? attached : null;
}

const calls: Record<string, number> = {};

/** Counts one call a native kernel served (`gelu`, `geluBackward`, `splitHeads`, ...). */
export function countNative(kind: string): void {
  calls[kind] = (calls[kind] ?? 0) + 1;
}

/** Calls served natively since start-up, by kernel (tests check which path ran). */
export function nativeEltwiseCalls(): Readonly<Record<string, number>> {
  return { ...calls };
}

/** Base pointer of the wasm heap, cached per heap buffer (memory growth replaces it). */
let heapBuffer: ArrayBufferLike | null = null;
let heapBase: Deno.PointerValue = null;

/** The native pointer of the wasm backend's heap offset 0. */
export function heapPointer(backend: WasmBackendLike): Deno.PointerObject {
  const buf = backend.wasm.HEAPU8.buffer;
  if (buf !== heapBuffer || heapBase === null) {
    heapBase = Deno.UnsafePointer.of(new Uint8Array(buf));
    heapBuffer = buf;
  }
  return heapBase!;
}

/** The native pointer of heap offset `offset`. */
export function heapAt(backend: WasmBackendLike, offset: number): Deno.PointerValue {
  return Deno.UnsafePointer.offset(heapPointer(backend), offset);
}
