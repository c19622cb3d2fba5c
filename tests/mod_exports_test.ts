/**
 * The public API is a conscious choice. The root `mod.ts` exports exactly the names listed in
 * `mod_exports.snapshot.txt` (one `area name` per line, `area type Name` for a type-only export),
 * each re-exported by name from a `lib/<area>/mod.ts` (never from a private `_file.ts`, never
 * with `export *`); every `lib/<area>/mod.ts` exports only from its own package. After changing
 * the API on purpose, rewrite the snapshot with
 * `deno test -A tests/mod_exports_test.ts -- --update` and commit both.
 *
 * The exports are read from the sources with the lexer of `tools/_imports.ts` (comments and
 * strings skipped); the value names are checked against the module's runtime exports, so the
 * reader cannot drift from what `mod.ts` really exports.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tokenize } from "../tools/_imports.ts";

const ROOT = new URL("../", import.meta.url);
const SNAPSHOT = new URL("./mod_exports.snapshot.txt", import.meta.url);
const UPDATE = Deno.args.includes("--update");
/** The most names the root may export before it stops being a chosen API. */
const MAX_ROOT_NAMES = 200;

/** One name of an `export { ... }` clause. */
interface ExportedName {
  /** The name importers see (after `as`). */
  name: string;
  /** Type-only (`export type { A }` or `export { type A }`). */
  type: boolean;
}

/** One `export` statement of a module. */
interface ExportStatement {
  kind: "named" | "star" | "namespace" | "declaration";
  /** The `from "..."` specifier; null for a declaration or a local `export { a }`. */
  from: string | null;
  names: ExportedName[];
  line: number;
}

/** Every `export` statement of `src`, in source order. */
function parseExports(src: string): ExportStatement[] {
  const t = tokenize(src);
  const out: ExportStatement[] = [];
  const isPunct = (k: number, v: string) => t[k]?.type === "punct" && t[k].value === v;
  const isId = (k: number, v?: string) =>
    t[k]?.type === "id" && (v === undefined || t[k].value === v);
  const fromAt = (k: number): string | null =>
    isId(k, "from") && t[k + 1]?.type === "str" ? t[k + 1].value : null;

  for (let k = 0; k < t.length; k++) {
    if (!isId(k, "export") || isPunct(k - 1, ".")) continue;
    const line = t[k].line;
    let j = k + 1;
    const typeOnly = isId(j, "type") && (isPunct(j + 1, "{") || isPunct(j + 1, "*"));
    if (typeOnly) j++;
    if (isPunct(j, "*")) {
      j++;
      if (isId(j, "as")) {
        const name = t[j + 1].value;
        out.push({
          kind: "namespace",
          from: fromAt(j + 2),
          names: [{ name, type: typeOnly }],
          line,
        });
      } else {
        out.push({ kind: "star", from: fromAt(j), names: [], line });
      }
      continue;
    }
    if (isPunct(j, "{")) {
      const names: ExportedName[] = [];
      j++;
      while (j < t.length && !isPunct(j, "}")) {
        let type = typeOnly;
        // `type A` marks one name; a name that is itself `type` is followed by `,`, `}` or `as`
        if (isId(j, "type") && (isId(j + 1) || t[j + 1]?.type === "str") && !isId(j + 1, "as")) {
          type = true;
          j++;
        }
        let name = t[j].value;
        j++;
        if (isId(j, "as")) {
          name = t[j + 1].value;
          j += 2;
        }
        names.push({ name, type });
        if (isPunct(j, ",")) j++;
      }
      out.push({ kind: "named", from: fromAt(j + 1), names, line });
      k = j;
      continue;
    }
    // a declaration: `export [declare] [async|abstract] function|class|const|... Name`
    while (isId(j, "declare") || isId(j, "async") || isId(j, "abstract") || isId(j, "default")) j++;
    const keyword = t[j]?.value ?? "";
    const name = isId(j + 1) ? t[j + 1].value : keyword;
    const type = keyword === "interface" || keyword === "type";
    out.push({ kind: "declaration", from: null, names: [{ name, type }], line });
  }
  return out;
}

/** The `lib/<area>/mod.ts` files, by area. */
function areaMods(): string[] {
  const areas: string[] = [];
  for (const e of Deno.readDirSync(new URL("lib/", ROOT))) {
    if (e.isDirectory) areas.push(e.name);
  }
  return areas.sort();
}

/** The root's exports as snapshot lines (`area name`, `area type Name`), in mod.ts order. */
function rootLines(statements: ExportStatement[]): string[] {
  const lines: string[] = [];
  for (const s of statements) {
    const area = /^\.\/lib\/([^/]+)\/mod\.ts$/.exec(s.from ?? "")?.[1] ?? `?${s.from}`;
    for (const n of s.names) lines.push(`${area} ${n.type ? "type " : ""}${n.name}`);
  }
  return lines;
}

