/**
 * Weights in and out (lib/interop): the patch-embedding and pixel-head layouts by hand,
 * export -> import as the identity, a timm-named fixture made with plain PyTorch
 * (tools/make_timm_fixture.py) giving its features after import, the same weights in Hugging
 * Face ViTMAE names, refusals, and the imported run in the tasks that read runs.
 */
import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { loadBatch, openDataset } from "../lib/data/mod.ts";
import {
  counterpartOf,
  exportRun,
  featureSplit,
  importBase,
  importWeights,
  readWeightsConfig,
  takeConfigFlag,
  theirShape,
  toOurs,
  toTheirs,
  writeFeatures,
} from "../lib/interop/mod.ts";
import { pretrain, writeAllRunFigures } from "../lib/pretrain/mod.ts";
import { runKnn } from "../lib/eval/mod.ts";
import {
  decodeNpy,
  encodeSafetensors,
  loadCheckpoint,
  loadRun,
  readRunInfo,
  readSafetensors,
  runPaths,
  tensorFloat32,
  type TensorToWrite,
} from "../lib/run/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import { patchify } from "../lib/vit/patch.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";

const FIXTURE = new URL("./fixtures/timm_vit_tiny/", import.meta.url).pathname;
const quiet = () => {};

/** CLS features of `patches` [B, L, ppc] under the newest checkpoint of `runDir`. */
async function runFeatures(runDir: string, patches: Float32Array, batch: number) {
  const run = await loadRun(runDir);
  try {
    const { numPatches, patchDim } = run.model.encoder;
    const cls = tf.tidy(() =>
      run.model.encoder.forwardFeatures(tf.tensor3d(patches, [batch, numPatches, patchDim])).cls
    );
    const out = (await cls.data()) as Float32Array;
    cls.dispose();
    return out;
  } finally {
    run.model.dispose();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The fixture's input `[N, C, H, W]` as our patches `[N, L, p*p*C]`. */
async function fixturePatches(): Promise<{ patches: Float32Array; n: number }> {
  const x = decodeNpy(await Deno.readFile(`${FIXTURE}input.npy`));
  const [n, C, H, W] = x.shape;
  const nhwc = new Float32Array(x.data.length);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          nhwc[((b * H + y) * W + xx) * C + c] = x.data[((b * C + c) * H + y) * W + xx];
        }
      }
    }
  }
  return { patches: patchify(nhwc, n, H, C, 4), n };
}

/** Import the fixture (or a variant folder) into a new temp run folder. */
async function importFolder(folder: string, weights = "model.safetensors", argv: string[] = []) {
  const w = await readWeightsConfig(`${folder}/config.json`);
  const { config } = resolveConfig({ argv, base: importBase(w) });
  const out = await Deno.makeTempDir();
  const result = await importWeights({
    weights: `${folder}/${weights}`,
    weightsConfig: w,
    out,
    config,
    force: true,
    log: quiet,
  });
  return { out, result, config };
}

