/**
 * bf16 matmul precision (`setMatmulPrecision`, `lib/backend/_blas.ts`, `_bf16.ts`, `_dnnl.ts`):
 * the fp32 -> bf16 conversion against a JS reference, oneDNN's bf16 gemm against exact
 * products within the bf16 error bound, a whole MAE loss + gradients step against fp32, and
 * the fallbacks (`auto` -> fp32 with a reason, explicit `bf16` -> a clear error).
 *
 * Error bound of one bf16 product, per output element (u = 2^-8, bf16's unit roundoff with
 * round to nearest even; u32 = 2^-24, fp32's; gamma_K = K u32 / (1 - K u32)):
 *   each operand is rounded once, a' = a (1 + d), |d| <= u, so |a'b' - ab| <= (2u + u^2)|a||b|;
 *   the K products are summed in fp32: another gamma_K sum|a'||b'| <= gamma_K (1 + u)^2 sum|a||b|.
 *   |C - AB|_ij <= ((2u + u^2) + gamma_K (1 + u)^2) sum_k |a_ik||b_kj|       (~2^-7 sum|a||b|)
 * and, against the exact product of the rounded operands (which checks that the rounding is
 * the round-to-nearest-even one and that accumulation is fp32):
 *   |C - A'B'|_ij <= gamma_K sum_k |a'_ik||b'_kj|
 * References are computed in float64 (its own error, K 2^-53, is added to both bounds).
 *
 * Where the CPU lacks AVX512_BF16/AMX or oneDNN does not load, the gemm and step tests cannot
 * run: they are reported as not run with the reason (in their names and on stdout), and the
 * conversion and fallback tests still run. CI sets AMT_REQUIRE_DNNL=1: oneDNN must load.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  backendSummary,
  bf16Missing,
  bf16Stats,
  dnnlFp32,
  initBackend,
  matmulPrecision,
  matmulStats,
  newStep,
  ops,
  resetMatmulStats,
  resolvePrecision,
  setBf16Cache,
  setDnnlFp32,
  setMatmulPrecision,
} from "../lib/backend/mod.ts";
import { fp32GemmFromEnv } from "../lib/backend/_blas.ts";
import { convertToBf16 } from "../lib/backend/_bf16.ts";
import { setSimdEnabled } from "../lib/backend/fused.ts";
import type { WasmBackendLike } from "../lib/backend/_wasm_types.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { randomMaskPlan } from "../lib/mim/random.ts";
import { makeRng } from "../lib/util/rng.ts";
import type { VitShape } from "../lib/vit/presets.ts";

const info = await initBackend({ backend: "wasm", quiet: true });
const missing = bf16Missing();
const canRun = missing === null;
const notRun = canRun ? "" : ` (NOT RUN: ${missing})`;
if (!canRun) {
  console.log(
    `bf16_test: bf16 matmuls cannot run here: ${missing}. The gemm and step tests are not ` +
      "run; the conversion and fallback tests are.",
  );
}
const requireDnnl = Deno.env.get("AMT_REQUIRE_DNNL") === "1";

const U = 2 ** -8, U32 = 2 ** -24, U64 = 2 ** -53;
const gamma = (k: number) => k * U32 / (1 - k * U32);

// ---- a JS reference for fp32 -> bf16 (round to nearest even), by value, not by bit tricks

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const bitsToF32 = (b: number) => (u32[0] = b >>> 0, f32[0]);
const bf16ToF32 = (h: number) => bitsToF32(h << 16);

/** The bf16 nearest to the fp32 with bits `b`; ties to the even neighbour; NaN -> quiet NaN. */
function refBf16(b: number): number {
  b >>>= 0;
  const x = bitsToF32(b);
  if (Number.isNaN(x)) return (b >>> 16) | 0x40; // keeps sign and top payload, quiet bit set
  if (!Number.isFinite(x)) return b >>> 16;
  const lo = b >>> 16; // truncation: the neighbour towards zero
  const loV = Math.abs(bf16ToF32(lo));
  // the neighbour away from zero; above the largest bf16 it is "2^128" (overflow to Inf)
  const hiBits = lo + 1;
  const hiV = (hiBits & 0x7fff) === 0x7f80 ? 2 ** 128 : Math.abs(bf16ToF32(hiBits));
  const v = Math.abs(x);
  const dLo = v - loV, dHi = hiV - v; // exact in float64
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hiBits;
  return (lo & 1) === 0 ? lo : hiBits; // tie
}

