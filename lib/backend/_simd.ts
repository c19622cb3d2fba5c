/**
 * The wasm SIMD kernels of `simd/*.wat` (assembled into `simd/*_wasm.ts` by `deno task
 * build:simd`), compiled once and instantiated per memory they work in: tfjs-backend-wasm's
 * shared heap (in place on tensors) or a small memory of a kernel's own.
 *
 * @module
 */
import { decodeBase64 } from "../util/base64.ts";

const simdModules = new Map<string, WebAssembly.Module | null>();
const simdInstances = new Map<string, WeakMap<WebAssembly.Memory, WebAssembly.Exports>>();
let simdOff = false;

/** Use (or not) the SIMD kernels; without them the scalar loops run (tests compare the two). */
export function setSimdEnabled(on: boolean): void {
  simdOff = !on;
}

/**
 * The exports of `simd/<name>.wat` instantiated on `memory` (a shared WebAssembly memory, e.g.
 * tfjs-backend-wasm's heap), or null without wasm SIMD / shared memory or with SIMD turned off.
 */
export function simdExports(
  name: string,
  base64: string,
  memory: WebAssembly.Memory,
): WebAssembly.Exports | null {
  if (simdOff) return null;
  const mod = simdModule(name, base64);
  if (mod === null) return null;
  let byMemory = simdInstances.get(name);
  if (byMemory === undefined) simdInstances.set(name, byMemory = new WeakMap());
  let ex = byMemory.get(memory);
  if (ex === undefined) {
    ex = new WebAssembly.Instance(mod, { env: { memory } }).exports;
    byMemory.set(memory, ex);
  }
  return ex;
}

/** The compiled `simd/<name>.wat` (once per process), or null where wasm SIMD is missing. */
export function simdModule(name: string, base64: string): WebAssembly.Module | null {
  let mod = simdModules.get(name);
  if (mod === undefined) {
    try {
      mod = new WebAssembly.Module(decodeBase64(base64) as BufferSource);
    } catch {
      mod = null; // the scalar loops run instead
    }
    simdModules.set(name, mod);
  }
  return mod;
}
