/**
 * oneDNN's elementwise kernels behind the wasm kernels (`lib/backend/_native_eltwise.ts`):
 * the exact GELU forward and backward against a float64 reference, whole gradients against
 * the wasm SIMD path, and the fp32 -> bf16 reorder against round-to-nearest-even (bit-exact for
 * every normal, Inf and NaN input; fp32 denormals become signed zero, as the hardware
 * conversion does). Where oneDNN does not load the tests say NOT RUN; CI sets
 * AMT_REQUIRE_DNNL=1, which makes that a failure.
 *
 * Tolerances: the float64 reference GELU uses erf to ~1e-15; oneDNN's fp32 kernel is held to
 * 4 fp32 ulps of max(1, |y|) (about 5e-7), and the wasm kernel (A&S 7.1.26, |erf error| <
 * 1.5e-7) to 1e-6 against it.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { bf16Stats, initBackend, ops, resetBf16Stats } from "../lib/backend/mod.ts";
import { bf16Bits, bf16BitsFtz, convertToBf16 } from "../lib/backend/_bf16.ts";
import { simdExports } from "../lib/backend/_simd.ts";
import { WASM_BASE64 } from "../lib/backend/simd/bf16_wasm.ts";
import {
  NATIVE_MIN_ELEMENTS,
  nativeEltwise,
  nativeEltwiseCalls,
  setNativeEltwise,
  SOFTMAX_NATIVE_MIN,
} from "../lib/backend/_native_eltwise.ts";
import type { WasmBackendLike } from "../lib/backend/_wasm_types.ts";

await initBackend({ backend: "wasm", quiet: true });
const have = nativeEltwise(NATIVE_MIN_ELEMENTS) !== null;
const requireDnnl = Deno.env.get("AMT_REQUIRE_DNNL") === "1";
const notRun = have ? "" : " (NOT RUN: oneDNN's elementwise kernels did not load)";
if (!have) console.log(`native_eltwise_test: oneDNN's elementwise kernels are not loaded${notRun}`);

Deno.test("oneDNN's elementwise kernels load where CI requires oneDNN", () => {
  if (requireDnnl) {
    assert.ok(have, "AMT_REQUIRE_DNNL=1 but oneDNN's elementwise kernels are absent");
  }
});

/** erf to ~1e-15 in float64: its Maclaurin series near 0, the continued fraction of erfc beyond. */
function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a, sum = a;
    for (let n = 1; n < 60; n++) {
      term *= -a * a / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * 2 / Math.sqrt(Math.PI) * sum;
  }
  // erfc(a) = exp(-a^2) / sqrt(pi) * 1 / (a + 1/2 / (a + 1 / (a + 3/2 / (a + ...))))
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + (n / 2) / f;
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f);
}
const phi = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
const cdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

/** n values spread over [-9, 9] with extra density near 0, and exact specials. */
function inputs(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32 * 2 - 1;
    x[i] = i % 3 === 0 ? 9 * u : 2 * u * Math.abs(u);
  }
  x.set([0, -0, 1, -1, 3, -3, 8.5, -8.5, 1e-6, -1e-6], 0);
  return x;
}