function edgeBits(): number[] {
  const v = (x: number) => (f32[0] = x, u32[0]);
  const out = [
    v(0),
    v(-0),
    v(1),
    v(-1),
    v(1 + 2 ** -8), // tie between 1 and 1 + 2^-7: to 1 (even)
    v(1 + 3 * 2 ** -8), // tie between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6 (even)
    v(1 + 2 ** -8 + 2 ** -23), // just above the tie: up
    v(1 + 2 ** -8 - 2 ** -23), // just below: down
    v(-(1 + 3 * 2 ** -8)),
    0x3f80_8000, // tie, even below
    0x3f81_8000, // tie, odd below: up
    0x7f7f_ffff, // largest fp32: overflows to Inf
    0x7f7f_0000, // largest bf16 exactly
    0x7f7f_7fff, // below the overflow threshold: stays finite
    0x7f7f_8000, // the threshold (tie, odd below): to Inf
    0xff7f_8000, // the same, negative: -Inf
    0x7f80_0000, // Inf
    0xff80_0000, // -Inf
    0x7fc0_0000, // quiet NaN
    0xffc0_0000, // negative quiet NaN
    0x7f80_0001, // signalling NaN, payload only in the low half: must stay NaN
    0xff80_0001,
    0x7fff_ffff, // NaN whose rounding would carry
    0x0000_0001, // smallest denormal: to +0
    0x8000_0001, // to -0
    0x0000_8000, // denormal tie, even below: to 0
    0x0001_8000, // denormal tie, odd below: up to 0x0002
    0x0000_8001, // above the tie: up to the smallest bf16 denormal
    0x007f_ffff, // largest denormal: up to the smallest normal
    0x0080_0000, // smallest normal
    0x0040_0000, // a denormal bf16 exactly
  ];
  // pseudo-random bit patterns over the whole u32 range (all classes)
  let s = 0x9e3779b9;
  for (let i = 0; i < 20_000; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s);
  }
  out.push(0x3f80_8000, 0x3f80_8001, 0x3f80_7fff); // make the count not a multiple of 8
  return out;
}