Deno.test("patch embedding: our [p*p*C, D] rows (row, col, channel) are timm's conv [D, C, p, p]", () => {
  const p = 2, C = 3, D = 2, n = p * p * C;
  // ours[k, d] = 100 d + k, k = (py*p + px)*C + c
  const ours = Float32Array.from({ length: n * D }, (_, i) => 100 * (i % D) + Math.floor(i / D));
  const t = toTheirs("patch", ours, [n, D], { patchSize: p, channels: C });
  assert.deepEqual(t.shape, [D, C, p, p]);
  const conv = (d: number, c: number, py: number, px: number) =>
    t.data[((d * C + c) * p + py) * p + px];
  assert.equal(conv(0, 0, 0, 0), 0); // k 0
  assert.equal(conv(0, 1, 0, 0), 1); // channel 1 of pixel (0, 0): k 1
  assert.equal(conv(0, 0, 0, 1), 3); // pixel (0, 1), channel 0: k 3
  assert.equal(conv(1, 2, 1, 0), 108); // pixel (1, 0), channel 2: k (2*1+0)*3+2 = 8, d 1
  assert.equal(conv(1, 2, 1, 1), 111);
  assert.deepEqual(toOurs("patch", t.data, [n, D], { patchSize: p, channels: C }), ours);

  // the same patch through both: a conv over an NCHW image equals patchify(NHWC) x W
  const S = 4, img = Float32Array.from({ length: S * S * C }, (_, i) => Math.sin(i)); // HWC
  const patches = patchify(img, 1, S, C, p); // [L, n]
  for (const [gy, gx] of [[0, 0], [1, 0], [1, 1]]) {
    for (let d = 0; d < D; d++) {
      let convSum = 0, linSum = 0;
      for (let c = 0; c < C; c++) {
        for (let py = 0; py < p; py++) {
          for (let px = 0; px < p; px++) {
            convSum += img[((gy * p + py) * S + gx * p + px) * C + c] * conv(d, c, py, px);
          }
        }
      }
      const row = patches.subarray((gy * (S / p) + gx) * n, (gy * (S / p) + gx + 1) * n);
      for (let k = 0; k < n; k++) linSum += row[k] * ours[k * D + d];
      assert.ok(Math.abs(convSum - linSum) < 1e-9, `patch ${gy},${gx} d ${d}`);
    }
  }
});

Deno.test("SimMIM's head: our [D, p*p*C] is a 1x1 conv [p*p*C, D, 1, 1] before PixelShuffle(p)", () => {
  const p = 2, C = 3, D = 2, n = p * p * C, g = { patchSize: p, channels: C };
  const ours = Float32Array.from({ length: D * n }, (_, i) => i); // ours[d, k] = d*n + k
  const t = toTheirs("pixel-shuffle", ours, [D, n], g);
  assert.deepEqual(t.shape, [n, D, 1, 1]);
  // PixelShuffle channel c*p*p + py*p + px is pixel (py, px) of channel c
  const o = (c: number, py: number, px: number) => c * p * p + py * p + px;
  const k = (c: number, py: number, px: number) => (py * p + px) * C + c;
  for (const [c, py, px] of [[0, 0, 0], [2, 0, 1], [1, 1, 0], [2, 1, 1]]) {
    for (let d = 0; d < D; d++) {
      assert.equal(t.data[o(c, py, px) * D + d], ours[d * n + k(c, py, px)]);
    }
  }
  assert.deepEqual(toOurs("pixel-shuffle", t.data, [D, n], g), ours);
  const bias = Float32Array.from({ length: n }, (_, i) => i);
  const tb = toTheirs("pixel-shuffle", bias, [n], g);
  assert.equal(tb.data[o(2, 1, 0)], k(2, 1, 0));
  assert.deepEqual(toOurs("pixel-shuffle", tb.data, [n], g), bias);
  assert.deepEqual(theirShape("linear", [16, 48], g), [48, 16]);
  assert.deepEqual(counterpartOf("encoder.blocks.3.attn.qkv.weight"), {
    name: "blocks.3.attn.qkv.weight",
    layout: "linear",
  });
  assert.deepEqual(counterpartOf("decoder.blocks.0.norm1.bias"), {
    name: "decoder_blocks.0.norm1.bias",
    layout: "same",
  });
  assert.equal(counterpartOf("head.weight", "simmim").name, "decoder.0.weight");
  assert.throws(() => counterpartOf("encoder.registers"), /no timm \/ MAE name/);
});

/** A 1-step pre-training run of `method` on 16 synthetic images. */
async function tinyRun(method: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const { config } = resolveConfig({
    argv: [
      ...TINY_MODEL_ARGS,
      `--mim.method=${method}`,
      "--data.limit=16",
      "--train.epochs=1",
      "--train.baseLr=1e-2",
      "--train.ckptEvery=0",
      `--run.dir=${dir}`,
    ],
  });
  await pretrain(config, { quiet: true, figures: false });
  return dir;
}

