import assert from "node:assert/strict";
import { BUDGETS, planTodo, reproRuns, runArgs, STUDY_KNOBS } from "../lib/repro/plan.ts";
import { isProbed, type ReproRecord } from "../lib/repro/records.ts";
import { oneWayAnova, welchDifference } from "../lib/repro/stats.ts";
import {
  knobAnova,
  knobOfRecord,
  renderStudyTables,
  studyResults,
  writeStudyMaps,
} from "../lib/repro/study.ts";
import { tQuantile } from "../lib/repro/stats.ts";
import { flattenConfig, resolveConfig } from "../lib/config/mod.ts";

/** A fabricated record (a test fixture, not a result). */
function rec(id: string, seed: number, over: Partial<ReproRecord> = {}): ReproRecord {
  return {
    id,
    seed,
    label: id,
    method: "mae",
    strategy: id.includes("amt") ? "amt" : "none",
    maskRatio: 0.75,
    throwRatio: 0,
    linear: 80,
    knn: 75,
    finetune: null,
    attnOnObject: 0.5,
    objectArea: 0.45,
    attnCurve: [],
    pretrainSeconds: 1500,
    saliencySeconds: 0,
    flops: 1e15,
    finalLoss: 0.5,
    masked: 36,
    thrown: 0,
    visible: 13,
    testImages: 10000,
    budget: "medium",
    dataset: "fashion-mnist",
    gitCommit: null,
    date: "2026-12-01T10:00:00.000Z",
    backend: "wasm",
    threads: 2,
    precision: "bf16",
    command: "deno task repro",
    ...over,
  };
}

/** Curve points at epochs 2..8 with a fixed share and area. */
function curve(share: number, area = 0.5, rollout?: number) {
  return [2, 4, 6, 8].map((epoch) => ({
    epoch,
    attnOnObject: share,
    objectArea: area,
    ...(rollout === undefined ? {} : { attnOnObjectRollout: rollout }),
  }));
}

Deno.test("the study's runs train only when named, and carry the knob's settings and the monitor", () => {
  const b = BUDGETS.medium;
  const runs = reproRuns(b);
  const knobIds = STUDY_KNOBS.map((k) => k.id);
  assert.ok(knobIds.every((id) => runs.some((r) => r.id === id)));
  // the default plan is the paper's: no study run in it
  assert.ok(planTodo(runs).every((t) => !knobIds.includes(t.run.id)));
  const todo = planTodo(runs, { only: ["knob-normalize-unit"], seeds: [1] });
  assert.deepEqual(todo.map((t) => `${t.run.id}:${t.seed}`), ["knob-normalize-unit:1"]);
  const o = { data: { name: "fashion-mnist", root: "" }, backend: "wasm", threads: 2 };
  const args = runArgs(todo[0].run, 1, b, o, "/tmp/r");
  assert.equal(args.at(-3), "--data.normalize=unit"); // after the budget's own (they win)
  assert.ok(args.includes("--eval.attnEvery=2") && args.includes("--eval.attnImages=1024"));
  assert.ok(args.includes("--eval.attnSources=cls-last,rollout"));
  assert.equal(todo[0].run.probe, false);
  // part 3: MAE+AMT with the rollout map, probed, opt-in, the budget's AMT schedule
  const roll = runs.find((r) => r.id === "mae-amt-rollout-45-40")!;
  assert.ok(roll.optIn && isProbed(roll, b));
  assert.ok(!planTodo(runs).some((t) => t.run.id === roll.id));
  const { config: c } = resolveConfig({ argv: runArgs(roll, 0, b, o, "/tmp/r") });
  assert.deepEqual(
    [c.amt.strategy, c.amt.saliency, c.amt.maskRatio, c.amt.throwRatio, c.amt.warmup],
    ["amt", "rollout", 0.45, 0.4, 2],
  );
  // the budgets without a monitor have no study
  assert.ok(!reproRuns(BUDGETS.small).some((r) => r.knob !== undefined));
  assert.equal(knobOfRecord("mae-random-75"), "default");
  assert.equal(knobOfRecord("knob-registers-4"), "registers=4");
  assert.equal(knobOfRecord("mae-amt-45-40"), "strategy=amt");
  assert.equal(knobOfRecord("mae-random-throw-45-40"), null);
  assert.equal(knobOfRecord("random-init"), "untrained");
});

Deno.test("each knob run's config differs from MAE random's in its knob's keys only", () => {
  const b = BUDGETS.medium;
  const o = { data: { name: "fashion-mnist", root: "" }, backend: "wasm", threads: 2 };
  const runs = reproRuns(b);
  const flat = (id: string) => {
    const run = runs.find((r) => r.id === id)!;
    return flattenConfig(resolveConfig({ argv: runArgs(run, 0, b, o, "/tmp/r") }).config);
  };
  const base = flat("mae-random-75");
  const expected: Record<string, Record<string, unknown>> = {
    "knob-normalize-unit": { "data.normalize": "unit" },
    "knob-decay-all": { "train.noDecay": "none" },
    "knob-model-micro": { "model.preset": "vit-micro-28" },
    "knob-images-4096": { "data.limit": 4096 },
    "knob-registers-4": { "model.registers": 4 },
    "knob-target-raw": { "mim.normPixLoss": false },
  };
  for (const k of STUDY_KNOBS) {
    const mine = flat(k.id);
    const changed = Object.keys(mine).filter((key) =>
      key !== "run.name" && JSON.stringify(mine[key]) !== JSON.stringify(base[key])
    );
    assert.deepEqual(
      Object.fromEntries(changed.map((key) => [key, mine[key]])),
      expected[k.id],
      k.id,
    );
  }
});