Deno.test("fp32 -> bf16 rounds to nearest even (wasm SIMD and scalar) like a JS reference: ties, NaN, Inf, denormals", () => {
  const be = tf.backend() as unknown as WasmBackendLike;
  const bits = edgeBits();
  assert.ok(bits.length % 8 !== 0, "the count exercises the kernel's scalar tail");
  const values = new Float32Array(Uint32Array.from(bits).buffer);
  const want = bits.map(refBf16);
  for (const simd of [true, false]) {
    setSimdEnabled(simd);
    try {
      const got = convertToBf16(be, values);
      for (let i = 0; i < bits.length; i++) {
        if (got[i] !== want[i]) {
          assert.fail(
            `${simd ? "SIMD" : "scalar"}: 0x${bits[i].toString(16).padStart(8, "0")} -> ` +
              `0x${got[i].toString(16)}, want 0x${want[i].toString(16)}`,
          );
        }
      }
    } finally {
      setSimdEnabled(true);
    }
  }
  // spot checks of the reference itself
  const ref = (x: number) => refBf16((f32[0] = x, u32[0]));
  assert.equal(ref(1 + 2 ** -8), 0x3f80);
  assert.equal(ref(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(refBf16(0x7f7f_ffff), 0x7f80);
  assert.equal(refBf16(0x0000_8001), 0x0001);
  assert.ok(Number.isNaN(bf16ToF32(refBf16(0x7f80_0001))));
});

// ---- gemm against float64 references

function values(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "bf16");
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

/** Operand values rounded to bf16 by the reference. */
function roundBf16(x: Float32Array): Float32Array {
  const b = new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  return Float32Array.from(b, (v) => bf16ToF32(refBf16(v)));
}

interface Case {
  sa: number[];
  sb: number[];
  ta: boolean;
  tb: boolean;
  label: string;
}

/** Exact (float64) `op(A) op(B)` with the broadcast batch, and sum |a||b| per element. */
function reference(c: Case, a: Float32Array, b: Float32Array) {
  const ra = c.sa.length, rb = c.sb.length;
  const M = c.ta ? c.sa[ra - 1] : c.sa[ra - 2], K = c.ta ? c.sa[ra - 2] : c.sa[ra - 1];
  const N = c.tb ? c.sb[rb - 2] : c.sb[rb - 1];
  const bA = c.sa.slice(0, -2).reduce((p, q) => p * q, 1);
  const bB = c.sb.slice(0, -2).reduce((p, q) => p * q, 1);
  const batch = Math.max(bA, bB);
  const out = new Float64Array(batch * M * N), mag = new Float64Array(batch * M * N);
  for (let i = 0; i < batch; i++) {
    const oa = (bA === 1 ? 0 : i) * M * K, ob = (bB === 1 ? 0 : i) * K * N;
    for (let r = 0; r < M; r++) {
      for (let q = 0; q < N; q++) {
        let s = 0, m = 0;
        for (let k = 0; k < K; k++) {
          const av = c.ta ? a[oa + k * M + r] : a[oa + r * K + k];
          const bv = c.tb ? b[ob + q * K + k] : b[ob + k * N + q];
          s += av * bv;
          m += Math.abs(av * bv);
        }
        out[(i * M + r) * N + q] = s;
        mag[(i * M + r) * N + q] = m;
      }
    }
  }
  return { out, mag, K };
}

const CASES: Case[] = [
  // the model's dense products, small: rows = batch x tokens
  { sa: [130, 48], sb: [48, 144], ta: false, tb: false, label: "qkv projection NN" },
  { sa: [130, 144], sb: [48, 144], ta: false, tb: true, label: "input gradient NT" },
  { sa: [130, 48], sb: [130, 144], ta: true, tb: false, label: "weight gradient TN" },
  { sa: [48, 130], sb: [144, 48], ta: true, tb: true, label: "TT" },
  { sa: [130, 192], sb: [192, 48], ta: false, tb: false, label: "MLP down NN" },
  // attention: [B*heads, T, hd] batches
  { sa: [2, 3, 17, 16], sb: [2, 3, 17, 16], ta: false, tb: true, label: "q k^T (batched NT)" },
  { sa: [2, 3, 17, 17], sb: [2, 3, 17, 16], ta: false, tb: false, label: "P v (batched NN)" },
  { sa: [2, 3, 17, 17], sb: [2, 3, 17, 16], ta: true, tb: false, label: "P^T dy (batched TN)" },
  { sa: [2, 3, 16, 17], sb: [2, 3, 17, 16], ta: true, tb: true, label: "batched TT" },
  { sa: [4, 9, 8], sb: [8, 6], ta: false, tb: false, label: "b broadcast (one product)" },
  { sa: [4, 8, 9], sb: [6, 8], ta: true, tb: true, label: "b broadcast, transposed" },
  { sa: [1, 9, 8], sb: [4, 8, 6], ta: false, tb: false, label: "a broadcast" },
  { sa: [7, 1], sb: [1, 5], ta: false, tb: false, label: "K = 1" },
  { sa: [1, 130], sb: [130, 48], ta: false, tb: false, label: "ones-row (a bias gradient)" },
  { sa: [130, 48], sb: [1, 48], ta: false, tb: true, label: "matrix-vector NT" },
  { sa: [5, 0], sb: [0, 3], ta: false, tb: false, label: "K = 0 (zeros)" },
  { sa: [3, 0, 4], sb: [3, 4, 2], ta: false, tb: false, label: "empty batch rows" },
];

async function matMulData(c: Case, a: Float32Array, b: Float32Array): Promise<Float32Array> {
  const y = tf.tidy(() => tf.matMul(tf.tensor(a, c.sa), tf.tensor(b, c.sb), c.ta, c.tb));
  const d = await y.data() as Float32Array;
  y.dispose();
  return d;
}

Deno.test({
  name:
    `bf16 matMul is within the bf16 error bound: NN/NT/TN/TT, model shapes, batches, K = 0${notRun}`,
  ignore: !canRun,
  fn: async () => {
    try {
      for (const [i, c] of CASES.entries()) {
        const na = c.sa.reduce((p, q) => p * q, 1), nb = c.sb.reduce((p, q) => p * q, 1);
        const a = values(na, 10 + i), b = values(nb, 40 + i);
        setMatmulPrecision("fp32");
        const fp32 = await matMulData(c, a, b);
        setMatmulPrecision("bf16");
        resetMatmulStats();
        const got = await matMulData(c, a, b);
        const st = matmulStats();
        const exact = reference(c, a, b);
        // a vector product (one output side 1) stays fp32: its operands are not rounded
        const vector = st.vectorFp32 > 0;
        const rounded = vector ? exact : reference(c, roundBf16(a), roundBf16(b));
        const K = exact.K;
        assert.equal(got.length, exact.out.length, c.label);
        const loose = 2 * U + U * U + gamma(K) * (1 + U) ** 2 + K * U64;
        const tight = gamma(K) + K * U64;
        let differs = false;
        for (let j = 0; j < got.length; j++) {
          const e1 = Math.abs(got[j] - exact.out[j]), e2 = Math.abs(got[j] - rounded.out[j]);
          assert.ok(
            e1 <= loose * exact.mag[j],
            `${c.label} [${j}]: |bf16 - exact| ${e1} > ${loose} * ${exact.mag[j]}`,
          );
          assert.ok(
            e2 <= tight * rounded.mag[j],
            `${c.label} [${j}]: |bf16 - rounded-operand exact| ${e2} > ${tight} * ${
              rounded.mag[j]
            }`,
          );
          if (got[j] !== fp32[j]) differs = true;
        }
        const products = st.bf16 + st.batchedPrimitive + st.batchedLoop + st.vectorFp32;
        if (K > 0 && got.length > 0) {
          assert.ok(products >= 1, `${c.label}: no native product ran: ${JSON.stringify(st)}`);
          if (st.vectorFp32 === 0 && K > 1) {
            assert.ok(differs, `${c.label}: bf16 result equals fp32 exactly: bf16 did not run`);
          }
        }
      }
    } finally {
      setMatmulPrecision("fp32");
    }
  },
});

Deno.test({
  name: `bf16 dense layer (bias in fp32) and its gradients match fp32 within bf16 error${notRun}`,
  ignore: !canRun,
  fn: async () => {
    const x = values(37 * 24, 3), w = values(24 * 19, 4), b = values(19, 5);
    const run = async () => {
      const outs = tf.tidy(() => {
        const [xt, wt, bt] = [tf.tensor2d(x, [37, 24]), tf.tensor2d(w, [24, 19]), tf.tensor1d(b)];
        const f = (xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D) =>
          tf.sum(tf.square(ops.linear(xx, ww, bb))) as tf.Scalar;
        const g = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([xt, wt, bt]);
        return [ops.linear(xt, wt, bt), ...g];
      });
      const d = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose(outs);
      return d;
    };
    try {
      setMatmulPrecision("fp32");
      const ref = await run();
      setMatmulPrecision("bf16");
      resetMatmulStats();
      const got = await run();
      const st = matmulStats();
      assert.ok(st.bf16 >= 3, `forward, dx and dW in bf16: ${JSON.stringify(st)}`);
      assert.ok(st.vectorFp32 >= 1, `the bias gradient (a ones-row product) stays fp32`);
      assert.ok(
        st.fp32Dnnl >= st.vectorFp32 && st.fp32 === 0,
        `and runs on oneDNN's f32 primitive, not OpenBLAS: ${JSON.stringify(st)}`,
      );
      // y: K = 24 inputs of |x||w| <= 1: each element within 2^-7 * 24 of fp32 (loose, per
      // element); gradients: relative in norm
      for (const [i, name] of ["y", "dx", "dW", "db"].entries()) {
        let num = 0, den = 0;
        for (let j = 0; j < ref[i].length; j++) {
          num += (got[i][j] - ref[i][j]) ** 2;
          den += ref[i][j] ** 2;
        }
        const rel = Math.sqrt(num / den);
        assert.ok(rel < 2e-2, `${name}: relative error ${rel}`);
      }
    } finally {
      setMatmulPrecision("fp32");
    }
  },
});

Deno.test({
  name: `bf16 dense layer with the bias fused (oneDNN primitive, native copies): the exact ` +
    `product of the rounded operands plus the bias within gamma_K${notRun}`,
  ignore: !canRun,
  fn: async () => {
    // x has 300 x 128 = 38,400 values: its bf16 copy takes oneDNN's reorder where it is loaded
    const R = 300, K = 128, N = 40;
    const x = values(R * K, 11), w = values(K * N, 12), b = values(N, 13);
    try {
      setMatmulPrecision("bf16");
      const y = tf.tidy(() =>
        ops.linear(tf.tensor2d(x, [R, K]), tf.tensor2d(w, [K, N]), tf.tensor1d(b))
      );
      const got = await y.data() as Float32Array;
      y.dispose();
      const { out, mag } = reference(
        { sa: [R, K], sb: [K, N], ta: false, tb: false, label: "dense" },
        roundBf16(x),
        roundBf16(w),
      );
      let worst = 0;
      for (let i = 0; i < R * N; i++) {
        const want = out[i] + b[i % N];
        // the product's fp32 sum, plus the bias added once in fp32 (one more rounding)
        const bound = (gamma(K) + U64 * K) * mag[i] + U32 * (Math.abs(want) + mag[i]) + 1e-30;
        worst = Math.max(worst, Math.abs(got[i] - want) / bound);
      }
      assert.ok(worst <= 1, `worst error / bound ${worst}`);
    } finally {
      setMatmulPrecision("fp32");
    }
  },
});

Deno.test({
  name: `bf16 operand copies are cached per tensor and freed by newStep() / when disposed${notRun}`,
  ignore: !canRun,
  fn: async () => {
    try {
      setMatmulPrecision("bf16");
      newStep();
      const w = tf.tensor2d(values(64 * 32, 7), [64, 32]);
      const x1 = tf.tensor2d(values(40 * 64, 8), [40, 64]);
      const x2 = tf.tensor2d(values(40 * 64, 9), [40, 64]);
      const before = bf16Stats();
      const y1 = tf.matMul(x1, w), y2 = tf.matMul(x2, w);
      const mid = bf16Stats();
      assert.equal(mid.conversions - before.conversions, 3, "x1, w, x2 converted once each");
      assert.equal(mid.cacheHits - before.cacheHits, 1, "w reused from the cache");
      assert.ok(mid.cacheEntries >= 3);
      // the cached copy and a fresh conversion (cache off) give the same result bit for bit
      const cached = await y2.data();
      setBf16Cache(false);
      const y3 = tf.matMul(x2, w);
      assert.deepEqual(await y3.data(), cached);
      setBf16Cache(true);
      tf.dispose([y1, y2, y3, x1, x2, w]);
      newStep();
      assert.equal(bf16Stats().cacheEntries, 0, "newStep() frees every copy");
      assert.equal(bf16Stats().cacheBytes, 0);
    } finally {
      setBf16Cache(true);
      setMatmulPrecision("fp32");
    }
  },
});

const SHAPE: VitShape = {
  imageSize: 16,
  patchSize: 4,
  channels: 3,
  dim: 48,
  depth: 2,
  heads: 3,
  mlpRatio: 4,
  decoderDim: 32,
  decoderDepth: 1,
  decoderHeads: 2,
};

/** Loss and gradients of one MAE step from a fixed seed, in the given precision. */
async function maeStep(
  precision: "fp32" | "bf16",
): Promise<{ loss: number; grads: Float32Array[] }> {
  setMatmulPrecision(precision);
  newStep();
  const model = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 3 });
  const B = 8, L = 16;
  const patches = tf.tensor2d(values(B * L * 48, 21), [B * L, 48]);
  const plan = randomMaskPlan(B, L, 0.75, makeRng(5, "plan"));
  const vars = model.store.variables();
  const outs = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => model.lossFn(patches, plan), vars);
    return [value, ...vars.map((v) => grads[v.name])];
  });
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  patches.dispose();
  model.dispose();
  return { loss: data[0][0], grads: data.slice(1) };
}