for (const method of ["mae", "simmim"]) {
  Deno.test(`export -> import is the identity (${method}): same weights, same features`, async () => {
    const run = await tinyRun(method);
    const exported = await exportRun(run, { log: quiet });
    assert.equal(exported.outDir, `${run}/export`);
    const file = await readSafetensors(exported.weights);
    const names = [...file.tensors.keys()];
    const encoderNames = names.filter((n) => !/^(decoder|mask_token)/.test(n));
    const timm = [
      "cls_token",
      "pos_embed",
      "patch_embed.proj.weight",
      "patch_embed.proj.bias",
      ...[0, 1].flatMap((i) =>
        ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"].flatMap((m) =>
          ["weight", "bias"].map((w) => `blocks.${i}.${m}.${w}`)
        )
      ),
      "norm.weight",
      "norm.bias",
    ];
    assert.deepEqual(encoderNames, timm, "the encoder in timm's names and order");
    assert.deepEqual(file.tensors.get("patch_embed.proj.weight")!.shape, [32, 3, 4, 4]);
    assert.deepEqual(file.tensors.get("blocks.0.attn.qkv.weight")!.shape, [96, 32]);
    assert.deepEqual(file.tensors.get("blocks.1.mlp.fc1.weight")!.shape, [128, 32]);
    const pos = tensorFloat32(file, "pos_embed");
    assert.deepEqual(file.tensors.get("pos_embed")!.shape, [1, 17, 32]);
    assert.ok(pos.subarray(0, 32).every((v) => v === 0), "CLS position is zero");
    if (method === "mae") {
      for (
        const n of ["decoder_embed.weight", "mask_token", "decoder_pos_embed", "decoder_pred.bias"]
      ) {
        assert.ok(file.tensors.has(n), n);
      }
      assert.deepEqual(file.tensors.get("decoder_pred.weight")!.shape, [48, 16]);
    } else {
      assert.deepEqual(file.tensors.get("decoder.0.weight")!.shape, [48, 32, 1, 1]);
      assert.deepEqual(file.tensors.get("mask_token")!.shape, [1, 1, 32]);
    }
    const cfg = JSON.parse(await Deno.readTextFile(exported.config));
    assert.equal(cfg.embed_dim, 32);
    assert.equal(cfg.num_classes, 0);
    assert.equal(cfg.global_pool, "token");
    assert.equal(cfg.mim_method, method);
    const info = await readRunInfo(run);
    assert.deepEqual(cfg.pretrained_cfg.mean, info.mean);
    assert.deepEqual(cfg.pretrained_cfg.input_size, [3, 16, 16]);

    const { out, result } = await importFolder(exported.outDir);
    assert.equal(result.method, method);
    assert.equal(result.posEmbed, "sincos");
    assert.equal(result.extras, "loaded");
    assert.deepEqual(result.ignored, []);
    // every parameter equal
    const a = (await loadCheckpoint(runPaths(run).checkpoint))!.ckpt.arrays;
    const b = (await loadCheckpoint(runPaths(out).checkpoint))!.ckpt.arrays;
    const params = [...a.keys()].filter((k) => k.startsWith("param/"));
    assert.deepEqual(params, [...b.keys()].filter((k) => k.startsWith("param/")));
    for (const k of params) assert.deepEqual(b.get(k)!.data, a.get(k)!.data, k);
    // and the same features from both folders
    const ds = await openDataset({
      name: "synthetic",
      root: "",
      split: "test",
      limit: 4,
      imageSize: 16,
    });
    const batch = await loadBatch(ds, [0, 1, 2, 3], {
      imageSize: 16,
      augment: false,
      rng: makeRng(0),
    });
    const patches = patchify(batch.images, 4, 16, 3, 4);
    const fa = await runFeatures(run, patches, 4), fb = await runFeatures(out, patches, 4);
    assert.ok(maxDiff(fa, fb) <= 1e-6, `max diff ${maxDiff(fa, fb)}`);
    const imported = await readRunInfo(out);
    assert.equal(imported.normalization, "run");
    assert.deepEqual(imported.mean, info.mean);
    assert.equal(imported.imported?.format, "timm");
  });
}

