import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkPatchDividesImage,
  checkResumable,
  CHOICES,
  type Config,
  ConfigError,
  configKeys,
  defaultConfig,
  describeKey,
  diffConfigs,
  EXPERIMENT_SECTIONS,
  flattenConfig,
  formatHelp,
  keyKind,
  loadSavedConfig,
  type MethodName,
  parseCli,
  parseCliValue,
  parseTask,
  resolveConfig,
  RESUMABLE_KEYS,
  runTask,
  saveConfig,
  selectKeys,
  type StrategyName,
  switchOn,
  TASK_SECTIONS,
  taskHelp,
  type TaskSpec,
  validateConfig,
} from "../lib/config/mod.ts";
import { BACKEND_CHOICES } from "../lib/backend/mod.ts";
import { AMT_STRATEGIES } from "../lib/amt/mod.ts";
import { COUNTINGS, METHOD_NAMES } from "../lib/mim/mod.ts";
import { DATASET_NAMES } from "../lib/data/mod.ts";
import { configHash, RunLockedError } from "../lib/run/mod.ts";

/** Runs `fn` in a fresh temp folder holding `files` (relative path → text). */
async function withFiles(
  files: Record<string, string>,
  fn: (dir: string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amt_config_test_" });
  try {
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, name);
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await Deno.writeTextFile(path, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `fn` throws a ConfigError whose message contains every part. */
function throwsConfig(fn: () => unknown, ...parts: string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  for (const part of parts) {
    assert.ok(
      caught.message.includes(part),
      `message should contain ${JSON.stringify(part)}:\n${caught.message}`,
    );
  }
  return caught;
}

/** A default config with some keys changed (dotted keys). */
function withValues(values: Record<string, unknown>): Config {
  const c = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
  for (const [key, value] of Object.entries(values)) {
    const [section, leaf] = key.split(".");
    c[section][leaf] = value;
  }
  return c as unknown as Config;
}

// --- precedence, extends, sources -------------------------------------------

Deno.test("resolveConfig() applies defaults < YAML < CLI and records sources", async () => {
  await withFiles({
    "configs/x.yaml": "train:\n  epochs: 7\n  batchSize: 32\nmim:\n  maskRatio: 0.6\n",
  }, (dir) => {
    const { config, sources } = resolveConfig({
      argv: ["--config", "configs/x.yaml", "--train.epochs=3"],
      cwd: dir,
    });
    assert.equal(config.train.epochs, 3); // CLI beats YAML
    assert.equal(config.train.batchSize, 32); // YAML beats default
    assert.equal(config.mim.maskRatio, 0.6);
    assert.equal(config.train.baseLr, defaultConfig().train.baseLr); // default kept
    assert.equal(sources.keys["train.epochs"], "command line");
    assert.equal(sources.keys["train.batchSize"], join("configs", "x.yaml"));
    assert.equal(sources.keys["train.baseLr"], "default");
    assert.deepEqual(sources.files, [join("configs", "x.yaml")]);
  });
});

Deno.test("resolveConfig() follows relative `extends:` chains, base first", async () => {
  await withFiles({
    "configs/base/common.yaml": "train:\n  epochs: 50\n  batchSize: 128\ndata:\n  name: cifar10\n",
    "configs/mid.yaml": "extends: base/common.yaml\ntrain:\n  batchSize: 256\nrun:\n  name: mid\n",
    "configs/exp.yaml": "extends: mid.yaml\nrun:\n  name: exp\n",
  }, (dir) => {
    const { config, sources } = resolveConfig({ argv: ["--config=configs/exp.yaml"], cwd: dir });
    assert.equal(config.train.epochs, 50);
    assert.equal(config.train.batchSize, 256);
    assert.equal(config.data.name, "cifar10");
    assert.equal(config.run.name, "exp");
    assert.deepEqual(sources.files, [
      join("configs", "base", "common.yaml"),
      join("configs", "mid.yaml"),
      join("configs", "exp.yaml"),
    ]);
    assert.equal(sources.keys["train.epochs"], join("configs", "base", "common.yaml"));
  });
});

Deno.test("resolveConfig() refuses an `extends:` cycle and a missing base", async () => {
  await withFiles({
    "a.yaml": "extends: b.yaml\n",
    "b.yaml": "extends: a.yaml\n",
    "c.yaml": "extends: nope.yaml\n",
  }, (dir) => {
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "a.yaml"], cwd: dir }),
      "cycle",
      "a.yaml",
    );
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "c.yaml"], cwd: dir }),
      "nope.yaml",
      "c.yaml",
    );
  });
});

