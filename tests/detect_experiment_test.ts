import assert from "node:assert/strict";
import {
  type Config,
  ConfigError,
  defaultConfig,
  keyKind,
  loadSavedConfig,
  parseTask,
  resolveConfig,
} from "../lib/config/mod.ts";
import {
  DETECT_BUDGETS,
  type DetectRunResult,
  effectiveBudget,
  parseBackbones,
  renderTable3Csv,
  renderTable3Markdown,
  resolveDetectConfig,
  runDetectExperiment,
  TABLE3_BACKBONES,
  type Table3Row,
} from "../lib/detect/mod.ts";
import { TASK as DETECT_TASK } from "../tasks/detect.ts";

const config = (argv: string[] = []): Readonly<Config> => resolveConfig({ argv }).config;

Deno.test("resolveDetectConfig() fills the budget's sizes and the folders; non-zero keys win", () => {
  const smoke = resolveDetectConfig(config());
  assert.equal(smoke.run.dir, "runs/detect-smoke");
  assert.equal(smoke.detect.reproDir, "runs/repro-smoke");
  const b = DETECT_BUDGETS.smoke;
  assert.deepEqual(
    [smoke.detect.steps, smoke.detect.batchSize, smoke.detect.lr],
    [b.train.steps, b.train.batchSize, b.train.lr],
  );
  assert.deepEqual([smoke.detect.trainScenes, smoke.detect.valScenes], [64, 32]);
  assert.ok(Object.isFrozen(smoke.detect));
  const own = resolveDetectConfig(
    config(["--detect.budget=small", "--detect.steps=3", "--detect.valScenes=5", "--run.dir=x"]),
  );
  assert.equal(own.run.dir, "x");
  assert.deepEqual([own.detect.steps, own.detect.valScenes, own.detect.trainScenes], [3, 5, 1200]);
  const eff = effectiveBudget(own);
  assert.equal(eff.train.steps, 3);
  assert.equal(eff.train.warmupSteps, DETECT_BUDGETS.small.train.warmupSteps);
  assert.throws(
    () => resolveDetectConfig(config(["--detect.budget=smok"])),
    (e) => e instanceof ConfigError && /not one of: smoke, small/.test(e.message),
  );
});

Deno.test("parseBackbones() reads the list and refuses unknown or no names", () => {
  assert.deepEqual(parseBackbones(" random, mae-amt ,"), ["random", "mae-amt"]);
  assert.deepEqual(parseBackbones(defaultConfig().detect.backbones), Object.keys(TABLE3_BACKBONES));
  assert.throws(() => parseBackbones("mae,byol"), /unknown "byol"; valid: random, mae/);
  assert.throws(() => parseBackbones(" , "), ConfigError);
});

Deno.test("TABLE3_BACKBONES name their config files and detect.* run keys", async () => {
  for (const [name, b] of Object.entries(TABLE3_BACKBONES)) {
    if (name === "random") {
      assert.equal(b.config, null);
      continue;
    }
    assert.ok((await Deno.stat(b.config!)).isFile, b.config!);
    assert.equal(keyKind(`detect.${b.runKey}`), "string", name);
  }
});

Deno.test("deno task detect: old flag spellings still work, with a warning", async () => {
  const warnings: string[] = [];
  const { config } = await parseTask(
    DETECT_TASK,
    [
      "--budget=small",
      "--train.steps=3",
      "--train.batchSize=4",
      "--scenes.val=5",
      "--ckpt.mae-amt=runs/a",
      "--quiet",
    ],
    { warn: (l) => warnings.push(l) },
  );
  assert.equal(config.detect.budget, "small");
  assert.equal(config.detect.steps, 3);
  assert.equal(config.detect.batchSize, 4);
  assert.equal(config.detect.valScenes, 5);
  assert.equal(config.detect.maeAmtRun, "runs/a");
  assert.equal(config.train.batchSize, defaultConfig().train.batchSize);
  assert.deepEqual(warnings, [
    "--train.steps is deprecated; use --detect.steps",
    "--train.batchSize is deprecated; use --detect.batchSize",
    "--scenes.val is deprecated; use --detect.valScenes",
    "--ckpt.mae-amt is deprecated; use --detect.maeAmtRun",
  ]);
  await assert.rejects(() => parseTask(DETECT_TASK, ["--model.dim=8"]), /not a setting/);
});