Deno.test({
  name: `a whole MAE loss + gradients step in bf16 is within bf16 tolerance of fp32${notRun}`,
  ignore: !canRun,
  fn: async () => {
    try {
      const ref = await maeStep("fp32");
      resetMatmulStats();
      const got = await maeStep("bf16");
      const st = matmulStats();
      assert.ok(
        st.bf16 > 10 && st.fp32 <= st.vectorFp32,
        `all products in bf16: ${JSON.stringify(st)}`,
      );
      // Tolerances: one product is within ~2^-7 relative (u = 2^-8 per rounded operand); a step
      // chains ~10 products deep forward and back, while LayerNorm, softmax and the loss stay
      // fp32. Measured over seeds 1-6: loss within 7.5e-4 relative (~0.2 u), each gradient
      // tensor within 1.2e-2 in norm (~3 u), cosine >= 0.99994. Bounds with ~5x margin:
      // loss 5e-3, gradients 5e-2 in norm (~13 u), cosine > 0.999.
      const dl = Math.abs(got.loss - ref.loss) / Math.abs(ref.loss);
      assert.ok(dl < 5e-3, `loss ${got.loss} vs fp32 ${ref.loss}: relative ${dl}`);
      let worst = 0;
      for (let i = 0; i < ref.grads.length; i++) {
        let num = 0, den = 0, dot = 0, n2 = 0;
        for (let j = 0; j < ref.grads[i].length; j++) {
          num += (got.grads[i][j] - ref.grads[i][j]) ** 2;
          den += ref.grads[i][j] ** 2;
          dot += got.grads[i][j] * ref.grads[i][j];
          n2 += got.grads[i][j] ** 2;
        }
        if (den === 0) continue; // e.g. a parameter the masked loss does not reach
        const rel = Math.sqrt(num / den), cos = dot / Math.sqrt(den * n2);
        worst = Math.max(worst, rel);
        assert.ok(rel < 5e-2, `gradient ${i}: relative error in norm ${rel}`);
        assert.ok(cos > 0.999, `gradient ${i}: cosine to fp32 ${cos}`);
      }
      console.log(
        `MAE step bf16 vs fp32: loss relative ${dl.toExponential(2)}, worst gradient ` +
          `relative ${worst.toExponential(2)}`,
      );
    } finally {
      setMatmulPrecision("fp32");
    }
  },
});