Deno.test("resolveConfig() accepts flat dotted keys and empty sections in YAML", async () => {
  await withFiles({ "x.yaml": "train.epochs: 4\neval:\n" }, (dir) => {
    const { config } = resolveConfig({ argv: ["--config", "x.yaml"], cwd: dir });
    assert.equal(config.train.epochs, 4);
  });
  await withFiles({ "empty.yaml": "" }, (dir) => {
    const { config } = resolveConfig({ argv: ["--config", "empty.yaml"], cwd: dir });
    // the defaults, with amt.counting "auto" resolved to the default method's (MAE) rule
    const want = defaultConfig();
    want.amt.counting = "floor";
    assert.deepEqual(config, want);
  });
});

Deno.test("resolveConfig() result is deep-frozen and does not alias the base", () => {
  const base = defaultConfig();
  const { config } = resolveConfig({ argv: ["--train.epochs=2"], base });
  assert.equal(base.train.epochs, 10);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.train));
  assert.throws(() => {
    (config.train as { epochs: number }).epochs = 99;
  }, TypeError);
  assert.throws(() => {
    (config.data.cropScale as number[])[0] = 0.5;
  }, TypeError);
  assert.throws(() => {
    (config as { extra?: number }).extra = 1;
  }, TypeError);
  assert.equal(config.train.epochs, 2);
});

// --- command line -----------------------------------------------------------

Deno.test("parseCli() reads every flag form", () => {
  const cli = parseCli([
    "--config",
    "configs/a.yaml",
    "--train.epochs",
    "5",
    "--train.baseLr=-0",
    "--data.flip",
    "--mim.normPixLoss",
    "no",
    "--no-data.flip",
    "--ckpt",
    "runs/x/ckpt",
    "--dry",
    "--budget=60",
    "input.png",
    "--",
    "--not-a-flag",
  ], { extraKeys: ["ckpt", "dry", "budget"] });
  assert.equal(cli.configFile, "configs/a.yaml");
  assert.deepEqual(cli.overrides, {
    "train.epochs": "5",
    "train.baseLr": "-0",
    "data.flip": "false", // --no-data.flip came last
    "mim.normPixLoss": "no",
  });
  assert.deepEqual(cli.extras, { ckpt: "runs/x/ckpt", dry: "true", budget: "60" });
  assert.deepEqual(cli.positional, ["input.png", "--not-a-flag"]);
  assert.equal(cli.help, false);
  assert.equal(parseCli(["--config=b.yaml", "-h"]).configFile, "b.yaml");
  assert.equal(parseCli(["--help"]).help, true);
});

Deno.test("parseCli() does not let a boolean flag swallow a positional", () => {
  const cli = parseCli(["--data.flip", "image.png"]);
  assert.equal(cli.overrides["data.flip"], "true");
  assert.deepEqual(cli.positional, ["image.png"]);
});

Deno.test("parseCli() takes a negative number as a value", () => {
  assert.equal(parseCli(["--train.minLr", "-1"]).overrides["train.minLr"], "-1");
});

Deno.test("parseCli() refuses unknown keys and flags with a suggestion", () => {
  const e = throwsConfig(
    () => parseCli(["--train.epoch=5"]),
    '"train.epoch"',
    "--train.epoch=5",
    'Did you mean "train.epochs"?',
  );
  assert.equal(e.key, "train.epoch");
  throwsConfig(() => parseCli(["--data.imgSize", "64"]), "data.imgSize", "64", '"data.imageSize"');
  throwsConfig(() => parseCli(["--epochs", "5"]), '"--epochs"', '"--train.epochs"');
  throwsConfig(() => parseCli(["--ckpy", "x"], { extraKeys: ["ckpt"] }), '"--ckpt"');
  throwsConfig(() => parseCli(["--train.zzz=1"]), "train.zzz", 'Keys in "train"', "baseLr");
  throwsConfig(() => parseCli(["-x"]), '"-x"');
});

Deno.test("parseCli() refuses a flag without its value", () => {
  throwsConfig(() => parseCli(["--train.epochs"]), "--train.epochs needs a value");
  throwsConfig(() => parseCli(["--train.epochs", "--data.flip"]), "--train.epochs needs a value");
  throwsConfig(() => parseCli(["--config"]), "--config needs a file path");
  throwsConfig(() => parseCli(["--no-train.epochs"]), "not a boolean key");
});