Deno.test("import of a plain-PyTorch ViT in timm names gives its features (to 1e-4)", async () => {
  const { out, result } = await importFolder(FIXTURE);
  assert.equal(result.format, "timm");
  assert.equal(result.posEmbed, "learned", "a random pos_embed is kept as loaded");
  assert.equal(result.extras, "initialised");
  const info = await readRunInfo(out);
  assert.deepEqual(info.mean, [0.5]);
  assert.deepEqual(info.std, [0.25]);
  assert.equal(info.shape?.posEmbed, "learned");
  const { patches, n } = await fixturePatches();
  const want = decodeNpy(await Deno.readFile(`${FIXTURE}features.npy`));
  const got = await runFeatures(out, patches, n);
  assert.ok(maxDiff(got, want.data) <= 1e-4, `max diff ${maxDiff(got, want.data)}`);
  // the learned table (with its CLS position) goes back out as it came in
  const ex = await exportRun(out, { out: `${out}/export`, log: quiet });
  const back = await readSafetensors(ex.weights);
  const src = await readSafetensors(`${FIXTURE}model.safetensors`);
  for (const name of src.tensors.keys()) {
    assert.deepEqual(tensorFloat32(back, name), tensorFloat32(src, name), name);
  }
});

/** A file in timm / MAE names renamed to Hugging Face ViTMAEForPreTraining's (qkv split). */
async function toHfNames(path: string): Promise<Map<string, TensorToWrite>> {
  const src = await readSafetensors(path);
  const hf = new Map<string, TensorToWrite>();
  const top: [RegExp, string][] = [
    [/^cls_token$/, "vit.embeddings.cls_token"],
    [/^pos_embed$/, "vit.embeddings.position_embeddings"],
    [/^patch_embed\.proj\./, "vit.embeddings.patch_embeddings.projection."],
    [/^norm\./, "vit.layernorm."],
    [/^decoder_embed\./, "decoder.decoder_embed."],
    [/^mask_token$/, "decoder.mask_token"],
    [/^decoder_pos_embed$/, "decoder.decoder_pos_embed"],
    [/^decoder_norm\./, "decoder.decoder_norm."],
    [/^decoder_pred\./, "decoder.decoder_pred."],
  ];
  const sub: [RegExp, string][] = [
    [/^norm1\./, "layernorm_before."],
    [/^norm2\./, "layernorm_after."],
    [/^attn\.proj\./, "attention.output.dense."],
    [/^mlp\.fc1\./, "intermediate.dense."],
    [/^mlp\.fc2\./, "output.dense."],
  ];
  for (const [name, e] of src.tensors) {
    const data = tensorFloat32(src, name);
    const rule = top.find(([re]) => re.test(name));
    if (rule) {
      hf.set(name.replace(rule[0], rule[1]), { shape: e.shape, data });
      continue;
    }
    const m = /^(blocks|decoder_blocks)\.(\d+)\.(.+)$/.exec(name)!;
    const layer = `${m[1] === "blocks" ? "vit.encoder.layer" : "decoder.decoder_layers"}.${m[2]}.`;
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(m[3]);
    if (qkv) {
      const third = data.length / 3;
      ["query", "key", "value"].forEach((part, j) =>
        hf.set(`${layer}attention.attention.${part}.${qkv[1]}`, {
          shape: [e.shape[0] / 3, ...e.shape.slice(1)],
          data: data.slice(j * third, (j + 1) * third),
        })
      );
      continue;
    }
    const r = sub.find(([re]) => re.test(m[3]))!;
    hf.set(layer + m[3].replace(r[0], r[1]), { shape: e.shape, data });
  }
  return hf;
}

