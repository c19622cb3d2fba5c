import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import { FULL_BOX } from "../lib/data/types.ts";
import { methodCounting, methodMaskUnit, planCounts, resolveCounting } from "../lib/mim/counts.ts";
import { buildModel } from "../lib/run/model.ts";
import { buildPlanner, countingOf } from "../lib/pretrain/factory.ts";
import { makeRng } from "../lib/util/rng.ts";

type Counts = [masked: number, thrown: number, visible: number];

/**
 * Counts of every strategy, pinned by hand: L = side^2 / patch^2 patches.
 * MAE (floor): masked = floor(L r), masked + thrown = floor(L (r + t)).
 * SimMIM and MaskFeat (ceil, unit = patch at these sides): ceil(L r) masked, ceil(L t) thrown.
 */
const EXPECTED: Record<string, Record<number, { plain: Counts; throw: Counts }>> = {
  // plain: r = 0.75 (MAE) / 0.6 (SimMIM), t = 0; throw: 0.45 / 0.40 (MAE), 0.44 / 0.26 (SimMIM)
  mae: {
    16: { plain: [12, 0, 4], throw: [7, 6, 3] }, // 16*.45 = 7.2, 16*.85 = 13.6
    49: { plain: [36, 0, 13], throw: [22, 19, 8] }, // 36.75; 22.05, 41.65
    64: { plain: [48, 0, 16], throw: [28, 26, 10] }, // 28.8, 54.4
    196: { plain: [147, 0, 49], throw: [88, 78, 30] }, // MAE's and the AMT release's splits
  },
  simmim: {
    16: { plain: [10, 0, 6], throw: [8, 5, 3] }, // ceil 9.6; ceil 7.04, ceil 4.16
    49: { plain: [30, 0, 19], throw: [22, 13, 14] }, // ceil 29.4; ceil 21.56, ceil 12.74
    64: { plain: [39, 0, 25], throw: [29, 17, 18] }, // ceil 38.4; ceil 28.16, ceil 16.64
    196: { plain: [118, 0, 78], throw: [87, 51, 58] }, // ceil 117.6; ceil 86.24, ceil 50.96
  },
  // plain: r = 0.4 (MaskFeat's); throw: 0.30 / 0.26 (its AMT row)
  maskfeat: {
    16: { plain: [7, 0, 9], throw: [5, 5, 6] }, // ceil 6.4; ceil 4.8, ceil 4.16
    49: { plain: [20, 0, 29], throw: [15, 13, 21] }, // ceil 19.6; ceil 14.7, ceil 12.74
    64: { plain: [26, 0, 38], throw: [20, 17, 27] }, // ceil 25.6; ceil 19.2, ceil 16.64
    196: { plain: [79, 0, 117], throw: [59, 51, 86] }, // ceil 78.4; ceil 58.8, ceil 50.96
  },
};

const RATIOS = {
  mae: { plain: [0.75, 0], throw: [0.45, 0.40] },
  simmim: { plain: [0.6, 0], throw: [0.44, 0.26] },
  maskfeat: { plain: [0.4, 0], throw: [0.30, 0.26] },
} as const;

// image side and patch giving each L (patch 4, except 196 = 56 / 4)
const SIDES: Record<number, number> = { 16: 16, 49: 28, 64: 32, 196: 56 };

/** The counts the real planner of `strategy` produces for one batch (AMT phase). */
function plannedCounts(
  method: "mae" | "simmim" | "maskfeat",
  strategy: string,
  L: number,
  maskRatio: number,
  throwRatio: number,
  maskUnit = 4,
): Counts {
  const side = SIDES[L];
  const { config } = resolveConfig({
    argv: [
      `--mim.method=${method}`,
      `--mim.maskRatio=${strategy === "none" ? maskRatio : RATIOS[method].plain[0]}`,
      `--amt.strategy=${strategy}`,
      `--amt.maskRatio=${strategy === "none" ? 0.45 : maskRatio}`,
      `--amt.throwRatio=${strategy === "none" ? 0.4 : throwRatio}`,
      "--amt.warmup=0",
      "--amt.interval=1",
      "--data.name=synthetic",
      `--data.imageSize=${side}`,
      "--model.patchSize=4",
      "--model.dim=16",
      "--model.depth=1",
      "--model.heads=2",
      "--model.decoderDim=16",
      "--model.decoderDepth=1",
      "--model.decoderHeads=2",
      "--train.epochs=2",
      "--run.vizImages=0",
      `--mim.maskUnit=${maskUnit}`,
    ],
  });
  const dataset = makeSynthetic({ count: 4, size: side, channels: 1 });
  const model = buildModel(config, 1, side);
  try {
    const planner = buildPlanner(config, {
      model,
      dataset,
      imageSize: side,
      log: () => {},
    });
    const box = FULL_BOX;
    const plan = planner.plan(4, L, {
      epoch: 1,
      step: 0,
      rng: makeRng(1, "counts", L),
      indices: Int32Array.of(0, 1, 2, 3),
      boxes: [box, box, box, box],
      imageSize: side,
      patchSize: 4,
    });
    assert.equal(plan.masked.length, 4 * plan.numMasked);
    assert.equal(plan.thrown.length, 4 * plan.numThrown);
    return [plan.numMasked, plan.numThrown, plan.numVisible];
  } finally {
    model.dispose();
  }
}