Deno.test("studyResults() makes one row per map and epoch, names the register map, and adds the test row", () => {
  const b = BUDGETS.medium;
  const s = studyResults([
    rec("mae-random-75", 0, { attnCurve: curve(0.55, 0.5, 0.6) }),
    rec("knob-registers-4", 0, { attnCurve: curve(0.4), attnOnObject: 0.42, objectArea: 0.46 }),
    rec("mae-amt-45-40", 0, { saliencySeconds: 400, linear: 81 }),
    rec("mae-amt-rollout-45-40", 0, { linear: 82 }),
    rec("mae-random-throw-45-40", 0),
  ], b);
  const key = (v: { knob: string; saliency: string; epoch: number; images: string }) =>
    `${v.knob}/${v.saliency}/${v.epoch}/${v.images}`;
  assert.deepEqual(s.variants.filter((v) => v.knob === "default").map(key), [
    "default/cls-last/2/train:1024",
    "default/rollout/2/train:1024",
    "default/cls-last/4/train:1024",
    "default/rollout/4/train:1024",
    "default/cls-last/6/train:1024",
    "default/rollout/6/train:1024",
    "default/cls-last/8/train:1024",
    "default/rollout/8/train:1024",
    "default/cls-last/8/test",
  ]);
  const reg = s.variants.filter((v) => v.knob === "registers=4");
  assert.ok(reg.every((v) => v.saliency === "registers"));
  assert.equal(reg.at(-1)!.attnOnObject, 0.42);
  assert.deepEqual(s.pretrain.map((p) => [p.strategy, p.saliency, p.linear]), [
    ["none", null, 80],
    ["amt", "cls-last", 81],
    ["amt", "rollout", 82],
  ]);
});

Deno.test("renderStudyTables() shows the excess over the area with sd, interval and seeds above", () => {
  const b = BUDGETS.medium;
  const records = [
    // default: excess 5, 7, 6 points -> 6.0 ± 1.0; interval 6 ± t(.975, 2) * 1 / sqrt 3
    rec("mae-random-75", 0, { attnCurve: curve(0.55) }),
    rec("mae-random-75", 1, { attnCurve: curve(0.57) }),
    rec("mae-random-75", 2, { attnCurve: curve(0.56) }),
    // unit pixels: excess -10, -8, -9 -> below the area in every seed
    rec("knob-normalize-unit", 0, { attnCurve: curve(0.40) }),
    rec("knob-normalize-unit", 1, { attnCurve: curve(0.42) }),
    rec("knob-normalize-unit", 2, { attnCurve: curve(0.41) }),
    // AMT against random, paired: +1.0, +1.5, +0.5 -> 1.00 ± 0.5, t(.975, 2) 0.5 / sqrt 3 = 1.24
    rec("mae-amt-45-40", 0, { linear: 81 }),
    rec("mae-amt-45-40", 1, { linear: 81.5 }),
    rec("mae-amt-45-40", 2, { linear: 80.5 }),
  ];
  const md = renderStudyTables(studyResults(records, b), b);
  const half = tQuantile(0.975, 2) / Math.sqrt(3);
  assert.match(
    md,
    /\| default \| 6\.0 ± 1\.0 \(s0 5\.0, s1 7\.0, s2 6\.0\) \| 6\.0 ± 1\.0 \(s0 5\.0, s1 7\.0, s2 6\.0\) \|/,
  );
  assert.ok(md.includes(`[${(6 - half).toFixed(1)}, ${(6 + half).toFixed(1)}]`), md);
  assert.match(md, /\| default \|.*\| 3\/3 \|/);
  assert.match(
    md,
    /\| normalize=unit \| -9\.0 ± 1\.0 \(s0 -10\.0, s1 -8\.0, s2 -9\.0\) .*\| 0\/3 \|/,
  );
  // against the default: -15 points, Welch interval below 0
  assert.match(
    md,
    /\| normalize=unit \| raw pixels.*\| -15\.0 \| \[-1\d\.\d, -1\d\.\d\] \| lower \|/,
  );
  assert.match(md, /\| none \| - \| 0, 1, 2 \| 80\.00 ± 0\.00 \|/);
  assert.match(
    md,
    /\| amt \| cls-last \| 0, 1, 2 \| 81\.00 ± 0\.50 \| 75\.00 ± 0\.00 \| \+1\.00 \[-0\.24, \+2\.24\] \(n=3\): no difference detected \|/,
  );
});

