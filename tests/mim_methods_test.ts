/** The method registry (lib/mim/methods.ts) drives model building and random masking. */
import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { AMT_STRATEGIES, STRATEGIES } from "../lib/amt/sampler.ts";
import { AmtPlanner } from "../lib/amt/planner.ts";
import { type Config, resolveConfig } from "../lib/config/mod.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import { FULL_BOX } from "../lib/data/types.ts";
import { methodCounting, methodMaskUnit } from "../lib/mim/counts.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { METHOD_NAMES, MIM_METHODS, mimMethod } from "../lib/mim/methods.ts";
import type { MaskPlan, MaskPlanner } from "../lib/mim/plan.ts";
import { MaskFeat } from "../lib/mim/maskfeat.ts";
import { SimMim } from "../lib/mim/simmim.ts";
import { buildPlanner, methodRandomPlanner, PLANNERS } from "../lib/pretrain/factory.ts";
import { buildModel } from "../lib/run/model.ts";
import { makeRng } from "../lib/util/rng.ts";
import { resolveShape } from "../lib/vit/vit.ts";

/** A tiny config of `method` on `side` px images with 4 px patches. */
function tinyConfig(method: string, side: number, extra: string[] = []): Config {
  return resolveConfig({
    argv: [
      `--mim.method=${method}`,
      `--mim.maskRatio=${mimMethod(method).conventions.maskRatio}`,
      "--data.name=synthetic",
      `--data.imageSize=${side}`,
      "--model.patchSize=4",
      "--model.dim=16",
      "--model.depth=1",
      "--model.heads=2",
      "--model.decoderDim=16",
      "--model.decoderDepth=1",
      "--model.decoderHeads=2",
      "--run.vizImages=0",
      ...extra,
    ],
  }).config;
}

/** `config` with `section.key` set to a value its type may not allow (to test the checks). */
function withValue(config: Config, section: "mim" | "amt", key: string, value: unknown): Config {
  return { ...config, [section]: { ...config[section], [key]: value } } as unknown as Config;
}

function planOf(planner: MaskPlanner, L: number, side: number): MaskPlan {
  return planner.plan(2, L, {
    epoch: 0,
    step: 0,
    rng: makeRng(3, "methods", L),
    indices: Int32Array.of(0, 1),
    boxes: [FULL_BOX, FULL_BOX],
    imageSize: side,
    patchSize: 4,
  });
}

Deno.test("METHOD_NAMES lists the registry: mae, simmim, maskfeat, each entry named by its key", () => {
  assert.deepEqual([...METHOD_NAMES], ["mae", "simmim", "maskfeat"]);
  assert.deepEqual(Object.keys(MIM_METHODS), [...METHOD_NAMES]);
  for (const name of METHOD_NAMES) assert.equal(mimMethod(name).name, name);
  assert.throws(
    () => mimMethod("byol"),
    /mim.method "byol" is not available; use "mae", "simmim" or "maskfeat"/,
  );
  // inherited keys are not methods
  assert.throws(() => mimMethod("toString"), /is not available/);
  assert.throws(() => methodCounting("constructor"), /no counting rule/);
});

Deno.test("buildModel() builds each method from its registry entry", () => {
  tf.engine().startScope();
  try {
    for (
      const [method, cls] of [
        ["mae", MaskedAutoencoder],
        ["simmim", SimMim],
        ["maskfeat", MaskFeat],
      ] as const
    ) {
      const config = tinyConfig(method, 28);
      const model = buildModel(config, 1, 28);
      const direct = mimMethod(method).build(resolveShape(config.model, 1, 28), {
        seed: config.run.seed,
        normPixLoss: config.mim.normPixLoss,
      });
      try {
        assert.ok(model instanceof cls, method);
        assert.equal(model.method, method);
        assert.equal(model.encoder.numPatches, 49);
        // same entry, same seed: the same initial weights
        const a = model.encoder.patchEmbed.w.dataSync();
        const b = direct.encoder.patchEmbed.w.dataSync();
        assert.deepEqual(Array.from(a.slice(0, 16)), Array.from(b.slice(0, 16)), method);
      } finally {
        model.dispose();
        direct.dispose();
      }
    }
    // mim.normPixLoss reaches MAE; SimMIM regresses raw pixels whatever it says
    for (const norm of [true, false]) {
      const mae = buildModel(tinyConfig("mae", 28, [`--mim.normPixLoss=${norm}`]), 1, 28);
      const simmim = buildModel(tinyConfig("simmim", 28, [`--mim.normPixLoss=${norm}`]), 1, 28);
      assert.equal(mae.normPixLoss, norm);
      assert.equal(simmim.normPixLoss, false);
      mae.dispose();
      simmim.dispose();
    }
    // the HOG keys reach MaskFeat: 1 px cells, 6 bins -> 4 * 4 cells * 6 bins per 4 px patch
    const mf = buildModel(
      tinyConfig("maskfeat", 28, ["--mim.hogCell=1", "--mim.hogBins=6", "--mim.hogNorm=cell"]),
      1,
      28,
    );
    assert.ok(mf.features);
    assert.deepEqual([mf.features.dim, mf.features.bins, mf.features.cellsPerSide], [96, 6, 4]);
    assert.equal((mf as MaskFeat).features.options.norm, "cell");
    assert.equal(mf.normPixLoss, false);
    mf.dispose();
    const bad = tinyConfig("mae", 28);
    assert.throws(
      () => buildModel(withValue(bad, "mim", "method", "byol"), 1, 28),
      /mim.method "byol" is not available; use "mae", "simmim" or "maskfeat"/,
    );
  } finally {
    tf.engine().endScope();
  }
});