for (const method of ["mae", "simmim", "maskfeat"] as const) {
  Deno.test(`every strategy of ${method} has the same patch counts at L = 16, 49, 64, 196`, () => {
    tf.engine().startScope();
    try {
      for (const L of [16, 49, 64, 196]) {
        const want = EXPECTED[method][L];
        const [r0, t0] = RATIOS[method].plain;
        const [r1, t1] = RATIOS[method].throw;
        for (const strategy of ["none", "random", "attn-mask"]) {
          assert.deepEqual(
            plannedCounts(method, strategy, L, r0, t0),
            want.plain,
            `${method} ${strategy} L=${L} at ${r0}/${t0}`,
          );
        }
        for (const strategy of ["random", "amt", "random-throw", "attn-throw-low"]) {
          assert.deepEqual(
            plannedCounts(method, strategy, L, r1, t1),
            want.throw,
            `${method} ${strategy} L=${L} at ${r1}/${t1}`,
          );
        }
        // the pinned values are the one rule's
        const c = planCounts(L, r1, t1, methodCounting(method));
        assert.deepEqual([c.numMasked, c.numThrown, c.numVisible], want.throw);
      }
      if (method === "simmim") {
        // SimMIM's own 2x2-patch unit on 32 px: 16 units, counted in units, 4 patches each
        // (plain ceil(9.6) = 10 units; 44/26: ceil(7.04) = 8, ceil(4.16) = 5, 3 visible)
        for (const strategy of ["none", "random", "attn-mask"]) {
          assert.deepEqual(plannedCounts(method, strategy, 64, 0.6, 0, 0), [40, 0, 24], strategy);
        }
        for (const strategy of ["random", "amt", "random-throw", "attn-throw-low"]) {
          assert.deepEqual(plannedCounts(method, strategy, 64, 0.44, 0.26, 0), [32, 20, 12]);
        }
      }
      if (method === "maskfeat") {
        // the same 2x2-patch unit on 32 px: plain ceil(6.4) = 7 units; 30/26: ceil(4.8) = 5,
        // ceil(4.16) = 5, 6 units visible
        for (const strategy of ["none", "random", "attn-mask"]) {
          assert.deepEqual(plannedCounts(method, strategy, 64, 0.4, 0, 0), [28, 0, 36], strategy);
        }
        for (const strategy of ["random", "amt", "random-throw", "attn-throw-low"]) {
          assert.deepEqual(plannedCounts(method, strategy, 64, 0.30, 0.26, 0), [20, 20, 24]);
        }
      }
    } finally {
      tf.engine().endScope();
    }
  });
}

Deno.test("amt.counting: auto resolves to the method's rule; an explicit value wins", () => {
  const argv = (extra: string[]) => ["--data.name=synthetic", ...extra];
  assert.equal(resolveConfig({ argv: argv([]) }).config.amt.counting, "floor");
  assert.equal(
    resolveConfig({ argv: argv(["--mim.method=simmim"]) }).config.amt.counting,
    "ceil",
  );
  const explicit = resolveConfig({ argv: argv(["--mim.method=simmim", "--amt.counting=floor"]) });
  assert.equal(explicit.config.amt.counting, "floor");
  assert.equal(countingOf(explicit.config), "floor");
  // the explicit rule reaches random masking too: SimMIM random 0.6 at L = 49 masks floor(29.4)
  assert.deepEqual(plannedCountsWith(["--amt.counting=floor"]), [29, 0, 20]);
  assert.equal(resolveCounting("auto", "mae"), "floor");
  assert.throws(() => resolveCounting("round", "mae"), /auto", "floor" or "ceil"/);
  assert.throws(() => methodCounting("byol"), /no counting rule/);
});

function plannedCountsWith(extra: string[]): Counts {
  const { config } = resolveConfig({
    argv: [
      "--data.name=synthetic",
      "--data.imageSize=28",
      "--mim.method=simmim",
      "--mim.maskRatio=0.6",
      "--model.dim=16",
      "--model.depth=1",
      "--model.heads=2",
      ...extra,
    ],
  });
  const model = buildModel(config, 1, 28);
  try {
    const planner = buildPlanner(config, {
      model,
      dataset: makeSynthetic({ count: 2, size: 28, channels: 1 }),
      imageSize: 28,
      log: () => {},
    });
    const box = FULL_BOX;
    const plan = planner.plan(2, 49, {
      epoch: 0,
      step: 0,
      rng: makeRng(0, "x"),
      indices: Int32Array.of(0, 1),
      boxes: [box, box],
      imageSize: 28,
      patchSize: 4,
    });
    return [plan.numMasked, plan.numThrown, plan.numVisible];
  } finally {
    model.dispose();
  }
}

Deno.test("methodMaskUnit() is the method's unit and asserts it against patch and image", () => {
  assert.equal(methodMaskUnit("mae", 0, 4, 28), 4);
  assert.equal(methodMaskUnit("simmim", 0, 4, 28), 4); // 8 px does not tile 28
  assert.equal(methodMaskUnit("simmim", 0, 4, 32), 8); // SimMIM's 2x2-patch unit
  assert.equal(methodMaskUnit("simmim", 0, 16, 224), 32);
  assert.equal(methodMaskUnit("simmim", 12, 4, 24), 12);
  assert.throws(() => methodMaskUnit("simmim", 6, 4, 24), /not a multiple of the patch size 4/);
  assert.throws(() => methodMaskUnit("simmim", 12, 4, 32), /does not tile the 32 px image/);
});