/** A Hugging Face ViTMAE folder: weights, config.json and preprocessor_config.json. */
async function hfFolder(
  tensors: Map<string, TensorToWrite>,
  shape: Record<string, number>,
  norm: { mean: number[]; std: number[] },
): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors, { format: "pt" }));
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      architectures: ["ViTMAEForPreTraining"],
      model_type: "vit_mae",
      hidden_act: "gelu",
      layer_norm_eps: 1e-6,
      qkv_bias: true,
      ...shape,
    }),
  );
  await Deno.writeTextFile(
    `${dir}/preprocessor_config.json`,
    JSON.stringify({ image_mean: norm.mean, image_std: norm.std }),
  );
  return dir;
}

Deno.test("import reads Hugging Face ViTMAE names (query / key / value stacked) to the same features", async () => {
  const hf = await toHfNames(`${FIXTURE}model.safetensors`);
  assert.ok(hf.has("vit.encoder.layer.1.attention.attention.value.weight"));
  const dir = await hfFolder(hf, {
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 64,
    image_size: 8,
    patch_size: 4,
    num_channels: 1,
    decoder_hidden_size: 8,
    decoder_num_hidden_layers: 1,
    decoder_num_attention_heads: 2,
    decoder_intermediate_size: 32,
  }, { mean: [0.5], std: [0.25] });
  const { out, result } = await importFolder(dir);
  assert.equal(result.format, "hf-vitmae");
  assert.equal(result.extras, "initialised");
  assert.deepEqual((await readRunInfo(out)).std, [0.25]);
  const { patches, n } = await fixturePatches();
  const want = decodeNpy(await Deno.readFile(`${FIXTURE}features.npy`));
  const got = await runFeatures(out, patches, n);
  assert.ok(maxDiff(got, want.data) <= 1e-4, `max diff ${maxDiff(got, want.data)}`);
});

Deno.test("import reads an HF ViTMAEForPreTraining decoder: every MAE parameter as trained", async () => {
  const run = await tinyRun("mae");
  const exported = await exportRun(run, { log: quiet });
  const dir = await hfFolder(await toHfNames(exported.weights), {
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 128,
    image_size: 16,
    patch_size: 4,
    num_channels: 3,
    decoder_hidden_size: 16,
    decoder_num_hidden_layers: 1,
    decoder_num_attention_heads: 2,
    decoder_intermediate_size: 64,
  }, (await readRunInfo(run)) as unknown as { mean: number[]; std: number[] });
  const { out, result } = await importFolder(dir);
  assert.equal(result.format, "hf-vitmae");
  assert.equal(result.extras, "loaded");
  const a = (await loadCheckpoint(runPaths(run).checkpoint))!.ckpt.arrays;
  const b = (await loadCheckpoint(runPaths(out).checkpoint))!.ckpt.arrays;
  for (const [k, v] of a) if (k.startsWith("param/")) assert.deepEqual(b.get(k)!.data, v.data, k);
});