function fakeResult(runDir: string, ap: number): DetectRunResult {
  const m = { AP: ap, AP50: 2 * ap, AP75: ap / 2, APs: -1, APm: ap, APl: -1 };
  const metrics = { ...m, AR1: 0, AR10: 0, AR100: 0, ARs: 0, ARm: 0, ARl: 0, perCategoryAP: {} };
  return {
    runDir,
    backbone: {
      kind: "run",
      runDir: null,
      label: "",
      shape: {} as DetectRunResult["backbone"]["shape"],
    },
    box: metrics,
    mask: { ...metrics, AP: ap / 2 },
    steps: 8,
    trainSeconds: 1.25,
    evalSeconds: 0,
    firstLoss: 0,
    finalLoss: 0,
    parameters: 0,
    valImages: 0,
    trainImages: 0,
  };
}

Deno.test("renderTable3Markdown() and renderTable3Csv() give one row per backbone, with the paper's", () => {
  const rows: Table3Row[] = [
    {
      name: "random",
      backbone: TABLE3_BACKBONES.random,
      backboneRun: null,
      result: fakeResult("d/detectors/random", 0.1),
    },
    {
      name: "mae",
      backbone: TABLE3_BACKBONES.mae,
      backboneRun: "d/pretrain/mae",
      result: fakeResult("d/detectors/mae", 0.2),
    },
  ];
  const md = renderTable3Markdown("d", rows, "CAPTION");
  assert.ok(md.startsWith("# Table 3: detection and instance segmentation\n\nCAPTION\n"));
  assert.ok(md.includes("| random init | 10.0 | 20.0 | 5.0 | 5.0 |"), md);
  assert.ok(
    md.includes(
      "| 28.1 / 26.2 | 14.6 / 14.3 | [detectors/random](detectors/random/results.json) | — |",
    ),
  );
  assert.ok(md.includes("| [d/pretrain/mae](pretrain/mae) |"));
  const csv = renderTable3Csv(rows).trimEnd().split("\n");
  assert.equal(csv.length, 3);
  assert.equal(
    csv[2],
    "mae,20.00,40.00,10.00,,20.00,10.00,40.00,10.00,40.1,36.6,25,24.2,8,1.3,d/detectors/mae,d/pretrain/mae",
  );
});

Deno.test("runDetectExperiment() writes config.json, the tables and the figures (random init only)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "detect_experiment_test_" });
  try {
    const argv = [
      "--detect.backbones=random",
      "--detect.steps=1",
      "--detect.batchSize=2",
      "--detect.trainScenes=4",
      "--detect.valScenes=2",
      "--run.backend=cpu",
      `--run.dir=${dir}`,
    ];
    const r = await runDetectExperiment(config(argv), { quiet: true });
    assert.equal(r.rows.length, 1);
    assert.equal(r.rows[0].result.steps, 1);
    const saved = await loadSavedConfig(dir);
    assert.equal(saved.detect.steps, 1);
    assert.equal(saved.detect.lr, DETECT_BUDGETS.smoke.train.lr); // resolved from the budget
    assert.equal(saved.detect.reproDir, "runs/repro-smoke");
    const tree = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.deepEqual(Object.keys(tree), ["run", "detect"]);
    for (
      const f of [
        "tables.md",
        "tables.csv",
        "results.json",
        "figures/ap.png",
        "figures/predictions.png",
      ]
    ) {
      assert.ok((await Deno.stat(`${dir}/${f}`)).size > 0, f);
    }
    assert.equal(await Deno.readTextFile(`${dir}/tables.md`), r.tables);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