Deno.test(`oneDNN's GELU and its backward match float64 erf within 4 ulps${notRun}`, () => {
  if (!have) return;
  const n = NATIVE_MIN_ELEMENTS + 7;
  const xs = inputs(n);
  const x = tf.tensor1d(xs);
  const dy = tf.tensor1d(Float32Array.from({ length: n }, (_, i) => ((i % 7) - 3) / 3));
  const g = tf.grad((t: tf.Tensor) => ops.gelu(t).mul(dy).sum());
  setNativeEltwise(true);
  const before = nativeEltwiseCalls();
  const y = ops.gelu(x).dataSync(), dx = g(x).dataSync();
  const after = nativeEltwiseCalls();
  for (const k of ["gelu", "geluBackward"]) {
    assert.ok((after[k] ?? 0) > (before[k] ?? 0), `${k} did not run natively`);
  }
  setNativeEltwise(false);
  const yWasm = ops.gelu(x).dataSync(), dxWasm = g(x).dataSync();
  setNativeEltwise(true);
  const ulp = 2 ** -23;
  const dys = dy.dataSync();
  let worst = 0, worstD = 0, worstWasm = 0;
  for (let i = 0; i < n; i++) {
    const v = xs[i];
    const ref = v * cdf(v), dref = dys[i] * (cdf(v) + v * phi(v));
    worst = Math.max(worst, Math.abs(y[i] - ref) / Math.max(1, Math.abs(ref)));
    worstD = Math.max(worstD, Math.abs(dx[i] - dref) / Math.max(1, Math.abs(dref)));
    worstWasm = Math.max(worstWasm, Math.abs(yWasm[i] - y[i]), Math.abs(dxWasm[i] - dx[i]));
  }
  assert.ok(worst <= 4 * ulp, `forward error ${worst / ulp} ulps`);
  assert.ok(worstD <= 4 * ulp, `backward error ${worstD / ulp} ulps`);
  assert.ok(worstWasm <= 1e-6, `wasm path differs by ${worstWasm}`);
  // two implementations (so the switch took effect): they differ in some last bits
  assert.ok(y.some((v, i) => v !== yWasm[i]), "the native and wasm GELU gave identical bits");
  console.log(
    `  GELU: forward ${(worst / ulp).toFixed(2)} ulps, backward ${(worstD / ulp).toFixed(2)}`,
  );
  assert.equal(Object.is(y[1], -0) || y[1] === 0, true);
  tf.dispose([x, dy]);
});

Deno.test(`small arrays stay on the wasm GELU; oneDNN takes the large ones${notRun}`, () => {
  if (!have) return;
  assert.equal(nativeEltwise(NATIVE_MIN_ELEMENTS - 1), null);
  const before = tf.memory().numTensors;
  const small = tf.tidy(() => ops.gelu(tf.ones([8, 16])).dataSync());
  assert.ok(Math.abs(small[0] - 1 * cdf(1)) < 1e-6);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test(`oneDNN's bf16 copies round to nearest even; fp32 denormals become signed zero${notRun}`, () => {
  if (!have) return;
  const be = tf.backend() as unknown as WasmBackendLike;
  const n = NATIVE_MIN_ELEMENTS + 5;
  const bits = new Uint32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = s;
  }
  bits.set([
    0x3f80_8000, // tie, even below: down
    0x3f81_8000, // tie, odd below: up
    0x7f7f_ffff, // largest fp32: to Inf
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0x7f80_0001, // signalling NaN: stays NaN, quieted
    0x7fff_ffff,
    0x0000_0001, // denormals
    0x8000_0001,
    0x007f_ffff,
    0x0080_0000, // smallest normal
  ]);
  const values = new Float32Array(bits.buffer);
  resetBf16Stats();
  const got = convertToBf16(be, values);
  assert.equal(bf16Stats().nativeConversions, 1);
  let denormals = 0;
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    const denormal = (b & 0x7f80_0000) === 0 && (b & 0x007f_ffff) !== 0;
    const want = denormal ? (b >>> 16) & 0x8000 : bf16Bits(b);
    if (denormal) denormals++;
    assert.equal(got[i], want, `bits ${b.toString(16)}: got ${got[i].toString(16)}`);
  }
  assert.ok(denormals >= 3);
  // the in-place AdamW step refreshes copies of large weights with the wasm kernel's flushing
  // variant (and its scalar tail with bf16BitsFtz): the same bits as the reorder
  const wb = be;
  const ex = simdExports("bf16", WASM_BASE64, wb.wasm.wasmMemory!)!;
  const src = wb.wasm._malloc(4 * n), dst = wb.wasm._malloc(2 * n);
  try {
    new Uint32Array(wb.wasm.wasmMemory!.buffer, src, n).set(bits);
    (ex.f32_to_bf16_ftz as (s: number, d: number, n: number) => void)(src, dst, n);
    const simd = new Uint16Array(wb.wasm.wasmMemory!.buffer, dst, n);
    for (let i = 0; i < n; i++) {
      if (simd[i] !== got[i] || bf16BitsFtz(bits[i]) !== got[i]) {
        assert.fail(
          `bits ${bits[i].toString(16)}: reorder ${got[i].toString(16)}, SIMD flushing ` +
            `${simd[i].toString(16)}, bf16BitsFtz ${bf16BitsFtz(bits[i]).toString(16)}`,
        );
      }
    }
  } finally {
    wb.wasm._free(src);
    wb.wasm._free(dst);
  }
  // turned off, the same values take the wasm kernel (which rounds denormals too)
  setNativeEltwise(false);
  resetBf16Stats();
  const wasm = convertToBf16(be, values);
  setNativeEltwise(true);
  assert.equal(bf16Stats().nativeConversions, 0);
  assert.equal(wasm[10], bf16Bits(0x007f_ffff));
});