Deno.test("welchDifference() matches a hand-computed case and reads its interval", () => {
  // a = 1, 2, 3 (var 1); b = 2, 4, 6 (var 4): se² = 1/3 + 4/3, df = (5/3)² / ((1/3)²/2 + (4/3)²/2)
  const d = welchDifference([1, 2, 3], [2, 4, 6]);
  assert.equal(d.mean, -2);
  const df = (5 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (4 / 3) ** 2 / 2);
  assert.ok(Math.abs(d.df - df) < 1e-12, `df ${d.df}`);
  const half = tQuantile(0.975, df) * Math.sqrt(5 / 3);
  assert.ok(Math.abs(d.lo - (-2 - half)) < 1e-9 && Math.abs(d.hi - (-2 + half)) < 1e-9);
  assert.equal(d.reading, "no difference detected");
  // equal variances and sizes: df = 2n - 2, the pooled interval
  const e = welchDifference([10, 11, 12, 13], [1, 2, 3, 4]);
  assert.ok(Math.abs(e.df - 6) < 1e-12);
  assert.equal(e.reading, "higher");
  assert.equal(welchDifference([1], [2, 3]).reading, "n=1, no interval");
});

Deno.test("writeStudyMaps() draws a row per knob over the same images", async () => {
  const dir = await Deno.makeTempDir();
  const img = { data: new Uint8Array(28 * 28).fill(120), height: 28, width: 28, channels: 1 };
  const map = Array.from({ length: 49 }, (_, i) => i / 48);
  const entries = [{ epoch: 8, source: "cls-last", maps: [map, map] }];
  const drawn = await writeStudyMaps(`${dir}/maps.png`, [
    { knob: "default", seed: 1, grid: 7, entries },
    { knob: "normalize=unit", seed: 0, grid: 7, entries },
  ], [img, img]);
  assert.ok(drawn);
  assert.ok((await Deno.stat(`${dir}/maps.png`)).size > 1000);
  assert.equal(await writeStudyMaps(`${dir}/none.png`, [], [img]), false);
});

Deno.test("knobAnova() compares the MAE random rows only, each map and image set apart", () => {
  const b = BUDGETS.medium;
  const records = [
    // default: excess 5, 7, 6 points; unit pixels -10, -8, -9; registers 1, 3 (its own map)
    rec("mae-random-75", 2, { attnCurve: curve(0.55, 0.5, 0.52) }),
    rec("mae-random-75", 3, { attnCurve: curve(0.57, 0.5, 0.50) }),
    rec("mae-random-75", 4, { attnCurve: curve(0.56, 0.5, 0.51) }),
    rec("knob-normalize-unit", 0, { attnCurve: curve(0.40, 0.5, 0.53) }),
    rec("knob-normalize-unit", 1, { attnCurve: curve(0.42, 0.5, 0.49) }),
    rec("knob-normalize-unit", 2, { attnCurve: curve(0.41, 0.5, 0.50) }),
    rec("knob-registers-4", 0, { attnCurve: curve(0.51) }),
    rec("knob-registers-4", 1, { attnCurve: curve(0.53) }),
    // not a knob: masking by the map, far off, must not enter
    rec("mae-amt-45-40", 0, { attnCurve: curve(0.95, 0.5, 0.9) }),
    rec("mae-amt-45-40", 1, { attnCurve: curve(0.99, 0.5, 0.9) }),
  ];
  const s = studyResults(records, b);
  const a = knobAnova(s, b, "cls-last", "train")!;
  const want = oneWayAnova([[0.05, 0.07, 0.06], [-0.10, -0.08, -0.09], [0.01, 0.03]]);
  assert.deepEqual([a.groups, a.n, a.df1, a.df2], [3, 8, 2, 5]);
  assert.ok(Math.abs(a.f - want.f) < 1e-9 && a.p < 1e-3 && a.betweenShare > 0.9, `${a.f}`);
  // the rollout rows: default and unit pixels (registers has none), no difference
  const r = knobAnova(s, b, "rollout", "train")!;
  assert.deepEqual([r.groups, r.n], [2, 6]);
  assert.ok(r.p > 0.5 && r.betweenShare === 0, `${r.p}`);
  // every test-set value is the fixture's 0.5 on 0.45: the same in all rows
  assert.equal(knobAnova(s, b, "cls-last", "test")!.betweenShare, 0);
  assert.equal(knobAnova(s, b, "rollout", "test"), null);
  const md = renderStudyTables(s, b);
  assert.match(
    md,
    new RegExp(
      `\\| cls-last \\| train:1024 \\| 3 \\(8\\) \\| ${
        a.f.toFixed(2)
      } \\(2, 5\\) \\| 0\\.000 \\| \\d+ % \\| the knobs differ \\|`,
    ),
  );
  assert.match(
    md,
    /\| rollout \| train:1024 \| 2 \(6\) \|.*\| 0 % \| no difference between knobs detected \|/,
  );
});