Deno.test("export, import and features leave no tensors behind", async () => {
  const before = tf.memory().numTensors;
  const { out } = await importFolder(FIXTURE);
  await exportRun(out, { log: quiet });
  await writeFeatures({ runDir: out, out: `${out}/f.npy`, limit: 2, log: quiet });
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("import refuses a shape mismatch (naming the tensor and both shapes) and unknown tensors", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(`${FIXTURE}model.safetensors`, `${dir}/model.safetensors`);
  const cfg = JSON.parse(await Deno.readTextFile(`${FIXTURE}config.json`));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...cfg, mlp_ratio: 2 }));
  await assert.rejects(
    () => importFolder(dir),
    /tensor "blocks\.0\.mlp\.fc1\.weight" has shape \[64,16\] in .*model\.safetensors, but .*config\.json \(.*mlp_ratio 2\) needs \[32,16\]/,
  );
  // a LayerScale tensor has no place in this ViT
  const src = await readSafetensors(`${FIXTURE}model.safetensors`);
  const more = new Map<string, TensorToWrite>(
    [...src.tensors.keys()].map((
      n,
    ) => [n, { shape: src.tensors.get(n)!.shape, data: tensorFloat32(src, n) }]),
  );
  more.set("blocks.0.ls1.gamma", { shape: [16], data: new Float32Array(16).fill(1) });
  await Deno.writeFile(`${dir}/more.safetensors`, encodeSafetensors(more));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
  await assert.rejects(
    () => importFolder(dir, "more.safetensors"),
    /"blocks\.0\.ls1\.gamma" have no place/,
  );
  // a config that names LayerScale is refused before reading any weights
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...cfg, init_values: 1e-5 }));
  await assert.rejects(
    () => readWeightsConfig(`${dir}/config.json`),
    /"init_values" is 0\.00001: LayerScale/,
  );
  // the data must have the weights' channels
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
  await assert.rejects(
    () => importFolder(dir, "model.safetensors", ["--data.name=synthetic"]),
    /data\.name synthetic has 3 channel\(s\), the weights take in_chans 1/,
  );
  await assert.rejects(
    () => readWeightsConfig(`${dir}/missing.json`),
    /cannot read the weights' config/,
  );
  assert.deepEqual(takeConfigFlag(["--weights=a", "--config", "c.json", "--out=o"]), {
    config: "c.json",
    argv: ["--weights=a", "--out=o"],
  });
  assert.equal(takeConfigFlag(["--config=x.json"]).config, "x.json");
});

Deno.test("an imported run: features (.npy, the run's mean/std), kNN, figures, continued pre-training", async () => {
  const { out } = await importFolder(FIXTURE, "model.safetensors", [
    "--train.batchSize=8",
    "--data.limit=16",
    "--train.epochs=1",
    "--run.backend=cpu",
  ]);
  const npy = `${out}/f.npy`;
  const w = await writeFeatures({ runDir: out, out: npy, split: "test", limit: 3, log: quiet });
  assert.equal(w.split, featureSplit("fashion-mnist", "test"));
  const got = decodeNpy(await Deno.readFile(npy));
  assert.deepEqual(got.shape, [3, 16]);
  // by hand: Fashion-MNIST test images at 8 px, normalised with the weights' mean 0.5 / std 0.25
  const ds = await openDataset({
    name: "fashion-mnist",
    root: "",
    split: "test",
    limit: 3,
    mean: [0.5],
    std: [0.25],
  });
  assert.deepEqual(ds.mean, [0.5]);
  const batch = await loadBatch(ds, [0, 1, 2], { imageSize: 8, augment: false, rng: makeRng(0) });
  const want = await runFeatures(out, patchify(batch.images, 3, 8, 1, 4), 3);
  assert.ok(maxDiff(got.data, want) <= 1e-6, `max diff ${maxDiff(got.data, want)}`);

  const knn = await runKnn({
    runDir: out,
    backend: "cpu",
    quiet: true,
    trainLimit: 32,
    testLimit: 8,
    k: 5,
    cache: false,
    figures: false,
  });
  assert.ok(knn.result.top1 >= 0 && knn.result.top1 <= 1);

  const figs = await writeAllRunFigures(out, { images: 2, log: quiet });
  assert.ok(figs.written.some((p) => p.endsWith("reconstruction.png")), figs.skipped.join("; "));

  // continue pre-training from the imported weights: the saved config, one step
  const { config } = resolveConfig({
    argv: ["--config", `${out}/config.json`, `--run.dir=${out}`],
  });
  const r = await pretrain(config, { quiet: true, figures: false });
  assert.equal(r.steps, 2);
  const info = await readRunInfo(out);
  assert.equal(info.normalization, "run", "run.json keeps the imported normalisation");
  assert.deepEqual(info.mean, [0.5]);
  assert.equal(info.shape?.posEmbed, "learned");
  assert.equal(info.imported?.format, "timm");
});