Deno.test("parseCliValue() coerces by the default's type", () => {
  assert.equal(parseCliValue("train.baseLr", "1e-4"), 1e-4);
  assert.equal(parseCliValue("train.epochs", " 12 "), 12);
  assert.equal(parseCliValue("run.name", "123"), "123");
  for (const yes of ["true", "1", "yes", "YES", "on"]) {
    assert.equal(parseCliValue("data.flip", yes), true);
  }
  for (const no of ["false", "0", "no", "off"]) assert.equal(parseCliValue("data.flip", no), false);
  assert.deepEqual(parseCliValue("data.cropScale", "0.2,1"), [0.2, 1]);
  assert.deepEqual(parseCliValue("data.cropRatio", "[0.75, 1.5]"), [0.75, 1.5]);
});

Deno.test("parseCliValue() refuses values of the wrong type, quoting key and value", () => {
  throwsConfig(() => parseCliValue("train.baseLr", "abc"), "train.baseLr", '"abc"', "a number");
  throwsConfig(() => parseCliValue("train.baseLr", "NaN"), "train.baseLr", '"NaN"');
  throwsConfig(() => parseCliValue("train.baseLr", ""), "train.baseLr");
  throwsConfig(() => parseCliValue("train.epochs", "2.5"), "train.epochs", '"2.5"', "integer");
  throwsConfig(() => parseCliValue("data.flip", "maybe"), "data.flip", '"maybe"', "boolean");
  throwsConfig(() => parseCliValue("data.cropScale", "0.2"), "data.cropScale", '"0.2"');
  throwsConfig(() => parseCliValue("data.cropScale", "0.2,1,3"), "data.cropScale");
  throwsConfig(() => parseCliValue("data.cropScale", "a,b"), "data.cropScale");
});

Deno.test("resolveConfig() reports a bad CLI value with its key and value", () => {
  throwsConfig(
    () => resolveConfig({ argv: ["--train.epochs=ten"] }),
    "train.epochs",
    '"ten"',
    "command line",
  );
});

Deno.test("resolveConfig() returns extras and positional arguments", () => {
  const r = resolveConfig({ argv: ["--preset", "vit-tiny-32", "a", "b"], extraKeys: ["preset"] });
  assert.deepEqual(r.extras, { preset: "vit-tiny-32" });
  assert.deepEqual(r.positional, ["a", "b"]);
  throwsConfig(() => resolveConfig({ argv: ["--preset", "x"] }), '"--preset"');
});

// --- YAML errors ------------------------------------------------------------

Deno.test("resolveConfig() names file, key, value and suggestion for an unknown YAML key", async () => {
  await withFiles({
    "configs/x.yaml": "train:\n  epoch: 5\n",
    "configs/y.yaml": "data:\n  name: cifar10\n  imgSize: 64\n",
    "configs/z.yaml": "epochs: 5\n",
    "configs/w.yaml": "trian:\n  epochs: 5\n",
    "configs/v.yaml": "model:\n  qqqqqq: 1\n",
  }, (dir) => {
    const e = throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/x.yaml"], cwd: dir }),
      'unknown config key "train.epoch"',
      join("configs", "x.yaml") + ":2:3",
      "value 5",
      'Did you mean "train.epochs"?',
    );
    assert.equal(e.key, "train.epoch");
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/y.yaml"], cwd: dir }),
      '"data.imgSize"',
      "y.yaml:3:3",
      "64",
      'Did you mean "data.imageSize"?',
    );
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/z.yaml"], cwd: dir }),
      '"epochs"',
      '"train.epochs"',
    );
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/w.yaml"], cwd: dir }),
      '"trian"',
      "w.yaml:1:1",
    );
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/v.yaml"], cwd: dir }),
      '"model.qqqqqq"',
      'Keys in "model"',
      "patchSize",
    );
  });
});

Deno.test("resolveConfig() names file, line, key and value for a YAML value of the wrong type", async () => {
  await withFiles({
    "a.yaml": "train:\n  epochs: ten\n",
    "b.yaml": 'train:\n  baseLr: "1e-4"\n',
    "c.yaml": "train:\n  epochs: 2.5\n",
    "d.yaml": "run:\n  name: 2024\n",
    "e.yaml": "data:\n  cropScale: [0.2, 0.5, 1]\n",
    "f.yaml": "data:\n  flip: sometimes\n",
    "g.yaml": "train: 5\n",
    "h.yaml": "train:\n  epochs:\n",
    "i.yaml": "- 1\n- 2\n",
  }, (dir) => {
    const run = (file: string) => () => resolveConfig({ argv: ["--config", file], cwd: dir });
    throwsConfig(run("a.yaml"), "a.yaml:2:3", "train.epochs", '"ten"', "an integer");
    throwsConfig(run("b.yaml"), "b.yaml:2:3", "train.baseLr", '"1e-4"', "without quotes");
    throwsConfig(run("c.yaml"), "train.epochs", "2.5", "whole number");
    throwsConfig(run("d.yaml"), "run.name", "2024", "Quote it");
    throwsConfig(run("e.yaml"), "data.cropScale", "0.2,0.5,1");
    throwsConfig(run("f.yaml"), "data.flip", '"sometimes"');
    throwsConfig(run("g.yaml"), 'section "train"', "g.yaml:1:1");
    throwsConfig(run("h.yaml"), "train.epochs", "no value");
    throwsConfig(run("i.yaml"), "i.yaml", "expected a mapping");
  });
});