const rootSrc = Deno.readTextFileSync(new URL("mod.ts", ROOT));
const root = parseExports(rootSrc);

Deno.test("parseExports() reads named, type-only, renamed, star and declared exports", () => {
  const got = parseExports(
    [
      "// export * from './commented.ts';",
      'export { a, type B, c as d } from "./x.ts";',
      'export type { E } from "./y.ts";',
      'export * as ns from "./z.ts";',
      'export * from "./w.ts";',
      "export async function f() {}",
      "export interface I {}",
      'const s = "export { no }";',
    ].join("\n"),
  );
  assert.deepEqual(
    got.map((s) => [s.kind, s.from, s.names.map((n) => (n.type ? "type " : "") + n.name)]),
    [
      ["named", "./x.ts", ["a", "type B", "d"]],
      ["named", "./y.ts", ["type E"]],
      ["namespace", "./z.ts", ["ns"]],
      ["star", "./w.ts", []],
      ["declaration", null, ["f"]],
      ["declaration", null, ["type I"]],
    ],
  );
});

Deno.test("mod.ts re-exports by name from lib/<area>/mod.ts only: no export *, no declarations, no _ file", () => {
  const bad = root.filter((s) =>
    s.kind !== "named" || s.from === null || !/^\.\/lib\/[a-z][a-z0-9_]*\/mod\.ts$/.test(s.from)
  ).map((s) => `mod.ts:${s.line}: ${s.kind} export${s.from ? ` from "${s.from}"` : ""}`);
  const privateFiles = root.filter((s) => (s.from ?? "").split("/").some((p) => p.startsWith("_")))
    .map((s) => `mod.ts:${s.line}: from private "${s.from}"`);
  assert.deepEqual([...bad, ...privateFiles], []);
});

Deno.test("mod.ts exports exactly the names in tests/mod_exports.snapshot.txt", async () => {
  const lines = rootLines(root);
  const dup = lines.filter((l, i) => lines.indexOf(l) !== i);
  assert.deepEqual(dup, [], "names exported twice");
  if (UPDATE) {
    const head = [
      "# The public API of mod.ts, pinned by tests/mod_exports_test.ts: `area name` per line,",
      "# `area type Name` for a type-only export. Change it on purpose: edit mod.ts, then run",
      "# `deno test -A tests/mod_exports_test.ts -- --update` and commit both files.",
    ];
    await Deno.writeTextFile(SNAPSHOT, [...head, ...lines, ""].join("\n"));
  }
  const pinned = (await Deno.readTextFile(SNAPSHOT)).split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const added = lines.filter((l) => !pinned.includes(l));
  const removed = pinned.filter((l) => !lines.includes(l));
  assert.deepEqual(
    { added, removed },
    { added: [], removed: [] },
    "mod.ts and tests/mod_exports.snapshot.txt differ; if the change is meant, run " +
      "`deno test -A tests/mod_exports_test.ts -- --update` and commit the snapshot",
  );
  assert.ok(
    lines.length <= MAX_ROOT_NAMES,
    `mod.ts exports ${lines.length} names; the public API stays under ${MAX_ROOT_NAMES}: ` +
      "export the rest from lib/<area>/mod.ts only",
  );
});

Deno.test("mod.ts value exports are the names the module exports at run time", async () => {
  const values = root.flatMap((s) => s.names.filter((n) => !n.type).map((n) => n.name)).sort();
  const runtime = Object.keys(await import("../mod.ts")).sort();
  assert.deepEqual(runtime, values);
});

Deno.test("every lib/<area>/ has a mod.ts that exports by name, and only from its own package", () => {
  const bad: string[] = [];
  for (const area of areaMods()) {
    const url = new URL(`lib/${area}/mod.ts`, ROOT);
    let src: string;
    try {
      src = Deno.readTextFileSync(url);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      bad.push(`lib/${area}/: no mod.ts`);
      continue;
    }
    const pkg = new URL(`lib/${area}/`, ROOT).href;
    for (const s of parseExports(src)) {
      const at = `lib/${area}/mod.ts:${s.line}`;
      if (s.kind === "star") bad.push(`${at}: export * from "${s.from}" (list the names)`);
      if (s.from === null) continue;
      if (!s.from.startsWith(".") || !new URL(s.from, url).href.startsWith(pkg)) {
        bad.push(`${at}: exports from "${s.from}", outside lib/${area}/`);
      }
    }
  }
  assert.deepEqual(bad, []);
});
