/** `tools/check_layers.ts` and its import parser on small fixture trees in a temp dir. */
import assert from "node:assert/strict";
import {
  checkLayers,
  formatViolation,
  type LayerPolicy,
  LAYERS,
  type Rule,
} from "../tools/check_layers.ts";
import { parseImports } from "../tools/_imports.ts";

/** Packages `low < mid < high`; no exceptions. */
const POLICY: LayerPolicy = { order: ["low", "mid", "high"], allow: [] };

/** Writes `files` (path -> source) under a new temp dir, runs `fn` on it, removes it. */
async function withTree<T>(files: Record<string, string>, fn: (root: string) => Promise<T>) {
  const root = await Deno.makeTempDir({ prefix: "layers_" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(`${root}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeTextFile(`${root}/${path}`, text);
    }
    return await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** The violations of a tree as `from -> to: rule` strings (no details), sorted. */
async function violations(
  files: Record<string, string>,
  policy: LayerPolicy = POLICY,
): Promise<string[]> {
  const report = await withTree(files, (root) => checkLayers(root, policy));
  return report.violations.map((v) => `${v.to ? `${v.from} -> ${v.to}` : v.from}: ${v.rule}`)
    .sort();
}

function rules(lines: string[]): Set<Rule> {
  return new Set(lines.map((l) => l.slice(l.lastIndexOf(": ") + 2) as Rule));
}

const imp = (spec: string) => `import { x } from "${spec}";\nexport const y = x;\n`;

Deno.test("checkLayers() passes a clean tree and counts its files and imports", async () => {
  const report = await withTree({
    "lib/low/a.ts": "export const a = 1;\n",
    "lib/low/_p.ts": "export const p = 1;\n",
    "lib/low/mod.ts": 'export * from "./a.ts";\nexport { p } from "./_p.ts";\n',
    "lib/mid/b.ts": 'import { a } from "../low/mod.ts";\nexport const b = a;\n',
    "lib/high/c.ts":
      'import { b } from "../mid/b.ts";\nimport "../low/a.ts";\nexport const c = b;\n',
  }, (root) => checkLayers(root, POLICY));
  assert.deepEqual(report.violations, []);
  assert.equal(report.files, 5);
  assert.equal(report.imports, 5);
  assert.deepEqual(report.packages, ["high", "low", "mid"]);
});

Deno.test("checkLayers() finds a 2-file cycle: both edges, each with its cycle", async () => {
  const report = await withTree({
    "lib/low/a.ts": imp("./b.ts"),
    "lib/low/b.ts": imp("./a.ts"),
  }, (root) => checkLayers(root, POLICY));
  assert.deepEqual(report.violations.map(formatViolation), [
    "lib/low/a.ts -> lib/low/b.ts: file cycle (lib/low/a.ts -> lib/low/b.ts -> lib/low/a.ts)",
    "lib/low/b.ts -> lib/low/a.ts: file cycle (lib/low/b.ts -> lib/low/a.ts -> lib/low/b.ts)",
  ]);
});

Deno.test("checkLayers() finds a 3-file cycle and no edge off it", async () => {
  const report = await withTree({
    "lib/low/a.ts": imp("./b.ts"),
    "lib/low/b.ts": imp("./c.ts"),
    "lib/low/c.ts": 'import { x } from "./a.ts";\nimport { z } from "./d.ts";\n',
    "lib/low/d.ts": "export const z = 0;\n",
  }, (root) => checkLayers(root, POLICY));
  const v = report.violations;
  assert.deepEqual(v.map((e) => `${e.from} -> ${e.to}`), [
    "lib/low/a.ts -> lib/low/b.ts",
    "lib/low/b.ts -> lib/low/c.ts",
    "lib/low/c.ts -> lib/low/a.ts",
  ]);
  assert.ok(v.every((e) => e.rule === "file cycle"));
  assert.equal(v[0].detail, "lib/low/a.ts -> lib/low/b.ts -> lib/low/c.ts -> lib/low/a.ts");
});

Deno.test("checkLayers() finds a self-import", async () => {
  assert.deepEqual(await violations({ "lib/low/a.ts": imp("./a.ts") }), [
    "lib/low/a.ts -> lib/low/a.ts: file cycle",
  ]);
});

Deno.test("checkLayers() finds a package cycle that is no file cycle, and the upward edge in it", async () => {
  const report = await withTree({
    "lib/low/a.ts": imp("../mid/b.ts"),
    "lib/mid/b.ts": "export const x = 1;\n",
    "lib/mid/c.ts": imp("../low/d.ts"),
    "lib/low/d.ts": "export const x = 2;\n",
  }, (root) => checkLayers(root, POLICY));
  assert.deepEqual(report.violations.map(formatViolation), [
    "lib/low/a.ts -> lib/mid/b.ts: package cycle (low -> mid -> low)",
    "lib/mid/c.ts -> lib/low/d.ts: package cycle (mid -> low -> mid)",
    "lib/low/a.ts -> lib/mid/b.ts: upward (low (0) is below mid (1))",
  ]);
});

Deno.test("checkLayers() finds an upward edge without any cycle", async () => {
  assert.deepEqual(
    await violations({
      "lib/low/a.ts": imp("../high/b.ts"),
      "lib/high/b.ts": "export const x = 1;\n",
      "lib/mid/c.ts": imp("../low/a.ts"),
    }),
    ["lib/low/a.ts -> lib/high/b.ts: upward"],
  );
});

Deno.test("checkLayers() finds an import of another package's private file, not of its own", async () => {
  assert.deepEqual(
    await violations({
      "lib/low/_blas.ts": "export const x = 1;\n",
      "lib/low/ops.ts": imp("./_blas.ts"),
      "lib/mid/layers.ts": imp("../low/_blas.ts"),
    }),
    ["lib/mid/layers.ts -> lib/low/_blas.ts: private"],
  );
});

Deno.test("checkLayers() reports unlisted packages, missing files and imports out of lib/", async () => {
  const lines = await violations({
    "lib/low/a.ts": 'import "./gone.ts";\nimport { m } from "../../mod.ts";\n',
    "lib/extra/b.ts": "export const b = 1;\n",
    "mod.ts": 'export * from "./lib/low/a.ts";\n',
  });
  assert.deepEqual(lines, [
    "lib/extra/: unlisted package",
    "lib/low/a.ts -> lib/low/gone.ts: missing",
    "lib/low/a.ts -> mod.ts: outside lib",
  ]);
});

Deno.test("checkLayers() lets an allowed edge through for the rules it names only", async () => {
  const files = {
    "lib/low/a.ts": imp("../mid/_b.ts"),
    "lib/mid/_b.ts": "export const x = 1;\n",
  };
  assert.deepEqual(rules(await violations(files)), new Set(["upward", "private"]));
  const allow = [{ from: "lib/low/a.ts", to: "mid", rules: ["upward"] as Rule[], why: "test" }];
  assert.deepEqual(await violations(files, { ...POLICY, allow }), [
    "lib/low/a.ts -> lib/mid/_b.ts: private",
  ]);
});

Deno.test("checkLayers() follows import type, export * / export { } from, multi-line and dynamic imports", async () => {
  const upward = (src: string) => violations({ "lib/low/a.ts": src, "lib/high/b.ts": "" });
  const cases = [
    'import type { B } from "../high/b.ts";',
    'export * from "../high/b.ts";',
    'export * as b from "../high/b.ts";',
    'export type { B } from "../high/b.ts";',
    'export { b as c, type B } from "../high/b.ts";',
    'import {\n  b,\n  // a comment\n  type B,\n} from\n  "../high/b.ts";',
    'import def, * as all from "../high/b.ts"',
    'const m = await import("../high/b.ts");',
    'export type T = import("../high/b.ts").B;',
    "import { b } from '../high/b.ts'",
  ];
  for (const src of cases) {
    assert.deepEqual(await upward(src), ["lib/low/a.ts -> lib/high/b.ts: upward"], src);
  }
});

Deno.test("checkLayers() ignores imports in comments, strings, templates and of packages", async () => {
  const src = [
    "/**",
    " * @example",
    " * ```ts",
    ' * import { b } from "../high/b.ts";',
    " * ```",
    " */",
    '// import "../high/b.ts";',
    'const s = "import { b } from \\"../high/b.ts\\"";',
    'const t = `export * from "../high/b.ts"; ${1 + 2} import("../high/b.ts")`;',
    'const r = /import "..\\/high\\/b.ts"/;',
    'import * as tf from "@tensorflow/tfjs";',
    "const spec = '../high/b.ts'; await import(spec);",
    "export { s, t, r };",
    "export const u = import.meta.url;",
  ].join("\n");
  assert.deepEqual(await violations({ "lib/low/a.ts": src, "lib/high/b.ts": "" }), []);
});

Deno.test("parseImports() reports kind, type-only and line of each specifier", () => {
  const refs = parseImports([
    'import type { A } from "./a.ts";',
    'import type from "./type.ts";',
    "export {",
    "  b,",
    '} from "./b.ts";',
    "const x = { import: 1 }.import; export { x };",
    'const y = await import("./c.ts", { with: { type: "json" } });',
    "import './d.ts'",
  ].join("\n"));
  assert.deepEqual(refs, [
    { specifier: "./a.ts", line: 1, kind: "import", typeOnly: true },
    { specifier: "./type.ts", line: 2, kind: "import", typeOnly: false },
    { specifier: "./b.ts", line: 5, kind: "export", typeOnly: false },
    { specifier: "./c.ts", line: 7, kind: "dynamic", typeOnly: false },
    { specifier: "./d.ts", line: 8, kind: "import", typeOnly: false },
  ]);
});

Deno.test("checkLayers() notes tasks/ and tests/ imports that go past a mod.ts, without failing", async () => {
  const report = await withTree({
    "lib/low/a.ts": "export const a = 1;\n",
    "lib/low/mod.ts": 'export * from "./a.ts";\n',
    "tasks/t.ts": 'import { a } from "../lib/low/mod.ts";\nimport "../lib/low/a.ts";\n',
    "tests/a_test.ts": 'import { a } from "../lib/low/a.ts";\n',
  }, (root) => checkLayers(root, POLICY));
  assert.deepEqual(report.violations, []);
  assert.deepEqual(report.notes, [
    { from: "tasks/t.ts", to: "lib/low/a.ts" },
    { from: "tests/a_test.ts", to: "lib/low/a.ts" },
  ]);
});

Deno.test("check_layers.ts CLI: exit 0 and an ok line on a clean tree, exit 1 and one line per violation otherwise", async () => {
  const [lo, hi] = LAYERS.order;
  const run = (files: Record<string, string>) =>
    withTree(files, async (root) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "tools/check_layers.ts", `--root=${root}`],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, text: new TextDecoder().decode(out.stdout) };
    });
  const ok = await run({ [`lib/${hi}/b.ts`]: imp(`../${lo}/a.ts`), [`lib/${lo}/a.ts`]: "" });
  assert.equal(ok.code, 0, ok.text);
  assert.match(ok.text, /^check:layers: ok \(2 files, 1 relative import, 2 packages; \d+ ms\)\n$/);
  const bad = await run({ [`lib/${lo}/a.ts`]: imp(`../${hi}/b.ts`), [`lib/${hi}/b.ts`]: "" });
  assert.equal(bad.code, 1, bad.text);
  assert.ok(bad.text.includes(`lib/${lo}/a.ts -> lib/${hi}/b.ts: upward`), bad.text);
  assert.match(bad.text, /check:layers: FAILED, 1 violation \(1 upward\)/);
});

Deno.test("checkLayers() reads this project's lib/ in well under a second", async () => {
  const report = await checkLayers(new URL("..", import.meta.url).pathname.replace(/\/$/, ""));
  assert.ok(report.files > 50, `only ${report.files} files under lib/`);
  assert.ok(report.ms < 1000, `took ${report.ms.toFixed(0)} ms`);
  // every package of lib/ has a place in the order (the other rules are what check:layers is for)
  assert.deepEqual(report.violations.filter((v) => v.rule === "unlisted package"), []);
});
