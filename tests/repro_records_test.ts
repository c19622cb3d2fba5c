import assert from "node:assert/strict";
import { resolveConfig, saveConfig } from "../lib/config/mod.ts";
import { saliencyUpdates } from "../lib/amt/schedule.ts";
import { resolveShape } from "../lib/vit/vit.ts";
import { BUDGETS, parseSeeds, planTodo, reproRuns, runArgs } from "../lib/repro/plan.ts";
import {
  checkRecord,
  isProbed,
  mergeRecords,
  readRecords,
  recordFromRunFolder,
  type ReproRecord,
  writeRecord,
} from "../lib/repro/records.ts";
import { rebuildResults } from "../lib/repro/rebuild.ts";
import { missingRuns, renderTables } from "../lib/repro/tables.ts";

/** A fabricated record (a test fixture, not a result). */
function fixture(id: string, seed: number, over: Partial<ReproRecord> = {}): ReproRecord {
  const mae = !id.startsWith("simmim");
  return {
    id,
    seed,
    label: id,
    method: mae ? "mae" : "simmim",
    strategy: id.includes("amt") ? "amt" : id === "random-init" ? "random-init" : "none",
    maskRatio: 0.75,
    throwRatio: 0,
    linear: 80,
    knn: 75,
    finetune: null,
    attnOnObject: 0.43,
    objectArea: 0.46,
    attnCurve: [],
    pretrainSeconds: 2000,
    saliencySeconds: 0,
    flops: 1e15,
    finalLoss: 0.5,
    masked: 36,
    thrown: 0,
    visible: 13,
    testImages: 10000,
    budget: "medium",
    dataset: "fashion-mnist",
    gitCommit: "0123456789abcdef",
    date: "2026-12-01T10:00:00.000Z",
    backend: "wasm",
    threads: 8,
    precision: "fp32",
    command: "deno task repro --budget=medium",
    ...over,
  };
}

Deno.test("planTodo: --only and --seeds select the (run, seed) pairs", () => {
  const runs = reproRuns(BUDGETS.medium);
  const all = planTodo(runs);
  // random-init + 3 MAE runs x 3 seeds; 9 single seeds (SimMIM's 4, MaskFeat's 2, 3 ablations)
  assert.equal(all.length, 3 * 4 + 4 + 2 + 3);
  const key = (t: { run: { id: string }; seed: number }) => `${t.run.id}:${t.seed}`;
  assert.deepEqual(planTodo(runs, { only: ["mae-random-75"] }).map(key), [
    "mae-random-75:0",
    "mae-random-75:1",
    "mae-random-75:2",
  ]);
  // plan order, whatever the order given; --seeds overrides (and deduplicates)
  assert.deepEqual(
    planTodo(runs, { only: ["simmim-amt-33-50", "mae-amt-45-40"], seeds: [4, 1, 4] }).map(key),
    ["mae-amt-45-40:4", "mae-amt-45-40:1", "simmim-amt-33-50:4", "simmim-amt-33-50:1"],
  );
  // every run of the paper's tables (the saliency study's train only when named)
  assert.deepEqual(
    planTodo(runs, { seeds: [7] }).length,
    runs.filter((r) => !r.optIn).length,
  );
  assert.throws(
    () => planTodo(runs, { only: ["mae-random-75", "nope"] }),
    /nope.*valid: random-init/,
  );
  assert.throws(() => planTodo(runs, { only: [""] }), RangeError);
  assert.throws(() => planTodo(runs, { seeds: [-1] }), RangeError);
  assert.deepEqual(parseSeeds("0, 1,2"), [0, 1, 2]);
  assert.equal(parseSeeds(undefined), undefined);
  assert.throws(() => parseSeeds("0,x"), RangeError);
  assert.throws(() => parseSeeds("1.5"), RangeError);
  // small: the MAE random / AMT pair with three seeds, the rest one
  const small = planTodo(reproRuns(BUDGETS.small)).map(key);
  for (const id of ["mae-random-75", "mae-amt-45-40"]) {
    assert.deepEqual(
      small.filter((k) => k.startsWith(id + ":")),
      [0, 1, 2].map((s) => `${id}:${s}`),
    );
  }
  assert.deepEqual(small.filter((k) => k.startsWith("mae-attn-75:")), ["mae-attn-75:0"]);
});