Deno.test("the registry's random planner: MAE 0.75 masks 36 of 49 patches, SimMIM 0.6 30, MaskFeat 0.4 20", () => {
  for (const [method, masked] of [["mae", 36], ["simmim", 30], ["maskfeat", 20]] as const) {
    const config = tinyConfig(method, 28);
    const entry = mimMethod(method);
    const viaRegistry = entry.randomPlanner({
      maskRatio: entry.conventions.maskRatio,
      counting: entry.counting,
      maskUnit: 4,
      patchSize: 4,
    });
    const viaFactory = methodRandomPlanner(config, 4, 28);
    for (const planner of [viaRegistry, viaFactory]) {
      const plan = planOf(planner, 49, 28);
      assert.equal(plan.numMasked, masked, `${method} ${planner.name}`);
      assert.equal(plan.numThrown, 0);
      assert.equal(plan.numVisible, 49 - masked);
    }
    // the same planner, so the same plan from the same draws
    assert.deepEqual(planOf(viaRegistry, 49, 28), planOf(viaFactory, 49, 28));
    assert.equal(viaFactory.name, method === "mae" ? "random" : "random-units");
  }
});

Deno.test("the registry's mask unit and counting: SimMIM and MaskFeat mask 2x2-patch units where they tile, ceil; MAE patches, floor", () => {
  assert.equal(methodCounting("mae"), MIM_METHODS.mae.counting);
  assert.equal(methodCounting("simmim"), MIM_METHODS.simmim.counting);
  assert.equal(methodCounting("maskfeat"), MIM_METHODS.maskfeat.counting);
  assert.deepEqual(
    [MIM_METHODS.mae.counting, MIM_METHODS.simmim.counting, MIM_METHODS.maskfeat.counting],
    ["floor", "ceil", "ceil"],
  );
  assert.equal(methodMaskUnit("mae", 0, 4, 32), 4);
  assert.equal(methodMaskUnit("simmim", 0, 4, 32), 8);
  assert.equal(methodMaskUnit("maskfeat", 0, 4, 32), 8);
  assert.equal(methodMaskUnit("maskfeat", 0, 4, 28), 4);
  // MaskFeat on 32 px: 16 units of 2x2 patches, ceil(16 * 0.4) = 7 units = 28 patches
  const mf = planOf(methodRandomPlanner(tinyConfig("maskfeat", 32), 4, 32), 64, 32);
  assert.deepEqual([mf.numMasked, mf.numThrown, mf.numVisible], [28, 0, 36]);
  // 32 px, 4 px patches: 64 patches, 16 units of 2x2; ceil(16 * 0.6) = 10 units = 40 patches
  const plan = planOf(methodRandomPlanner(tinyConfig("simmim", 32), 4, 32), 64, 32);
  assert.equal(plan.numMasked, 40);
  for (let b = 0; b < 2; b++) {
    const masked = new Set(plan.masked.subarray(b * 40, (b + 1) * 40));
    for (const i of masked) {
      // every masked patch's 2x2 unit is masked whole
      const top = Math.floor(i / 8 / 2) * 2, left = Math.floor((i % 8) / 2) * 2;
      for (const j of [0, 1, 8, 9]) assert.ok(masked.has(top * 8 + left + j), `unit of ${i}`);
    }
  }
  const mae = planOf(methodRandomPlanner(tinyConfig("mae", 32), 4, 32), 64, 32);
  assert.equal(mae.numMasked, 48); // floor(64 * 0.75)
});

Deno.test("the registry's conventions are what configs/<method>.yaml sets", () => {
  for (const method of METHOD_NAMES) {
    const { config } = resolveConfig({ argv: ["--config", `configs/${method}.yaml`] });
    const c = MIM_METHODS[method].conventions;
    assert.equal(config.mim.method, method);
    assert.equal(config.mim.maskRatio, c.maskRatio, method);
    assert.equal(config.mim.normPixLoss, c.normPixLoss, method);
  }
});

Deno.test("AMT_STRATEGIES is none + the sampler's STRATEGIES, and PLANNERS has one factory each", () => {
  assert.deepEqual([...AMT_STRATEGIES], ["none", ...STRATEGIES]);
  assert.deepEqual(Object.keys(PLANNERS), [...AMT_STRATEGIES]);
  tf.engine().startScope();
  const config = tinyConfig("simmim", 28, ["--amt.warmup=1", "--amt.interval=1"]);
  const model = buildModel(config, 1, 28);
  try {
    const dataset = makeSynthetic({ count: 4, size: 28, channels: 1 });
    for (const strategy of AMT_STRATEGIES) {
      const planner = buildPlanner(
        { ...config, amt: { ...config.amt, strategy, throwRatio: 0 } },
        { model, dataset, imageSize: 28, log: () => {} },
      );
      if (strategy === "none") {
        assert.equal(planner.name, "random-units");
      } else {
        assert.ok(planner instanceof AmtPlanner, strategy);
        assert.equal(planner.options.strategy, strategy);
        assert.equal(planner.name, `amt:${strategy}`);
      }
    }
    assert.throws(
      () =>
        buildPlanner(withValue(config, "amt", "strategy", "toString"), {
          model,
          dataset,
          imageSize: 28,
          log: () => {},
        }),
      /amt.strategy "toString" is not available; valid: none, amt/,
    );
  } finally {
    model.dispose();
    tf.engine().endScope();
  }
});
