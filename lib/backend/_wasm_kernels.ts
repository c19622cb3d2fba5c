/**
 * Faster replacements for five tfjs-backend-wasm 4.22.0 kernels that a ViT training step calls
 * hundreds of times, registered when the wasm backend starts:
 *
 * - `Identity` shares the input's memory (as `Reshape` does) instead of copying it. tfjs clones
 *   every tensor it saves for the backward pass through this kernel; tensors are immutable, so
 *   the copy buys nothing.
 * - `Slice`, `SplitV`: contiguous runs copied with `TypedArray.set` (a memcpy) rather than
 *   wasm's element loop.
 * - `GatherV2` on axis 0 (rows of a table): one `copyWithin` per row on a view of the heap.
 * - `PadV2` (the gradient of every `Slice`): a fill and one `set` per contiguous run; wasm's
 *   kernel took about 1.5 ms per launch whatever the size (the MAE decoder's three slices).
 *
 * Anything outside those cases goes to the original kernel. Tests compare each with the cpu
 * backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackendLike } from "./_wasm_types.ts";

type KArgs = Parameters<tf.KernelFunc>[0];

const NUMERIC = new Set(["float32", "int32", "bool"]);

/** Copies the box `begin`/`size` of `x` into a fresh output. */
function sliceInto(be: WasmBackendLike, x: tf.TensorInfo, begin: number[], size: number[]) {
  const out = be.makeOutput([...size], x.dtype);
  if (size.some((s) => s === 0)) return out;
  const src = be.typedArrayFromHeap(x), dst = be.typedArrayFromHeap(out);
  const shape = x.shape, rank = shape.length;
  // innermost contiguous run: trailing axes taken whole, plus the last partial axis
  let k = rank - 1, inner = 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) inner *= shape[k--];
  const run = size[k] * inner;
  const strides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1] * shape[a + 1];
  const outer = size.slice(0, k);
  const count = outer.reduce((p, q) => p * q, 1);
  const idx = new Array<number>(k).fill(0);
  for (let n = 0, o = 0; n < count; n++, o += run) {
    let s = begin[k] * strides[k];
    for (let a = 0; a < k; a++) s += (begin[a] + idx[a]) * strides[a];
    dst.set(src.subarray(s, s + run), o);
    for (let a = k - 1; a >= 0; a--) {
      if (++idx[a] < outer[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** `x` padded with `value`: `paddings[a] = [before, after]` on each axis. */
function padInto(be: WasmBackendLike, x: tf.TensorInfo, paddings: number[][], value: number) {
  const shape = x.shape, rank = shape.length;
  const outShape = shape.map((n, a) => paddings[a][0] + n + paddings[a][1]);
  const out = be.makeOutput(outShape, x.dtype);
  const dst = be.typedArrayFromHeap(out);
  dst.fill(value);
  if (shape.some((n) => n === 0) || rank === 0) {
    if (rank === 0) dst.set(be.typedArrayFromHeap(x));
    return out;
  }
  const src = be.typedArrayFromHeap(x);
  // innermost contiguous run of the output: trailing axes with no padding, plus the next axis
  let k = rank - 1, inner = 1;
  while (k > 0 && paddings[k][0] === 0 && paddings[k][1] === 0) inner *= shape[k--];
  const run = shape[k] * inner;
  const strides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1] * outShape[a + 1];
  const count = shape.slice(0, k).reduce((p, q) => p * q, 1);
  const idx = new Array<number>(k).fill(0);
  for (let n = 0, i = 0; n < count; n++, i += run) {
    let o = paddings[k][0] * strides[k];
    for (let a = 0; a < k; a++) o += (paddings[a][0] + idx[a]) * strides[a];
    dst.set(src.subarray(i, i + run), o);
    for (let a = k - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** Registers the replacements on the started wasm backend. Idempotent. */
export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  const override = (name: string, make: (orig: tf.KernelFunc) => tf.KernelFunc) => {
    const orig = tf.getKernel(name, "wasm");
    if (orig === undefined) return;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ ...orig, kernelFunc: make(orig.kernelFunc) });
  };

  override("Identity", (orig) => (args: KArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!NUMERIC.has(x.dtype)) return orig(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  });

  override("Slice", (orig) => (args: KArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!NUMERIC.has(x.dtype)) return orig(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, b, s);
    return sliceInto(args.backend as unknown as WasmBackendLike, x, b, s);
  });

  override("SplitV", (orig) => (args: KArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!NUMERIC.has(x.dtype)) return orig(args);
    const { numOrSizeSplits, axis } = args.attrs as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    const size = [...x.shape];
    return sizes.map((n) => {
      size[$axis] = n;
      const out = sliceInto(args.backend as unknown as WasmBackendLike, x, begin, size);
      begin[$axis] += n;
      return out;
    });
  });

  override("PadV2", (orig) => (args: KArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { paddings, constantValue } = args.attrs as {
      paddings: number[][];
      constantValue: number;
    };
    if (!NUMERIC.has(x.dtype) || paddings.length !== x.shape.length) return orig(args);
    if (paddings.some(([b, a]) => !(b >= 0 && a >= 0))) return orig(args);
    return padInto(args.backend as unknown as WasmBackendLike, x, paddings, constantValue ?? 0);
  });

  override("GatherV2", (orig) => (args: KArgs) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
    if ($axis !== 0 || (batchDims ?? 0) !== 0 || !NUMERIC.has(x.dtype)) return orig(args);
    if (indices.dtype !== "int32") return orig(args);
    const be = args.backend as unknown as WasmBackendLike;
    const rows = x.shape[0], row = x.shape.slice(1).reduce((p, q) => p * q, 1);
    const out = be.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const idx = be.typedArrayFromHeap(indices) as Int32Array;
    if (idx.length === 0 || row === 0) return out;
    const src = be.typedArrayFromHeap(x), dst = be.typedArrayFromHeap(out);
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      if (!(r >= 0 && r < rows)) {
        throw new Error(`GatherV2: index ${r} (at ${i}) is not in [0, ${rows - 1}]`);
      }
    }
    // both arrays are views of the one heap: copy each row inside a view of all of it (no
    // subarray object per row; 2-4x faster than `set`, also for rows of 16)
    const Heap = dst.constructor as Float32ArrayConstructor;
    const heap = new Heap(dst.buffer), es = dst.BYTES_PER_ELEMENT;
    const s0 = src.byteOffset / es, d0 = dst.byteOffset / es;
    for (let i = 0; i < idx.length; i++) {
      const s = s0 + idx[i] * row;
      heap.copyWithin(d0 + i * row, s, s + row);
    }
    return out;
  });
}

let installed = false;
