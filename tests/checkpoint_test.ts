import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "../lib/run/checkpoint.ts";
import { appendMetrics, readMetrics, restoreState, truncateMetrics } from "../lib/run/mod.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";

const ckpt = (step: number) => ({
  meta: { globalStep: step },
  arrays: new Map([
    ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, step]) }],
    ["b", { shape: [1], data: Int32Array.of(step) }],
  ]),
});

Deno.test("encodeCheckpoint()/decodeCheckpoint() round-trip arrays and metadata", () => {
  const back = decodeCheckpoint(encodeCheckpoint(ckpt(7)));
  assert.deepEqual(back.meta, { globalStep: 7 });
  assert.deepEqual(back.arrays.get("a")!.data, Float32Array.from([1, 2, 3, 4, 5, 7]));
  assert.deepEqual(back.arrays.get("b")!.data, Int32Array.of(7));
});

Deno.test("loadCheckpoint() falls back to the previous good file when the newest is corrupt or truncated", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/c.ckpt`;
  await saveCheckpoint(path, ckpt(1));
  await saveCheckpoint(path, ckpt(2)); // 1 is now c.ckpt.prev
  const bytes = await Deno.readFile(path);
  for (const damage of ["flip", "truncate"]) {
    const bad = damage === "flip" ? bytes.slice() : bytes.slice(0, bytes.length - 5);
    if (damage === "flip") bad[bad.length - 3] ^= 0xff;
    await Deno.writeFile(path, bad);
    const r = await loadCheckpoint(path);
    assert.equal(r!.ckpt.meta.globalStep, 1);
    assert.match(r!.warning!, damage === "flip" ? /checksum mismatch/ : /truncated/);
    assert.match(r!.warning!, /previous good checkpoint/);
  }
  // both bad: a clear error, not a crash
  await Deno.writeFile(`${dir}/c.ckpt.prev`, new Uint8Array(10));
  await assert.rejects(() => loadCheckpoint(path), CheckpointError);
  assert.equal(await loadCheckpoint(`${dir}/none.ckpt`), null);
});

Deno.test("restoreState() names the parameter whose shape does not match", () => {
  const small = {
    imageSize: 8,
    patchSize: 2,
    channels: 1,
    dim: 8,
    depth: 1,
    heads: 2,
    mlpRatio: 2,
    decoderDim: 8,
    decoderDepth: 1,
    decoderHeads: 2,
  };
  const a = new MaskedAutoencoder({ shape: small, normPixLoss: true, seed: 0 });
  const b = new MaskedAutoencoder({ shape: { ...small, dim: 16 }, normPixLoss: true, seed: 0 });
  const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of a.store.params.values()) {
    arrays.set(`param/${p.name}`, {
      shape: p.variable.shape,
      data: p.variable.dataSync() as Float32Array,
    });
  }
  assert.throws(
    () => restoreState({ meta: {}, arrays }, b, null, null, "x.ckpt"),
    /x\.ckpt: parameter "encoder\.patch_embed\.weight" has shape \[4,8\] in the checkpoint but \[4,16\]/,
  );
  // the same shape restores exactly
  const c = new MaskedAutoencoder({ shape: small, normPixLoss: true, seed: 5 });
  restoreState({ meta: {}, arrays }, c, null, null, "x.ckpt");
  const w = (m: MaskedAutoencoder) =>
    m.store.params.get("encoder.blocks.0.attn.qkv.weight")!.variable.dataSync();
  assert.deepEqual(w(c), w(a));
  tf.dispose();
  a.dispose();
  b.dispose();
  c.dispose();
});

Deno.test("readMetrics() ignores a torn last line; truncateMetrics() drops steps after a checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  await appendMetrics(path, [{ type: "step", step: 1, loss: 1 }, {
    type: "step",
    step: 2,
    loss: 0.9,
  }]);
  await Deno.writeTextFile(path, '{"type":"step","step":3,"lo', { append: true });
  assert.deepEqual((await readMetrics(path)).map((r) => r.step), [1, 2]);
  await truncateMetrics(path, 1);
  assert.deepEqual((await readMetrics(path)).map((r) => r.step), [1]);
  assert.ok((await Deno.readTextFile(path)).endsWith("\n"));
});