Deno.test(`attention's head split and merge by oneDNN's strided copy equal the wasm loop's${notRun}`, () => {
  if (!have) return;
  // qkv [8 * 65, 576]: 299,520 values, above the native threshold
  const B = 8, T = 65, D = 192, H = 3;
  const rnd = (n: number, seed: number) => {
    let s = seed;
    return Float32Array.from({ length: n }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32 - 0.5;
    });
  };
  const rows = tf.tensor2d(rnd(B * T * D, 1), [B * T, D]);
  const w = tf.tensor2d(rnd(D * 3 * D, 2).map((v) => v * 0.2), [D, 3 * D]);
  const b = tf.tensor1d(rnd(3 * D, 3));
  const f = (r: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
    const { attention, v } = ops.selfAttention(
      r as tf.Tensor2D,
      ww as tf.Tensor2D,
      bb as tf.Tensor1D,
      B,
      H,
    );
    return tf.add(tf.sum(tf.mul(attention, attention)), tf.sum(tf.mul(v, v)));
  };
  const run = (on: boolean) => {
    setNativeEltwise(on);
    try {
      return tf.tidy(() => {
        const { attention, v } = ops.selfAttention(rows, w, b, B, H);
        const g = tf.grads(f)([rows, w, b]); // through the merge (the split's gradient)
        return [attention, v, ...g].map((t) => t.dataSync().slice());
      });
    } finally {
      setNativeEltwise(true);
    }
  };
  const before = nativeEltwiseCalls();
  const native = run(true);
  const after = nativeEltwiseCalls();
  for (const k of ["splitHeads", "mergeHeads"]) {
    assert.ok((after[k] ?? 0) > (before[k] ?? 0), `${k} did not run natively`);
  }
  const wasm = run(false);
  assert.deepEqual(nativeEltwiseCalls(), after, "native kernels ran while turned off");
  for (const [i, name] of ["attention", "v", "d rows", "d w", "d b"].entries()) {
    let worst = 0, scale = 0;
    for (let j = 0; j < wasm[i].length; j++) {
      worst = Math.max(worst, Math.abs(native[i][j] - wasm[i][j]));
      scale = Math.max(scale, Math.abs(wasm[i][j]));
    }
    // the same copies and the same products: equal up to the products' own rounding
    assert.ok(worst <= 1e-6 * Math.max(1, scale), `${name}: differs by ${worst} (max ${scale})`);
  }
  tf.dispose([rows, w, b]);
});