// ---- reporting and fallbacks

Deno.test("initBackend reports the bf16 machinery, or why there is none", () => {
  assert.ok(info.bf16 !== undefined && info.bf16 !== "", "the wasm report names bf16 support");
  const line = backendSummary().line;
  if (info.nativeMatmul) assert.ok(line.includes(info.bf16!), line);
  if (requireDnnl) {
    assert.ok(backendSummary().dnnl !== undefined, `AMT_REQUIRE_DNNL=1 but: ${info.bf16}`);
  }
  if (canRun) {
    assert.equal(info.bf16Available, true);
    assert.match(
      info.bf16!,
      /^oneDNN \d+\.\d+\.\d+ bf16 \((avx512_bf16|amx_bf16|avx512_bf16 amx_bf16), /,
    );
    assert.equal(resolvePrecision("auto").precision, "bf16");
    assert.match(resolvePrecision("auto").reason, /^auto: bf16 matmuls \(oneDNN /);
  } else {
    assert.match(info.bf16!, /^no bf16: /);
    assert.equal(resolvePrecision("auto").precision, "fp32");
    assert.throws(() => resolvePrecision("bf16"), /^Error: precision bf16 is not available: /);
  }
  assert.deepEqual(resolvePrecision("fp32"), { precision: "fp32", reason: "fp32 as asked" });
  assert.equal(matmulPrecision(), "fp32", "fp32 unless set");
  assert.throws(
    () => resolvePrecision("fp16" as "fp32"),
    /precision must be one of auto, fp32, bf16; got "fp16"/,
  );
  assert.throws(() => setMatmulPrecision("auto" as "fp32"), /resolve auto with resolvePrecision/);
});

Deno.test("batched products run as one threaded oneDNN primitive in fp32, matching float64", async () => {
  if (backendSummary().dnnl === undefined) {
    console.log(`not run: oneDNN is not loaded (${info.bf16})`);
    assert.ok(!requireDnnl, "AMT_REQUIRE_DNNL=1 but oneDNN did not load");
    return;
  }
  const c = CASES[5]; // q k^T
  const a = values(2 * 3 * 17 * 16, 1), b = values(2 * 3 * 17 * 16, 2);
  resetMatmulStats();
  const got = await matMulData(c, a, b);
  assert.equal(matmulStats().batchedPrimitive, 1, JSON.stringify(matmulStats()));
  const ref = reference(c, a, b);
  for (let j = 0; j < got.length; j++) {
    assert.ok(Math.abs(got[j] - ref.out[j]) <= (gamma(16) + 2 * U32) * ref.mag[j], `[${j}]`);
  }
});

Deno.test("2-D fp32 products and the fp32 dense layer run on oneDNN's f32 primitive within fp32 error, or on sgemm when it is off", async () => {
  if (backendSummary().dnnl === undefined) {
    console.log(`not run: oneDNN is not loaded (${info.bf16})`);
    assert.ok(!requireDnnl, "AMT_REQUIRE_DNNL=1 but oneDNN did not load");
    return;
  }
  assert.equal(dnnlFp32(), true, "on by default when AMT_FP32_GEMM is unset");
  // |C - AB|_ij <= gamma_K sum_k |a_ik||b_kj| for an fp32 product (plus float64's own error)
  const check = (
    label: string,
    got: Float32Array,
    ref: { out: Float64Array; mag: Float64Array; K: number },
  ) => {
    const bound = gamma(ref.K) + ref.K * U64;
    for (let j = 0; j < got.length; j++) {
      const e = Math.abs(got[j] - ref.out[j]);
      assert.ok(
        e <= bound * ref.mag[j] + 1e-30,
        `${label} [${j}]: ${e} > ${bound} * ${ref.mag[j]}`,
      );
    }
  };
  try {
    for (const on of [true, false]) {
      setDnnlFp32(on);
      for (const [i, c] of CASES.entries()) {
        if (c.sa.length !== 2 || c.sb.length !== 2) continue;
        const na = c.sa.reduce((p, q) => p * q, 1), nb = c.sb.reduce((p, q) => p * q, 1);
        const a = values(na, 70 + i), b = values(nb, 90 + i);
        resetMatmulStats();
        const got = await matMulData(c, a, b);
        const st = matmulStats();
        const ref = reference(c, a, b);
        check(`${c.label} (oneDNN ${on})`, got, ref);
        // vector products (one side 1) too: OpenBLAS's threads, once woken, spin and take a
        // core from oneDNN's
        if (ref.K > 0) {
          const want = on ? { fp32Dnnl: 1, fp32: 0 } : { fp32Dnnl: 0, fp32: 1 };
          assert.deepEqual(
            { fp32Dnnl: st.fp32Dnnl, fp32: st.fp32 },
            want,
            `${c.label}: ${JSON.stringify(st)}`,
          );
        }
      }
      // the dense layer with its bias fused: x [37, 24] w [24, 19] + b
      const x = values(37 * 24, 7), w = values(24 * 19, 8), bias = values(19, 9);
      resetMatmulStats();
      const y = tf.tidy(() =>
        ops.linear(tf.tensor2d(x, [37, 24]), tf.tensor2d(w, [24, 19]), tf.tensor1d(bias))
      );
      const got = await y.data() as Float32Array;
      y.dispose();
      assert.equal(matmulStats()[on ? "fp32Dnnl" : "fp32"], 1, JSON.stringify(matmulStats()));
      const ref = reference(
        { sa: [37, 24], sb: [24, 19], ta: false, tb: false, label: "dense" },
        x,
        w,
      );
      for (let j = 0; j < ref.out.length; j++) {
        ref.out[j] += bias[j % 19];
        ref.mag[j] += Math.abs(bias[j % 19]); // the bias joins the sum: one more rounding
      }
      check(`dense + bias (oneDNN ${on})`, got, { ...ref, K: ref.K + 1 });
    }
  } finally {
    setDnnlFp32(true);
  }
  assert.equal(fp32GemmFromEnv(undefined), true);
  assert.equal(fp32GemmFromEnv("blas"), false);
  assert.throws(() => fp32GemmFromEnv("mkl"), /AMT_FP32_GEMM=mkl: use dnnl or blas/);
});

Deno.test("on the cpu backend auto resolves to fp32 with the reason, and bf16 throws", async () => {
  await initBackend({ backend: "cpu", quiet: true });
  try {
    const r = resolvePrecision("auto");
    assert.equal(r.precision, "fp32");
    assert.match(r.reason, /^auto: fp32, since bf16 matmuls run in the wasm backend's .* cpu/);
    assert.throws(
      () => setMatmulPrecision("bf16"),
      /precision bf16 is not available: .*backend is cpu \(use --backend=wasm or auto\)\. Or use precision fp32/,
    );
    assert.equal(matmulPrecision(), "fp32");
  } finally {
    await initBackend({ backend: "wasm", quiet: true });
  }
});

/** Runs `code` in a fresh Deno with `env`; returns its last stdout line as JSON. */
async function fresh(code: string, env: Record<string, string>): Promise<Record<string, string>> {
  const mod = new URL("../lib/backend/mod.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      `const m = await import(${JSON.stringify(mod)});\n${code}`,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

const FALLBACK = `
  const info = await m.initBackend({ backend: "wasm", quiet: true });
  const auto = m.resolvePrecision("auto");
  let error = "";
  try { m.setMatmulPrecision("bf16"); } catch (e) { error = e.message; }
  let resolveError = "";
  try { m.resolvePrecision("bf16"); } catch (e) { resolveError = e.message; }
  console.log(JSON.stringify({ bf16: info.bf16, line: m.backendSummary().line, precision:
    auto.precision, reason: auto.reason, error, resolveError, now: m.matmulPrecision() }));`;

Deno.test("AMT_DNNL=off (fresh process): auto resolves to fp32 with the reason, bf16 throws what to do", async () => {
  const r = await fresh(FALLBACK, { AMT_DNNL: "off" });
  assert.equal(r.precision, "fp32");
  assert.equal(r.now, "fp32");
  if (info.nativeMatmul) {
    assert.match(r.bf16, /^no bf16: oneDNN off \(AMT_DNNL=off\)$/);
    assert.ok(r.line.includes("no bf16: oneDNN off (AMT_DNNL=off)"), r.line);
    assert.match(
      r.reason,
      /^auto: fp32, since bf16 matmuls need oneDNN, which is not loaded \(oneDNN off \(AMT_DNNL=off\); unset AMT_DNNL\)$/,
    );
    assert.match(
      r.error,
      /^precision bf16 is not available: bf16 matmuls need oneDNN, .*unset AMT_DNNL\)\. Or use precision fp32, or auto/,
    );
  } else {
    assert.match(
      r.reason,
      /^auto: fp32, since bf16 matmuls run in the wasm backend's native matmul/,
    );
  }
  assert.equal(r.resolveError, r.error, "resolvePrecision('bf16') throws the same message");
});

Deno.test("a bad AMT_DNNL path, or no native matmul (AMT_BLAS=off): fp32 with the reason", async () => {
  const bad = await fresh(FALLBACK, { AMT_DNNL: "/nonexistent/libdnnl.so.2" });
  assert.equal(bad.precision, "fp32");
  if (info.nativeMatmul) {
    assert.match(bad.bf16, /^no bf16: oneDNN "\/nonexistent\/libdnnl.so.2" did not load/);
    assert.match(bad.error, /apt install libdnnl2, or set AMT_DNNL=/);
  }
  const noBlas = await fresh(FALLBACK, { AMT_BLAS: "off" });
  assert.equal(noBlas.precision, "fp32");
  assert.equal(noBlas.bf16, "no bf16: it needs the native matmul");
  assert.match(
    noBlas.error,
    /^precision bf16 is not available: bf16 matmuls run in the wasm backend's native matmul, which is not active \(native BLAS off \(AMT_BLAS=off\); /,
  );
});