Deno.test("resolveConfig() accepts YAML pairs as lists or strings and boolean words", async () => {
  await withFiles({
    "p.yaml": 'data:\n  cropScale: [0.3, 0.9]\n  cropRatio: "0.5,2"\n  flip: "no"\n',
  }, (dir) => {
    const { config } = resolveConfig({ argv: ["--config", "p.yaml"], cwd: dir });
    assert.deepEqual(config.data.cropScale, [0.3, 0.9]);
    assert.deepEqual(config.data.cropRatio, [0.5, 2]);
    assert.equal(config.data.flip, false);
  });
});

Deno.test("resolveConfig() reports YAML syntax errors with file, line and column", async () => {
  await withFiles({
    "bad.yaml": "train:\n  epochs: 5\n  batchSize: [1, 2\nmim:\n  method: mae\n",
    "dup.yaml": "train:\n  epochs: 5\n  epochs: 6\n",
  }, (dir) => {
    const e = throwsConfig(
      () => resolveConfig({ argv: ["--config", "bad.yaml"], cwd: dir }),
      "YAML syntax error in bad.yaml:",
      "line ",
    );
    assert.match(e.message, /bad\.yaml:\d+:\d+/);
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "dup.yaml"], cwd: dir }),
      "dup.yaml:3:",
      "line 3",
    );
  });
});

Deno.test("resolveConfig() names a missing file and lists configs/", async () => {
  await withFiles({ "configs/mae.yaml": "", "configs/mae_amt.yaml": "" }, (dir) => {
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "configs/mea.yaml"], cwd: dir }),
      "config file not found",
      join("configs", "mea.yaml"),
      "Files in configs/: mae.yaml, mae_amt.yaml",
      'Did you mean "configs/mae.yaml"?',
    );
  });
  await withFiles({}, (dir) => {
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "x.yaml"], cwd: dir }),
      '"x.yaml"',
      "no configs/ folder",
    );
  });
});

// --- validation -------------------------------------------------------------

Deno.test("validateConfig() accepts the defaults", () => {
  validateConfig(defaultConfig());
});

