/**
 * The parts of tfjs-backend-wasm 4.22.0's `BackendWasm` that amt-mim's own kernels use
 * (`_blas.ts`, `_wasm_kernels.ts`, `fused.ts`); its published typings do not expose them.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A started wasm backend, as a kernel's `args.backend` sees it. */
export interface WasmBackendLike {
  /** The Emscripten module: its heap views and the shared memory behind them. */
  wasm: {
    HEAPU8: Uint8Array;
    wasmMemory?: WebAssembly.Memory;
    /** The module's exports; the single-threaded build's heap is their `memory` only. */
    asm?: { memory?: WebAssembly.Memory };
    /** Emscripten's allocator on the heap: a byte offset (0 when out of memory). */
    _malloc(bytes: number): number;
    _free(offset: number): void;
  };
  /** Per tensor: where its data starts in the heap (bytes); `has` is false once disposed. */
  dataIdMap: { get(id: unknown): { memoryOffset: number }; has(id: unknown): boolean };
  /** Allocates an output tensor in the heap. */
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  /** A typed-array view of a tensor's data in the heap (no copy). */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** Shares a tensor's data with one more tensor. */
  incRef(dataId: unknown): void;
}

/** Whether a kernel's backend is the wasm backend (it has a heap). */
export function isWasmBackend(backend: unknown): backend is WasmBackendLike {
  return typeof (backend as WasmBackendLike).typedArrayFromHeap === "function";
}

/**
 * The WebAssembly memory behind a wasm backend's heap: shared in the threaded build
 * (`wasmMemory`), not in the single-threaded one (where Emscripten keeps it among the module's
 * exports). Undefined if neither is there.
 */
export function heapMemory(be: WasmBackendLike): WebAssembly.Memory | undefined {
  return be.wasm.wasmMemory ?? be.wasm.asm?.memory;
}
