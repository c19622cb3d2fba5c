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
 * The exports of `simd/<name>.wat` instantiated on `memory`, tfjs-backend-wasm's heap (shared in
 * its threaded build, not in its single-threaded one: then the module is instantiated with its
 * memory import declared unshared, see {@link unshareMemoryImport}) or a kernel's own; null
 * without wasm SIMD or with SIMD turned off.
 */
export function simdExports(
  name: string,
  base64: string,
  memory: WebAssembly.Memory,
): WebAssembly.Exports | null {
  if (simdOff) return null;
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const mod = simdModule(name, base64, shared);
  if (mod === null) return null;
  const key = shared ? name : `${name}:unshared`;
  let byMemory = simdInstances.get(key);
  if (byMemory === undefined) simdInstances.set(key, byMemory = new WeakMap());
  let ex = byMemory.get(memory);
  if (ex === undefined) {
    ex = new WebAssembly.Instance(mod, { env: { memory } }).exports;
    byMemory.set(memory, ex);
  }
  return ex;
}

/**
 * The compiled `simd/<name>.wat` (once per process), or null where wasm SIMD is missing; with
 * `shared` false, the same module with its memory import unshared ({@link unshareMemoryImport}),
 * for a non-shared heap.
 */
export function simdModule(name: string, base64: string, shared = true): WebAssembly.Module | null {
  const key = shared ? name : `${name}:unshared`;
  let mod = simdModules.get(key);
  if (mod === undefined) {
    try {
      const bytes = decodeBase64(base64);
      mod = new WebAssembly.Module((shared ? bytes : unshareMemoryImport(bytes)) as BufferSource);
    } catch {
      mod = null; // the scalar loops run instead
    }
    simdModules.set(key, mod);
  }
  return mod;
}

/** An unsigned LEB128 at `at`: its value and its length in bytes. */
function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0, shift = 0, n = 0;
  for (;;) {
    const b = bytes[at + n++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, n];
    shift += 7;
  }
}

function lebBytes(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/**
 * A wasm binary's bytes with its imported memory's limits rewritten as unshared with no maximum
 * (the other limits kept), so that it links against an unshared memory of any size: the heap
 * of tfjs-backend-wasm's single-threaded build. The code is unchanged (the `.wat` files use no
 * atomics). Bytes without a memory import come back as they are.
 */
export function unshareMemoryImport(bytes: Uint8Array): Uint8Array {
  let at = 8; // magic and version
  while (at < bytes.length) {
    const id = bytes[at];
    const [size, n] = readLeb(bytes, at + 1);
    const start = at + 1 + n, end = start + size;
    if (id === 2) {
      let p = start;
      const [count, c] = readLeb(bytes, p);
      p += c;
      for (let i = 0; i < count; i++) {
        for (let name = 0; name < 2; name++) {
          const [len, l] = readLeb(bytes, p);
          p += l + len;
        }
        const kind = bytes[p++];
        if (kind === 0) p += readLeb(bytes, p)[1]; // function: type index
        else if (kind === 3) p += 2; // global: value type, mutability
        else { // table (element type, limits) or memory (limits)
          if (kind === 1) p++;
          const flagsAt = p, flags = bytes[p++];
          p += readLeb(bytes, p)[1];
          const limitsEnd = flags & 1 ? p + readLeb(bytes, p)[1] : p;
          if (kind !== 2) {
            p = limitsEnd;
            continue;
          }
          const payload = [
            ...bytes.subarray(start, flagsAt),
            0x00, // limits: initial only, unshared
            ...bytes.subarray(flagsAt + 1, p),
            ...bytes.subarray(limitsEnd, end),
          ];
          return Uint8Array.from([
            ...bytes.subarray(0, at),
            2,
            ...lebBytes(payload.length),
            ...payload,
            ...bytes.subarray(end),
          ]);
        }
      }
    }
    at = end;
  }
  return bytes;
}