Deno.test("validateConfig() refuses each bad value, quoting key and value", () => {
  const cases: [Record<string, unknown>, string[]][] = [
    [{ "data.name": "cifar-10" }, [
      "data.name",
      '"cifar-10"',
      "cifar10, cifar100",
      'Did you mean "cifar10"?',
    ]],
    [{ "model.preset": "vit-huge" }, ["model.preset", '"vit-huge"', "vit-tiny-28"]],
    [{ "train.batchSize": 0 }, ["train.batchSize = 0", ">= 1"]],
    [{ "amt.batchSize": 0 }, ["amt.batchSize = 0"]],
    [{ "train.epochs": 0 }, ["train.epochs = 0", ">= 1"]],
    [{ "train.baseLr": -0.001 }, ["train.baseLr = -0.001", "negative learning rate"]],
    [{ "train.minLr": -1 }, ["train.minLr = -1"]],
    [{ "amt.maskRatio": 1 }, ["amt.maskRatio = 1", "[0, 1)"]],
    [{ "amt.throwRatio": -0.1 }, ["amt.throwRatio = -0.1"]],
    [{ "amt.maskRatio": 0.6, "amt.throwRatio": 0.4 }, [
      "amt.maskRatio + amt.throwRatio",
      "0.6 + 0.4",
      "< 1",
    ]],
    [{ "mim.maskRatio": 0 }, ["mim.maskRatio = 0", "(0, 1)"]],
    [{ "mim.maskRatio": 1 }, ["mim.maskRatio = 1"]],
    [{ "amt.strategy": "attn" }, ["amt.strategy", '"attn"', "attn-mask", "random-throw"]],
    [{ "amt.counting": "round" }, ["amt.counting", '"round"', "floor, ceil"]],
    [{ "mim.method": "beit" }, ["mim.method", '"beit"', "mae, simmim"]],
    [{ "run.backend": "webgl" }, ["run.backend", '"webgl"', "webgpu", "tensorflow"]],
    [{ "data.onBadImage": "ignore" }, ["data.onBadImage", '"ignore"', "skip, fail"]],
    [{ "data.cropScale": [0, 1] }, ["data.cropScale = 0,1", "0 < a <= b <= 1"]],
    [{ "data.cropScale": [0.8, 0.2] }, ["data.cropScale = 0.8,0.2"]],
    [{ "data.cropScale": [0.2, 1.5] }, ["data.cropScale = 0.2,1.5"]],
    [{ "data.cropRatio": [1.3, 0.7] }, ["data.cropRatio = 1.3,0.7", "0 < a <= b"]],
    [{ "amt.interval": 0 }, ["amt.interval = 0", ">= 1"]],
    [{ "amt.warmup": -1 }, ["amt.warmup = -1", ">= 0"]],
    [{ "run.threads": -2 }, ["run.threads = -2", ">= 0"]],
    [{ "data.imageSize": 28, "model.patchSize": 5 }, ["patch size 5", "image size 28", "e.g. 4"]],
    [{ "model.dim": 192, "model.heads": 5 }, [
      "model.heads = 5",
      "model.dim = 192",
      "model.heads = 4",
    ]],
    [{ "model.decoderDim": 100, "model.decoderHeads": 3 }, [
      "model.decoderHeads = 3",
      "model.decoderDim = 100",
    ]],
    [{ "mim.maskUnit": 6, "model.patchSize": 4 }, [
      "mim.maskUnit = 6",
      "multiple of model.patchSize = 4",
    ]],
    [{ "data.name": "image-folder" }, ["data.root"]],
    [{ "run.name": "a/b" }, ["run.name", '"a/b"']],
    [{ "train.epochs": 2.5 }, ["train.epochs = 2.5", "integer"]],
    [{ "train.baseLr": "0.1" }, ["train.baseLr", '"0.1"']],
  ];
  for (const [values, parts] of cases) {
    const e = throwsConfig(() => validateConfig(withValues(values)), ...parts);
    assert.ok(e.key !== undefined && Object.keys(values).includes(e.key), `key ${e.key}`);
  }
});

Deno.test("validateConfig() lists every problem at once", () => {
  const e = throwsConfig(
    () => validateConfig(withValues({ "train.epochs": 0, "run.threads": -1 })),
    "2 problems",
    "train.epochs",
    "run.threads",
  );
  assert.equal(e.problems.length, 2);
});

Deno.test("resolveConfig() validation messages say where the bad value was set", async () => {
  await withFiles({ "x.yaml": "amt:\n  maskRatio: 0.7\n" }, (dir) => {
    throwsConfig(
      () => resolveConfig({ argv: ["--config", "x.yaml", "--amt.throwRatio=0.5"], cwd: dir }),
      "amt.maskRatio + amt.throwRatio",
      "x.yaml",
      "command line",
    );
  });
  throwsConfig(
    () => resolveConfig({ argv: ["--data.name=cifar"] }),
    "data.name",
    '"cifar"',
    "fashion-mnist",
    "command line",
  );
});

Deno.test("resolveConfig() skips validation when --help is given", () => {
  const r = resolveConfig({ argv: ["--train.epochs=0", "--help"] });
  assert.equal(r.help, true);
  assert.equal(r.config.train.epochs, 0);
});

Deno.test("checkPatchDividesImage() quotes both sizes and suggests a divisor", () => {
  checkPatchDividesImage(32, 4, "vit-tiny-32");
  throwsConfig(
    () => checkPatchDividesImage(96, 7, "preset vit-tiny-64 on stl10"),
    "patch size 7",
    "image size 96",
    "preset vit-tiny-64 on stl10",
    "e.g. 6", // 6 and 8 are equally close: the smaller wins
  );
  throwsConfig(() => checkPatchDividesImage(0, 4, "x"), "positive integers");
});

// --- flat view and help -----------------------------------------------------