/** Float64 softmax rows and its backward `y (dy - sum(dy y))`, with the scale of each term. */
function softmaxRef(x: Float32Array, dy: Float32Array, cols: number) {
  const y = new Float64Array(x.length), dx = new Float64Array(x.length);
  const mag = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += cols) {
    let m = -Infinity, sum = 0, dot = 0, dotAbs = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, x[o + j]);
    for (let j = 0; j < cols; j++) sum += y[o + j] = Math.exp(x[o + j] - m);
    for (let j = 0; j < cols; j++) {
      y[o + j] /= sum;
      dot += dy[o + j] * y[o + j];
      dotAbs += Math.abs(dy[o + j] * y[o + j]);
    }
    for (let j = 0; j < cols; j++) {
      dx[o + j] = y[o + j] * (dy[o + j] - dot);
      mag[o + j] = y[o + j] * (Math.abs(dy[o + j]) + dotAbs);
    }
  }
  return { y, dx, mag };
}

Deno.test(`softmax and its backward match float64: the loop (small) and oneDNN (large)${notRun}`, () => {
  // [2, 3, 17, 17] (867 values: the loop), [16, 3, 11, 11] (5,808) and [8, 4, 65, 65] (135,200:
  // oneDNN when loaded); rows shifted by up to +-300 (the max is subtracted first), ties, and one
  // row of equal values
  for (const shape of [[2, 3, 17, 17], [16, 3, 11, 11], [8, 4, 65, 65]]) {
    const n = shape.reduce((a, b) => a * b, 1), cols = shape[3];
    let s = 99;
    const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
    const x = Float32Array.from(
      { length: n },
      (_, i) => 8 * rnd() + 600 * ((i / cols | 0) % 3 - 1) / 2,
    );
    x.fill(3.25, 0, cols); // equal values: exactly 1/cols each
    x[cols] = x[cols + 1] = 5; // a tie for the max
    const dyv = Float32Array.from({ length: n }, rnd);
    const before = nativeEltwiseCalls();
    const [y, dx] = tf.tidy(() => {
      const xt = tf.tensor(x, shape), dyt = tf.tensor(dyv, shape);
      const f = (t: tf.Tensor) => ops.softmax(t);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), dyt)))(xt);
      return [f(xt).dataSync().slice(), g.dataSync().slice()];
    });
    const calls = nativeEltwiseCalls();
    const native = n >= SOFTMAX_NATIVE_MIN && have;
    for (const k of ["softmax", "softmaxBackward"]) {
      const ran = (calls[k] ?? 0) > (before[k] ?? 0);
      assert.equal(ran, native, `${shape}: ${k} ${ran ? "ran" : "did not run"} natively`);
    }
    const ref = softmaxRef(x, dyv, cols);
    let worst = 0, worstD = 0;
    for (let i = 0; i < n; i++) {
      worst = Math.max(worst, Math.abs(y[i] - ref.y[i]) / (ref.y[i] + 1e-30));
      worstD = Math.max(worstD, Math.abs(dx[i] - ref.dx[i]) / (ref.mag[i] + 1e-30));
    }
    // In fp32 (u = 2^-24): exp within 2 ulps (oneDNN's is a polynomial), the row sum of `cols`
    // terms within gamma_cols ~ cols u, the division 1 u: forward relative (cols + 5) u. The
    // backward's dot product adds another gamma_cols and two roundings: (2 cols + 8) u of the
    // terms' magnitude. (The loop computes in float64 and rounds once: far inside both.)
    const u = 2 ** -24;
    assert.ok(worst <= (cols + 5) * u, `${shape}: forward relative error ${worst}`);
    assert.ok(worstD <= (2 * cols + 8) * u, `${shape}: backward relative error ${worstD}`);
    if (!native) assert.ok(worst <= 2 * u && worstD <= 4 * u, `loop: ${worst}, ${worstD}`);
    console.log(
      `  softmax ${shape}: forward ${(worst / u).toFixed(2)} u, backward ${
        (worstD / u).toFixed(2)
      } u`,
    );
    for (let j = 0; j < cols; j++) assert.equal(y[j], Math.fround(1 / cols));
  }
});