Deno.test("medium budget: the pre-training config of every run", () => {
  const b = BUDGETS.medium;
  const o = { data: { name: "fashion-mnist", root: "" }, backend: "cpu", threads: 1 };
  for (const run of reproRuns(b).filter((r) => r.knob === undefined)) {
    const args = runArgs(run, 1, b, o, "/tmp/unused");
    assert.ok(!args.some((a) => a.startsWith("--amt.counting")), args.join(" "));
    const { config: c } = resolveConfig({ argv: args });
    assert.equal(c.data.limit, 0);
    assert.equal(c.model.preset, "vit-tiny-28");
    assert.equal(c.train.epochs, 8);
    assert.equal(c.train.batchSize, 256);
    assert.equal(c.train.warmupEpochs, 1);
    assert.equal(c.train.weightDecay, 0.05);
    assert.deepEqual(c.data.cropRatio, [3 / 4, 4 / 3]);
    assert.equal(c.data.flip, true);
    assert.equal(c.run.seed, 1);
    if (c.mim.method === "mae") {
      // peak lr 1e-3 at batch 256
      assert.equal(c.train.baseLr * c.train.batchSize / c.train.lrBatch, 1e-3);
      assert.equal(c.train.minLr, 0);
      assert.deepEqual([c.train.beta1, c.train.beta2], [0.9, 0.95]);
      assert.deepEqual(c.data.cropScale, [0.35, 1]);
      assert.equal(c.mim.normPixLoss, true);
    } else if (c.mim.method === "simmim") {
      // SimMIM keeps its own recipe (configs/simmim.yaml)
      assert.deepEqual(c.data.cropScale, [0.67, 1]);
      assert.equal(c.mim.normPixLoss, false);
    } else {
      // MaskFeat keeps its own (configs/maskfeat.yaml): crop 0.5, betas 0.9 / 0.999, HOG defaults
      assert.equal(c.mim.method, "maskfeat");
      assert.deepEqual(c.data.cropScale, [0.5, 1]);
      assert.equal(c.train.beta2, 0.999);
      assert.deepEqual([c.mim.hogCell, c.mim.hogBins, c.amt.counting], [2, 9, "ceil"]);
      assert.deepEqual(
        run.strategy === "none"
          ? [c.mim.maskRatio, run.id]
          : [c.amt.maskRatio, c.amt.throwRatio, run.id],
        run.strategy === "none" ? [0.4, "maskfeat-random-40"] : [0.3, 0.26, "maskfeat-amt-30-26"],
      );
    }
    if (run.strategy !== "none") {
      assert.deepEqual(
        saliencyUpdates({ warmup: c.amt.warmup, interval: c.amt.interval, epochs: 8 }),
        [2, 4, 6],
      );
    }
  }
  assert.equal(b.probeEpochs, 100);
  assert.equal((b.probeBaseLr ?? 0.1) * (b.probeBatchSize ?? 256) / 256, 0.1);
  assert.equal(b.probeWarmup, 0);
  assert.equal(b.finetuneEpochs, 0);
  assert.equal(b.objectImages, 0);
});