Deno.test("flattenConfig() and configKeys() cover the whole tree", () => {
  const flat = flattenConfig(defaultConfig());
  assert.deepEqual(Object.keys(flat), configKeys());
  assert.equal(flat["train.epochs"], 10);
  assert.deepEqual(flat["data.cropScale"], [0.2, 1]);
  // 95 + 6 saliency-source keys (data.normalize, model.registers, amt.saliency, amt.invert,
  // amt.emaMomentum, train.noDecay) + 4 MaskFeat keys (mim.hogCell, hogBins, hogWindow, hogNorm)
  // + 3 attention-monitor keys (eval.attnEvery, attnImages, attnSources)
  assert.equal(configKeys().length, 108);
  assert.equal(selectKeys(EXPERIMENT_SECTIONS).length, 65);
  assert.equal(selectKeys(TASK_SECTIONS).length, 43);
  for (const key of configKeys()) {
    assert.ok(describeKey(key) !== "", `no description for ${key}`);
    assert.ok(keyKind(key) !== undefined);
  }
  assert.equal(keyKind("train.epochs"), "integer");
  assert.equal(keyKind("train.baseLr"), "number");
  assert.equal(keyKind("data.cropScale"), "pair");
});

Deno.test("formatHelp() lists every key with its default and description", () => {
  const text = formatHelp({
    usage: "deno task pretrain",
    extras: { ckpt: "checkpoint to resume" },
  });
  for (const key of configKeys()) assert.ok(text.includes(`--${key}=`), `help misses ${key}`);
  assert.ok(text.includes("--train.epochs=10"));
  assert.ok(text.includes("--data.cropScale=0.2,1"));
  assert.ok(text.includes("--ckpt VALUE"));
  assert.ok(text.includes("attn-throw-low"));
  const current = formatHelp({ values: withValues({ "train.epochs": 3 }) });
  assert.ok(current.includes("--train.epochs=3"));
});

// --- run folder -------------------------------------------------------------

Deno.test("saveConfig() writes config.json atomically and loadSavedConfig() reads it back", async () => {
  await withFiles({}, async (dir) => {
    const { config } = resolveConfig({ argv: ["--train.epochs=3", "--data.cropScale=0.3,0.9"] });
    const runDir = join(dir, "runs", "exp", "t0");
    const path = await saveConfig(runDir, config);
    assert.equal(path, join(runDir, "config.json"));
    const names = [...Deno.readDirSync(runDir)].map((e) => e.name);
    assert.deepEqual(names, ["config.json"]);
    const back = await loadSavedConfig(runDir);
    assert.deepEqual(back, config);
    assert.ok(Object.isFrozen(back.data.cropScale));
    // The saved JSON also works as a --config file (JSON is YAML).
    const again = resolveConfig({ argv: ["--config", path], cwd: dir });
    assert.deepEqual(again.config, config);
  });
});

Deno.test("loadSavedConfig() refuses a missing, broken or unknown-key file", async () => {
  await withFiles(
    { "bad/config.json": "{ nope", "old/config.json": '{"train": {"epoch": 5}}' },
    async (dir) => {
      await assert.rejects(() => loadSavedConfig(join(dir, "none")), ConfigError);
      await assert.rejects(() => loadSavedConfig(join(dir, "bad")), /not valid JSON/);
      await assert.rejects(() => loadSavedConfig(join(dir, "old")), /Did you mean "train.epochs"/);
    },
  );
});

Deno.test("diffConfigs() lists differing keys; checkResumable() allows RESUMABLE_KEYS", () => {
  const a = defaultConfig();
  const b = withValues({
    "train.epochs": 20,
    "run.threads": 4,
    "train.batchSize": 128,
    "data.cropScale": [0.3, 1],
  });
  assert.deepEqual(diffConfigs(a, b), [
    "data.cropScale",
    "train.epochs",
    "train.batchSize",
    "run.threads",
  ]);
  assert.deepEqual(diffConfigs(a, b, RESUMABLE_KEYS), ["data.cropScale", "train.batchSize"]);
  assert.deepEqual(diffConfigs(a, defaultConfig()), []);
  checkResumable(
    a,
    withValues({ "train.epochs": 20, "run.backend": "cpu", "run.threads": 2 }),
    "runs/x",
  );
  throwsConfig(
    () => checkResumable(a, b, "runs/x"),
    "runs/x",
    "train.batchSize: saved 64, now 128",
    "data.cropScale",
  );
});

// --- enum-like keys ----------------------------------------------------------

