import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  encoderParams,
  finetune,
  LAYER_DECAY,
  layerDecayScale,
  layerDecayScales,
  layerId,
} from "../lib/eval/mod.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { resolveShape, VisionTransformer } from "../lib/vit/vit.ts";

Deno.test("layerId() follows MAE's get_layer_id_for_vit and layerDecayScale() its formula", () => {
  const depth = 4;
  assert.equal(layerId("encoder.cls_token", depth), 0);
  assert.equal(layerId("encoder.patch_embed.weight", depth), 0);
  assert.equal(layerId("encoder.blocks.0.attn.qkv.weight", depth), 1);
  assert.equal(layerId("encoder.blocks.3.mlp.fc2.bias", depth), 4);
  assert.equal(layerId("encoder.norm.weight", depth), 5);
  assert.equal(layerId("head.weight", depth), 5);
  assert.equal(layerDecayScale(5, depth, 0.75), 1);
  assert.equal(layerDecayScale(0, depth, 0.75), 0.75 ** 5);
  assert.equal(layerDecayScale(2, depth, 0.65), 0.65 ** 3);
  assert.deepEqual(LAYER_DECAY, { mae: 0.75, simmim: 0.65, maskfeat: 0.65 });
});

Deno.test("encoderParams() takes the encoder's weights only, and layerDecayScales() scales them by layer", () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 3, heads: 2 },
    1,
    16,
  );
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const params = encoderParams(mae.encoder);
  assert.equal(params.length, 2 + 1 + 12 * 3 + 2);
  assert.ok(params.every((p) => p.name.startsWith("encoder.")));
  const scales = layerDecayScales(params, 3, 0.5);
  const byName = new Map(params.map((p, i) => [p.name, scales[i]]));
  assert.equal(byName.get("encoder.patch_embed.weight"), 0.5 ** 4);
  assert.equal(byName.get("encoder.cls_token"), 0.5 ** 4);
  assert.equal(byName.get("encoder.blocks.0.norm1.weight"), 0.5 ** 3);
  assert.equal(byName.get("encoder.blocks.2.attn.proj.weight"), 0.5);
  assert.equal(byName.get("encoder.norm.bias"), 1);
  mae.dispose();
});

Deno.test("finetune() on a tiny synthetic task lowers the loss and leaks no tensors", async () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 2, heads: 2 },
    3,
    16,
  );
  const store = new ParamStore(0);
  const encoder = new VisionTransformer(store, shape);
  const train = makeSynthetic({ count: 96, size: 16, split: "train" });
  const test = makeSynthetic({ count: 48, size: 16, split: "test" });
  const steps: number[] = [];
  const before = tf.memory().numTensors;
  const r = await finetune(encoder, train, test, {
    imageSize: 16,
    epochs: 3,
    batchSize: 32,
    baseLr: 0.05,
    warmupEpochs: 1,
    cropScale: [0.6, 1],
    layerDecay: 0.75,
    logEvery: 2,
    onStep: (s) => void steps.push(s.step),
  });
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  const losses = r.history.map((h) => h.loss);
  assert.ok(losses[2] < losses[1] && losses[1] < losses[0], `loss did not fall: ${losses}`);
  assert.ok(r.top1 >= 0 && r.top1 <= 1);
  assert.equal(r.steps, 9);
  assert.deepEqual(steps, [2, 3, 5, 6, 8, 9]); // every 2 steps and at each epoch end
  assert.equal(r.history.length, 3);
  assert.ok(r.history.every((h) => h.testTop1 !== null));
  assert.equal(r.confusion.length, 3);
  assert.equal(r.confusion.flat().reduce((a, b) => a + b, 0), 48);
  encoder.dispose();
  store.dispose();
});