Deno.test("rebuild from record files alone: results.json sorted, tables with stats and counts", async () => {
  const dir = await Deno.makeTempDir();
  const b = BUDGETS.medium;
  const recs = [
    fixture("mae-random-75", 0, { linear: 80.0 }),
    fixture("mae-random-75", 1, { linear: 81.0 }),
    fixture("mae-random-75", 2, { linear: 82.0 }),
    fixture("mae-amt-45-40", 2, { linear: 85.0, masked: 22, thrown: 19, visible: 8 }),
    fixture("mae-amt-45-40", 0, { linear: 81.0, masked: 22, thrown: 19, visible: 8 }),
    fixture("mae-amt-45-40", 1, { linear: 83.0, masked: 22, thrown: 19, visible: 8 }),
    fixture("mae-random-throw-45-40", 0, { linear: 79.0, masked: 22, thrown: 19, visible: 8 }),
    fixture("random-init", 0, {
      linear: 60,
      masked: null,
      thrown: null,
      visible: null,
      pretrainSeconds: 0,
      flops: 0,
    }),
    fixture("mae-random-75", 0, { budget: "small" }), // another budget: left out
  ];
  for (const r of recs.slice(0, -1)) await writeRecord(dir, r);
  await Deno.writeTextFile(`${dir}/records/other-budget.json`, JSON.stringify(recs.at(-1)));
  const logs: string[] = [];
  const out = await rebuildResults({
    budget: b,
    resultsDir: dir,
    figures: false,
    log: (s) => logs.push(s),
  });
  assert.equal(out.fromRecords, 8);
  assert.ok(logs.some((l) => /budget "small"/.test(l)), logs.join("\n"));
  const results = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
  assert.deepEqual(Object.keys(results), ["budget", "runs"]);
  assert.equal(results.budget, "medium");
  assert.deepEqual(
    results.runs.map((r: ReproRecord) => `${r.id}-s${r.seed}`),
    [
      "mae-amt-45-40-s0",
      "mae-amt-45-40-s1",
      "mae-amt-45-40-s2",
      "mae-random-75-s0",
      "mae-random-75-s1",
      "mae-random-75-s2",
      "mae-random-throw-45-40-s0",
      "random-init-s0",
    ],
  );
  assert.equal(results.runs[0].finetune, null);
  const md = await Deno.readTextFile(`${dir}/tables.md`);
  const row = (id: string, table: string) => {
    const section = md.slice(md.indexOf(table));
    const line = section.split("\n").find((l) => l.includes(`(\`${id}\`)`));
    assert.ok(line, `${id} row in ${table}`);
    return line!;
  };
  // mean ± sd and each seed; counts; paired t interval: diffs [1, 2, 3]
  const amt = row("mae-amt-45-40", "## Table 1");
  assert.match(amt, /\| 0, 1, 2 \| 83\.0 ± 2\.0 \(81\.0, 83\.0, 85\.0\) \|/);
  assert.match(amt, /\+2\.0 \[-0\.5, \+4\.5\] \(n=3\): no difference detected/);
  assert.match(amt, /\| 22\/19\/8 \|/);
  assert.match(amt, /\| 1\.00 \/ 1\.00 \|/); // cost vs MAE random
  const base = row("mae-random-75", "## Table 1");
  assert.match(base, /81\.0 ± 1\.0 \(80\.0, 81\.0, 82\.0\) \| baseline \|/);
  assert.match(base, /\| 36\/0\/13 \|/);
  // one common seed: the difference alone
  assert.match(row("mae-random-throw-45-40", "## Table 4"), /-1\.0 \(n=1, no interval\)/);
  const ri = row("random-init", "## Table 1");
  assert.match(ri, /-20\.0 \(n=1, no interval\)/);
  assert.match(ri, /- \(no pre-training\)/);
  // no fine-tune: "-"
  assert.match(base, /\| 75\.0 ± 0\.0 \(75\.0, 75\.0, 75\.0\) \| - \| baseline \|/);
  assert.match(md, /95 % paired-t confidence/);
  assert.match(md, /\*\*partial\*\*, missing 13: random-init-s1, random-init-s2, mae-attn-75-s0/);
  assert.match(md, /## Every record/);
  const csv = await Deno.readTextFile(`${dir}/tables.csv`);
  assert.equal(csv.trim().split("\n").length, 9);
  // a rebuild of the same files gives the same tables
  await rebuildResults({ budget: b, resultsDir: dir, figures: false });
  assert.equal(await Deno.readTextFile(`${dir}/tables.md`), md);
  assert.deepEqual(missingRuns(b, results.runs).length, 13);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("records: a malformed file is named; defaults fill optional fields", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ id: "x", seed: "zero" }));
  await assert.rejects(() => readRecords(dir), /bad\.json: not a repro record \(seed/);
  const r = checkRecord({ id: "x", seed: 1, linear: 50 }, "inline");
  assert.equal(r.finetune, null);
  assert.equal(r.masked, null);
  assert.equal(r.flops, 0);
  assert.deepEqual(await readRecords(`${dir}/missing`), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("merge: a record wins when it agrees with its run folder, the folder when not", () => {
  const rec = fixture("mae-random-75", 0, { command: "from the record" });
  const same = fixture("mae-random-75", 0, { command: "from the folder" });
  const logs: string[] = [];
  const a = mergeRecords([rec], [same], (s) => logs.push(s));
  assert.equal(a.runs[0].command, "from the record");
  assert.equal(a.fromFolders.length, 0);
  const other = fixture("mae-random-75", 0, { linear: 79.5 });
  const b = mergeRecords([rec], [other, fixture("mae-amt-45-40", 1)], (s) => logs.push(s));
  assert.equal(b.runs.find((r) => r.id === "mae-random-75")!.linear, 79.5);
  assert.deepEqual(b.disagreements, [{ id: "mae-random-75", seed: 0, keys: ["linear"] }]);
  assert.equal(b.fromFolders.length, 2);
  assert.equal(logs.length, 1);
  assert.match(logs[0], /mae-random-75 seed 0: .*linear 80.*linear 79\.5.*using the run folder/);
});

/** A fabricated finished run folder of the smoke budget (no training, no checkpoint). */
async function fakeRunFolder(
  root: string,
  id: string,
  seed: number,
  top1: number,
): Promise<string> {
  const b = BUDGETS.smoke;
  const run = reproRuns(b).find((r) => r.id === id)!;
  const runDir = `${root}/runs/${id}-s${seed}`;
  const o = { data: { name: "fashion-mnist", root: "" }, backend: "cpu", threads: 1 };
  const { config } = resolveConfig({ argv: runArgs(run, seed, b, o, runDir) });
  await Deno.mkdir(`${runDir}/linprobe`, { recursive: true });
  await Deno.mkdir(`${runDir}/finetune`, { recursive: true });
  await Deno.mkdir(`${runDir}/eval`, { recursive: true });
  await saveConfig(runDir, config);
  const shape = resolveShape(config.model, 1, 28);
  const w = (p: string, v: unknown) => Deno.writeTextFile(`${runDir}/${p}`, JSON.stringify(v));
  await w("run.json", {
    backend: "cpu",
    threads: 1,
    images: 256,
    channels: 1,
    imageSize: 28,
    shape,
    stepsPerEpoch: 4,
    gitCommit: "feedface",
    command: "deno --budget=smoke",
  });
  await Deno.writeTextFile(
    `${runDir}/metrics.jsonl`,
    [1, 2].map((e) =>
      JSON.stringify({ type: "epoch", epoch: e - 1, masked: 36, thrown: 0, visible: 13 })
    ).join("\n") + "\n",
  );
  await w("summary.json", { pretrainSeconds: 12, saliencySeconds: 0, finalLoss: 0.9 });
  await w("linprobe/result.json", { top1, knnTop1: 0.5, testImages: 500 });
  await w("finetune/result.json", { top1: 0.6 });
  await w("eval/attention_on_object.json", { mean: 0.4, areaFraction: 0.45 });
  const map = Array.from({ length: 49 }, (_, i) => i / 48);
  await w("eval/attention_monitor.json", {
    grid: 7,
    images: 8,
    entries: [{ epoch: 2, source: "cls-last", attnOnObject: 0.5, objectArea: 0.45, maps: [map] }],
  });
  return runDir;
}

Deno.test("rebuild: run folders count, write their records, and win a disagreement", async () => {
  const runRoot = await Deno.makeTempDir();
  const resultsDir = await Deno.makeTempDir();
  const b = BUDGETS.smoke;
  const runDir = await fakeRunFolder(runRoot, "mae-random-75", 0, 0.7);
  await Deno.mkdir(`${runRoot}/runs/mae-amt-45-40-s0`, { recursive: true }); // unfinished
  const run = reproRuns(b).find((r) => r.id === "mae-random-75")!;
  const rec = await recordFromRunFolder(runDir, run, 0, b);
  assert.ok(typeof rec !== "string", String(rec));
  assert.equal(rec.linear, 70);
  assert.equal(rec.finetune, 60);
  assert.deepEqual([rec.masked, rec.thrown, rec.visible], [36, 0, 13]);
  assert.ok(rec.flops > 0);
  assert.equal(rec.gitCommit, "feedface");
  assert.equal(rec.budget, "smoke");
  // a record file from another machine for seed 1, a stale one for seed 0
  await writeRecord(resultsDir, { ...rec, seed: 1, linear: 72, command: "elsewhere" });
  await writeRecord(resultsDir, { ...rec, linear: 65 });
  const logs: string[] = [];
  const out = await rebuildResults({
    budget: b,
    resultsDir,
    runDir: runRoot,
    figures: false,
    log: (s) => logs.push(s),
  });
  assert.equal(out.disagreements, 1);
  assert.equal(out.fromFolders, 1);
  assert.ok(logs.some((l) => /using the run folder/.test(l)), logs.join("\n"));
  assert.ok(logs.some((l) => /mae-amt-45-40-s0: pre-training not finished/.test(l)));
  const results = JSON.parse(await Deno.readTextFile(`${resultsDir}/results.json`));
  assert.deepEqual(results.runs.map((r: ReproRecord) => [r.seed, r.linear]), [[0, 70], [1, 72]]);
  // the folder's record replaced the stale file
  const files = await readRecords(`${resultsDir}/records`);
  assert.deepEqual(files.map((r) => r.linear), [70, 72]);
  const md = await Deno.readTextFile(`${resultsDir}/tables.md`);
  assert.match(md, /71\.0 ± 1\.4 \(70\.0, 72\.0\)/);
  // the monitor's maps travel with the records; the study is written inside (smoke)
  const maps = JSON.parse(await Deno.readTextFile(`${resultsDir}/maps/mae-random-75-s0.json`));
  assert.equal(maps.entries[0].maps[0].length, 49);
  const study = JSON.parse(await Deno.readTextFile(`${resultsDir}/saliency/results.json`));
  assert.deepEqual(study.pretrain.map((p: { seed: number }) => p.seed), [0, 1]);
  assert.ok(study.variants.some((v: { images: string }) => v.images === "test"));
  await Deno.remove(runRoot, { recursive: true });
  await Deno.remove(resultsDir, { recursive: true });
});

Deno.test("MaskFeat rows: in every budget, probed, their own baseline, Table 1 with the paper marked absent", async () => {
  const o = { data: { name: "fashion-mnist", root: "" }, backend: "cpu", threads: 1 };
  for (const b of Object.values(BUDGETS)) {
    const runs = reproRuns(b).filter((r) => r.method === "maskfeat");
    assert.deepEqual(runs.map((r) => r.id), ["maskfeat-random-40", "maskfeat-amt-30-26"], b.name);
    for (const run of runs) {
      assert.ok(isProbed(run, b), `${b.name} ${run.id} probed`);
      const { config: c } = resolveConfig({ argv: runArgs(run, 0, b, o, "/tmp/unused") });
      assert.equal(c.mim.method, "maskfeat");
      assert.equal(c.train.epochs, b.simmimEpochs);
      assert.equal(c.model.preset, b.preset);
    }
  }
  // a finished MaskFeat folder needs its linear probe (and fine-tune where the budget has one)
  const root = await Deno.makeTempDir();
  try {
    const b = BUDGETS.smoke;
    const runDir = await fakeRunFolder(root, "maskfeat-amt-30-26", 0, 0.55);
    const run = reproRuns(b).find((r) => r.id === "maskfeat-amt-30-26")!;
    const rec = await recordFromRunFolder(runDir, run, 0, b);
    assert.ok(typeof rec !== "string", String(rec));
    assert.deepEqual([rec.method, rec.linear, rec.finetune], ["maskfeat", 55, 60]);
    await Deno.remove(`${runDir}/linprobe/result.json`);
    assert.equal(await recordFromRunFolder(runDir, run, 0, b), "no linear probe result");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  const md = renderTables({
    budget: BUDGETS.medium,
    records: [
      fixture("mae-random-75", 0),
      fixture("maskfeat-random-40", 0, { method: "maskfeat", maskRatio: 0.4, linear: 70 }),
      fixture("maskfeat-amt-30-26", 0, {
        method: "maskfeat",
        maskRatio: 0.3,
        throwRatio: 0.26,
        linear: 71.5,
        masked: 15,
        thrown: 13,
        visible: 21,
      }),
    ],
  });
  const table1 = md.slice(md.indexOf("## Table 1"), md.indexOf("## Table 2"));
  const line = (id: string) => table1.split("\n").find((l) => l.includes(`(\`${id}\`)`))!;
  assert.match(line("maskfeat-random-40"), /MaskFeat random .*\| 40\/0 \|.*\| baseline \|/);
  // AMT against MaskFeat random, not MAE's: +1.5 on one common seed; the paper's cells are "-"
  const amt = line("maskfeat-amt-30-26");
  assert.match(amt, /\| 30\/26 \|/);
  assert.match(amt, /\+1\.5 \(n=1, no interval\)/);
  assert.match(amt, /\| 15\/13\/21 \|/);
  assert.match(amt, /\| - \| - \|$/);
  assert.ok(!md.slice(md.indexOf("## Table 2"), md.indexOf("## Attention")).includes("maskfeat"));
});