Deno.test("CHOICES of the enum-like keys are the owning modules' own lists", () => {
  assert.equal(CHOICES["mim.method"], METHOD_NAMES);
  assert.equal(CHOICES["amt.strategy"], AMT_STRATEGIES);
  assert.deepEqual(CHOICES["amt.counting"], ["auto", ...COUNTINGS]);
  assert.deepEqual([...CHOICES["run.backend"]], [...BACKEND_CHOICES]);
  assert.equal(CHOICES["data.name"], DATASET_NAMES);
  // the schema's types are the unions: a method or strategy name type-checks as such
  const method: MethodName = defaultConfig().mim.method;
  const strategy: StrategyName = defaultConfig().amt.strategy;
  assert.ok(METHOD_NAMES.includes(method) && AMT_STRATEGIES.includes(strategy));
  throwsConfig(
    () => resolveConfig({ argv: ["--probe.optimizer=larss"] }),
    'probe.optimizer = "larss" is not one of: sgd, lars',
    'Did you mean "lars"?',
  );
  throwsConfig(() => resolveConfig({ argv: ["--finetune.init=rand"] }), "pretrained, random");
});

Deno.test("validateConfig() checks the task sections' ranges", () => {
  validateConfig(withValues({ "probe.warmupEpochs": -1, "finetune.layerDecay": 0 }));
  validateConfig(withValues({ "probe.warmupEpochs": 2.5, "finetune.layerDecay": 1 }));
  throwsConfig(
    () => validateConfig(withValues({ "probe.warmupEpochs": -2 })),
    "probe.warmupEpochs = -2 must be >= 0, or -1",
  );
  throwsConfig(() => validateConfig(withValues({ "finetune.layerDecay": 1.5 })), "(0, 1]");
  throwsConfig(() => validateConfig(withValues({ "probe.batchSize": 1 })), "BatchNorm");
  throwsConfig(() => validateConfig(withValues({ "knn.temperature": 0 })), "must be > 0");
  throwsConfig(() => validateConfig(withValues({ "detect.steps": -1 })), "detect.steps = -1");
  throwsConfig(
    () => validateConfig(withValues({ "finetune.cropScale": [0.5, 0.2] })),
    "finetune.cropScale = 0.5,0.2",
  );
});

// --- task command lines ------------------------------------------------------

Deno.test("parseCli() reads aliases, negated boolean aliases and deprecated spellings", () => {
  const cli = parseCli(["--epochs=5", "--no-knn", "--backend", "cpu", "--train.steps=3"], {
    aliases: { epochs: "probe.epochs", knn: "probe.knn", "train.steps": "detect.steps" },
    deprecated: { backend: "run.backend" },
  });
  assert.deepEqual(cli.overrides, {
    "probe.epochs": "5",
    "probe.knn": "false",
    "run.backend": "cpu",
    "detect.steps": "3",
  });
  assert.deepEqual(cli.warnings, ["--backend is deprecated; use --run.backend"]);
  // an alias is looked up before the keys: a task may give a dotted name its own meaning
  const own = parseCli(["--train.batchSize=4"], {
    aliases: { "train.batchSize": "detect.batchSize" },
  });
  assert.deepEqual(own.overrides, { "detect.batchSize": "4" });
  assert.throws(() => parseCli([], { aliases: { x: "probe.nope" } }), /not a config key/);
  throwsConfig(
    () => parseCli(["--epoch=5"], { aliases: { epochs: "probe.epochs" } }),
    '"--epochs"',
  );
});

Deno.test("parseCli() refuses keys outside `keys`, naming the task's keys", () => {
  const opts = { keys: ["probe", "run.backend"], aliases: { epochs: "probe.epochs" } };
  assert.deepEqual(parseCli(["--probe.seed=1", "--run.backend=cpu"], opts).overrides, {
    "probe.seed": "1",
    "run.backend": "cpu",
  });
  throwsConfig(
    () => parseCli(["--model.dim=8"], opts),
    '"model.dim" is not a setting of this task',
    "probe.*, run.backend",
  );
  throwsConfig(() => parseCli(["--no-data.flip"], opts), '"data.flip" is not a setting');
});

Deno.test("resolveConfig() applies `file` and typed `set` values between defaults and the command line", async () => {
  await withFiles({ "b.yaml": "train:\n  epochs: 4\n  batchSize: 8\n" }, (dir) => {
    const r = resolveConfig({
      file: "b.yaml",
      set: { "train.batchSize": 16, "data.limit": 32 },
      setSource: "budget x",
      argv: ["--data.limit=64"],
      cwd: dir,
    });
    assert.equal(r.config.train.epochs, 4);
    assert.equal(r.config.train.batchSize, 16);
    assert.equal(r.config.data.limit, 64);
    assert.equal(r.sources.keys["train.batchSize"], "budget x");
    throwsConfig(() => resolveConfig({ set: { "train.epochs": "2" } }), "train.epochs", "code");
    throwsConfig(
      () => resolveConfig({ set: { "train.epochs": 0 }, setSource: "budget x" }),
      "train.epochs = 0 must be >= 1. (set in budget x)",
    );
  });
});

