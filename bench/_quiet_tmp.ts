import * as tf from "@tensorflow/tfjs";
import {
  computeSaliency,
  initBackend,
  makeSynthetic,
  MaskedAutoencoder,
  PRESETS,
  setMatmulPrecision,
} from "../mod.ts";
import { dnnlActive } from "../lib/backend/_blas.ts";
import { setNativeEltwise } from "../lib/backend/_native_eltwise.ts";
await initBackend({ backend: "wasm", threads: 2, quiet: true } as never);
setMatmulPrecision("bf16");
const d = dnnlActive()!;
const P = Deno.UnsafePointer.of;
for (
  const [M, K, N] of [[16640, 768, 192], [16640, 192, 768], [16640, 192, 576], [1088, 192, 768], [
    1088,
    768,
    192,
  ], [4160, 128, 512]]
) {
  const p = d.batched("bf16", 1, 1, M, N, K, false, false, true)!;
  const px = new Uint16Array(M * K).fill(0x3f80),
    pw = new Uint16Array(K * N).fill(0x3c00),
    c = new Float32Array(M * N),
    bb = new Float32Array(N);
  let tp = 1e9, tg = 1e9;
  for (let r = 0; r < 5; r++) {
    let t0 = performance.now();
    for (let i = 0; i < 4; i++) p.run(P(px), P(pw), P(c), P(bb));
    tp = Math.min(tp, (performance.now() - t0) / 4);
    t0 = performance.now();
    for (let i = 0; i < 4; i++) d.gemmBf16(false, false, M, N, K, P(px), K, P(pw), N, 1, P(c), N);
    tg = Math.min(tg, (performance.now() - t0) / 4);
  }
  const gf = 2 * M * N * K / 1e6;
  console.log(
    `${M}x${K}x${N}: prim ${tp.toFixed(2)} ms (${(gf / tp).toFixed(0)} GF/s), gemm ${
      tg.toFixed(2)
    } ms (${(gf / tg).toFixed(0)} GF/s)`,
  );
}
const images = makeSynthetic({ count: 256, size: 32, channels: 3, seed: 1 });
const model = new MaskedAutoencoder({
  shape: { ...PRESETS["vit-tiny-32"], channels: 3 },
  normPixLoss: true,
  seed: 0,
});
for (const on of [true, false, true, false, true]) {
  setNativeEltwise(on);
  const t0 = performance.now();
  await computeSaliency(model.encoder, images, { imageSize: 32, batchSize: 256 });
  console.log(`saliency pass native=${on}: ${(performance.now() - t0).toFixed(0)} ms`);
}
setMatmulPrecision("fp32");
for (
  const [M, K, N] of [[1088, 192, 768], [1088, 768, 192], [1088, 192, 576], [4160, 128, 512], [
    4160,
    512,
    128,
  ], [16640, 768, 192]]
) {
  const p = d.batched("f32", 1, 1, M, N, K, false, false, true)!;
  const a = new Float32Array(M * K).fill(1),
    w = new Float32Array(K * N).fill(0.5),
    c = new Float32Array(M * N),
    bb = new Float32Array(N);
  const ta = tf.ones([M, K]), tw = tf.ones([K, N]);
  let tp = 1e9, tb = 1e9;
  for (let r = 0; r < 5; r++) {
    let t0 = performance.now();
    for (let i = 0; i < 4; i++) p.run(P(a), P(w), P(c), P(bb));
    tp = Math.min(tp, (performance.now() - t0) / 4);
    t0 = performance.now();
    for (let i = 0; i < 4; i++) tf.matMul(ta, tw).dispose();
    tb = Math.min(tb, (performance.now() - t0) / 4);
  }
  const gf = 2 * M * N * K / 1e6;
  console.log(
    `f32 ${M}x${K}x${N}: prim ${tp.toFixed(2)} ms (${
      (gf / tp).toFixed(0)
    } GF/s, ${p.impl}), openblas ${tb.toFixed(2)} ms (${(gf / tb).toFixed(0)} GF/s)`,
  );
}