Deno.test("saveConfig() writes the experiment sections unless told which", async () => {
  await withFiles({}, async (dir) => {
    const { config } = resolveConfig({ argv: ["--probe.epochs=7", "--train.epochs=3"] });
    const tree = JSON.parse(await Deno.readTextFile(await saveConfig(join(dir, "a"), config)));
    assert.deepEqual(Object.keys(tree), [...EXPERIMENT_SECTIONS]);
    const back = await loadSavedConfig(join(dir, "a"));
    assert.equal(back.train.epochs, 3);
    assert.equal(back.probe.epochs, 30); // not saved: the default
    await saveConfig(join(dir, "b"), config, { sections: ["run", "probe"] });
    assert.equal((await loadSavedConfig(join(dir, "b"))).probe.epochs, 7);
  });
});

Deno.test("task keys are resumable and leave the config hash as it was", () => {
  for (const key of selectKeys(TASK_SECTIONS)) assert.ok(RESUMABLE_KEYS.includes(key), key);
  const a = defaultConfig();
  const b = withValues({ "probe.epochs": 3, "detect.budget": "small" });
  checkResumable(a, b, "runs/x");
  assert.equal(configHash(a), configHash(b));
  throwsConfig(
    () => checkResumable(a, withValues({ "train.batchSize": 8 }), "runs/x"),
    "every probe.*, finetune.*, knn.*, detect.* key",
  );
});

const SPEC: TaskSpec = {
  name: "t",
  usage: "--ckpt=DIR [--knn.key=value]",
  keys: ["knn", "run.backend"],
  aliases: { T: "knn.temperature" },
  deprecated: { backend: "run.backend" },
  flags: { "ckpt=DIR": "the run", force: "recompute" },
};

Deno.test("parseTask() parses with the task's keys, flags and base; taskHelp() lists them", async () => {
  const warnings: string[] = [];
  let seen: string | undefined;
  const base = withValues({ "knn.testLimit": 5 });
  const r = await parseTask(SPEC, ["--ckpt=runs/x", "--T=0.5", "--backend=cpu", "--force"], {
    base: (cli) => {
      seen = cli.extras.ckpt;
      return base;
    },
    warn: (l) => warnings.push(l),
  });
  assert.equal(seen, "runs/x");
  assert.equal(r.config.knn.temperature, 0.5);
  assert.equal(r.config.knn.testLimit, 5);
  assert.equal(r.config.run.backend, "cpu");
  assert.equal(switchOn(r.extras, "force"), true);
  assert.equal(switchOn(r.extras, "ckpt2"), false);
  assert.deepEqual(warnings, ["--backend is deprecated; use --run.backend"]);
  // --help: no base is read, nothing is validated
  const h = await parseTask(SPEC, ["--help", "--knn.temperature=0"], {
    base: () => {
      throw new Error("base read for --help");
    },
  });
  assert.ok(h.help);
  await assert.rejects(() => parseTask(SPEC, ["runs/x"]), /unexpected argument "runs\/x"/);
  await assert.rejects(() => parseTask(SPEC, ["--model.dim=2"]), /not a setting of this task/);
  const text = taskHelp(SPEC);
  assert.ok(text.startsWith("Usage: deno task t --ckpt=DIR"));
  for (const key of selectKeys(SPEC.keys)) assert.ok(text.includes(`--${key}=`), key);
  assert.ok(!text.includes("--train.epochs"));
  assert.ok(text.includes("--ckpt=DIR") && text.includes("--force"));
  assert.ok(text.includes("(also --T)") && text.includes("(deprecated: --backend)"));
});

Deno.test("runTask() exits 2 with one line for the user's errors and rethrows the rest", async () => {
  const run = async (e: Error) => {
    const lines: string[] = [];
    let code: number | undefined;
    await runTask(() => Promise.reject(e), {
      error: (l) => lines.push(l),
      exit: (c) => void (code = c),
    });
    return { lines, code };
  };
  const data = new Error("bad file");
  data.name = "DataError";
  for (
    const e of [
      new ConfigError("bad key"),
      new RangeError("bad range"),
      new RunLockedError("locked", null),
      data,
    ]
  ) {
    assert.deepEqual(await run(e), { lines: [`error: ${e.message}`], code: 2 });
  }
  await assert.rejects(() => run(new TypeError("a bug")), TypeError);
  let ran = false;
  await runTask(() => void (ran = true), { exit: () => assert.fail("exited") });
  assert.ok(ran);
});
