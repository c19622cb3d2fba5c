/**
 * `deno task check:layers`: the layering of `lib/`, enforced.
 *
 * Every `.ts` file under `lib/` is read and its imports parsed (`import`, `import type`,
 * `export ... from`, and `import("...")` with a literal; see `_imports.ts`). Relative
 * specifiers are resolved to files; a package is the first folder under `lib/`. The rules:
 *
 * - `file cycle`: no cycle between files (each edge of each cycle is listed, with a shortest
 *   cycle through it);
 * - `package cycle`: no cycle between packages;
 * - `upward`: a package imports only packages below it in {@link LAYERS}`.order`;
 * - `private`: no import of another package's private file (`_name.ts`);
 * - `outside lib`: `lib/` imports nothing outside `lib/` (the root `mod.ts` re-exports all of
 *   `lib/`, so that is a cycle; tasks and tests sit above `lib/`);
 * - `missing`: a relative import names a file that does not exist.
 *
 * It prints each violation as `lib/a/x.ts -> lib/b/y.ts: <rule>` and exits 1 if there is any;
 * otherwise one `ok` line with counts. Imports of `lib/` from `tasks/`, `bench/`, `tests/` and
 * `tests_faults/` that go past a `mod.ts` are notes, not failures (`--notes` lists them).
 *
 * Usage: `deno run --allow-read tools/check_layers.ts [--root=DIR] [--notes]`.
 *
 * @module
 */

import { parseImports } from "./_imports.ts";

/** An import edge that a rule lets through, with the reason. */
export interface LayerException {
  /** The importing file (`lib/a/x.ts`) or package (`a`). */
  from: string;
  /** The imported file (`lib/b/y.ts`) or package (`b`). */
  to: string;
  /** The rules it waives. */
  rules: readonly Rule[];
  /** Why the exception is right (or who removes it, and when). */
  why: string;
}

/** The layering: packages from the lowest, and the edges allowed to break a rule. */
export interface LayerPolicy {
  /** Packages, lowest first: each may import only the packages before it. */
  order: readonly string[];
  /** Edges that may break a rule. */
  allow: readonly LayerException[];
}

/**
 * The layer order of `lib/` (lowest first) and its exceptions, in one place, read from the
 * imports as they are (after `train` was split into `optim`, `run` and `pretrain`):
 *
 * - `util` (rng, fs, base64) imports nothing of ours; `backend` (tfjs start-up, fused kernels)
 *   only util.
 * - `data` (readers, augmentation, batches) and `vit` (layers, encoder, presets; calls
 *   `backend`'s ops) are the components; `mim` (the mask-plan seam, MAE, SimMIM, the method
 *   registry) builds on both, and `amt` (saliency, sampler, planner) plugs into `mim`.
 * - `viz` draws plans, maps and curves, so it sits above `mim` and `amt` (it takes the
 *   plan types and the sampler); they hand it arrays (saliency maps, reconstructed pixels) and
 *   do not import it: `pretrain` draws their figures.
 * - `optim` (AdamW, lr schedules) needs only `vit`'s parameters and `backend`'s kernels; run
 *   state saves an optimiser, so it sits below `run`.
 * - `config` is the experiment tree: it checks names against `data` and `vit` presets and
 *   resolves `mim`'s count rule, so it sits above the components. They take plain options
 *   (`AdamWOptions`, `MaeOptions`, a `VitShape`), never the tree; whatever builds a component
 *   from a `Config` lives above `config`.
 * - `run` (run folders, metrics, progress, checkpoints, state, loading a run) is the
 *   machinery of every experiment; `eval` (features, probe, kNN, fine-tune) uses it;
 *   `interop` (weights in and out in timm / Hugging Face names, features as `.npy`) reads and
 *   writes run folders and uses `eval`'s feature extraction;
 *   `pretrain` (the loop) calls `eval`'s kNN monitor and attention share; `detect` fine-tunes
 *   a pre-trained encoder; `repro` runs it all and writes the tables.
 *
 * `allow` is empty: a known cycle is fixed, not waived. An entry names an edge by file
 * (`lib/a/x.ts`) or package (`a`), the rules it waives, and why.
 */
export const LAYERS: LayerPolicy = {
  order: [
    "util",
    "backend",
    "data",
    "vit",
    "mim",
    "amt",
    "viz",
    "optim",
    "config",
    "run",
    "eval",
    "interop",
    "pretrain",
    "detect",
    "repro",
  ],
  allow: [],
};

/** The rules a violation can break. */
export type Rule =
  | "file cycle"
  | "package cycle"
  | "upward"
  | "private"
  | "outside lib"
  | "missing"
  | "unlisted package";

/** One broken rule on one import edge (`to` is "" for a package that is not in the order). */
export interface Violation {
  from: string;
  to: string;
  rule: Rule;
  /** The cycle, or the two packages' levels. */
  detail: string;
}

/** An import of `lib/` from tasks/bench/tests that goes past a `mod.ts`. */
export interface Note {
  from: string;
  to: string;
}

/** What {@link checkLayers} found. */
export interface LayerReport {
  files: number;
  imports: number;
  packages: string[];
  violations: Violation[];
  notes: Note[];
  /** Milliseconds spent. */
  ms: number;
}

/** Folders above `lib/` whose imports of it are noted when they go past a `mod.ts`. */
const CLIENT_DIRS = ["tasks", "bench", "tests", "tests_faults"];
const SOURCE = /\.(ts|tsx|mts)$/;

interface Edge {
  from: string;
  to: string;
  line: number;
}

function listFiles(dir: string, rel: string, out: string[]): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${dir}/${rel}`)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const e of entries) {
    const path = `${rel}/${e.name}`;
    if (e.isDirectory) {
      if (e.name === "node_modules" || e.name === "testdata" || e.name.startsWith(".")) continue;
      listFiles(dir, path, out);
    } else if (e.isFile && SOURCE.test(e.name) && !e.name.endsWith(".d.ts")) {
      out.push(path);
    }
  }
}

/** `a/b/../c.ts` -> `a/c.ts`; null if it climbs above the root. */
function normalize(path: string): string | null {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(p);
  }
  return parts.join("/");
}

function resolve(from: string, specifier: string): string | null {
  const dir = from.slice(0, from.lastIndexOf("/") + 1);
  return normalize(dir + specifier.split(/[?#]/)[0]);
}

/** `lib/a/x.ts` -> `a`; "" for a file directly in lib/ or outside it. */
export function packageOf(path: string): string {
  const parts = path.split("/");
  return parts[0] === "lib" && parts.length > 2 ? parts[1] : "";
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function matches(pattern: string, path: string): boolean {
  return pattern.includes("/") ? pattern === path : pattern === packageOf(path);
}

function allowed(policy: LayerPolicy, from: string, to: string, rule: Rule): boolean {
  return policy.allow.some((a) =>
    a.rules.includes(rule) && matches(a.from, from) && matches(a.to, to)
  );
}

/** Tarjan's strongly connected components; returns a component id per node. */
function components(nodes: string[], next: Map<string, Set<string>>): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const comp = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let counter = 0;
  let ncomp = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.set(w, ncomp);
      } while (w !== v);
      ncomp++;
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return comp;
}

/** A shortest path from `a` to `b` inside one component (BFS), as a node list. */
function shortestPath(
  a: string,
  b: string,
  next: Map<string, Set<string>>,
  comp: Map<string, number>,
): string[] {
  const c = comp.get(a);
  const prev = new Map<string, string>([[a, a]]);
  const queue = [a];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    if (v === b) break;
    for (const w of [...(next.get(v) ?? [])].sort()) {
      if (comp.get(w) !== c || prev.has(w)) continue;
      prev.set(w, v);
      queue.push(w);
    }
  }
  const path = [b];
  while (path[0] !== a) path.unshift(prev.get(path[0])!);
  return path;
}

/**
 * Every edge `u -> v` that lies on a cycle (u and v in one strongly connected component, or a
 * self-import), with a shortest cycle through it.
 */
function cycleEdges(
  nodes: string[],
  edges: Iterable<[string, string]>,
): { from: string; to: string; cycle: string[] }[] {
  const next = new Map<string, Set<string>>();
  const pairs: [string, string][] = [];
  for (const [u, v] of edges) {
    if (!next.has(u)) next.set(u, new Set());
    if (next.get(u)!.has(v)) continue;
    next.get(u)!.add(v);
    pairs.push([u, v]);
  }
  const comp = components(nodes, next);
  const out: { from: string; to: string; cycle: string[] }[] = [];
  for (const [u, v] of pairs) {
    if (comp.get(u) !== comp.get(v)) continue;
    out.push({ from: u, to: v, cycle: u === v ? [u, u] : [u, ...shortestPath(v, u, next, comp)] });
  }
  return out;
}

/**
 * Checks the layering of the `lib/` tree under `root` (a project folder) against `policy`.
 *
 * @example
 * ```ts ignore
 * import { checkLayers } from "./check_layers.ts";
 * const report = await checkLayers(".");
 * for (const v of report.violations) console.log(`${v.from} -> ${v.to}: ${v.rule}`);
 * ```
 */
export async function checkLayers(
  root: string,
  policy: LayerPolicy = LAYERS,
): Promise<LayerReport> {
  const t0 = performance.now();
  const files: string[] = [];
  listFiles(root, "lib", files);
  files.sort();
  const fileSet = new Set(files);
  const edges: Edge[] = [];
  const violations: Violation[] = [];
  let imports = 0;
  const seen = new Set<string>();

  for (const from of files) {
    if (from.endsWith("_test.ts")) continue; // tests beside code sit above it
    const refs = parseImports(await Deno.readTextFile(`${root}/${from}`));
    for (const ref of refs) {
      if (!ref.specifier.startsWith("./") && !ref.specifier.startsWith("../")) continue;
      imports++;
      const to = resolve(from, ref.specifier);
      if (to === null || !to.startsWith("lib/")) {
        const shown = to ?? ref.specifier;
        if (!allowed(policy, from, shown, "outside lib")) {
          violations.push({ from, to: shown, rule: "outside lib", detail: `line ${ref.line}` });
        }
        continue;
      }
      if (!fileSet.has(to)) {
        let exists = false;
        try {
          exists = Deno.statSync(`${root}/${to}`).isFile;
        } catch { /* missing */ }
        if (!exists) {
          violations.push({ from, to, rule: "missing", detail: `line ${ref.line}` });
          continue;
        }
      }
      const key = `${from} ${to}`;
      if (seen.has(key)) continue; // `import type` and `import` of one file: one edge
      seen.add(key);
      edges.push({ from, to, line: ref.line });
    }
  }

  const rank = new Map(policy.order.map((p, i) => [p, i]));
  const packages = [...new Set(files.map(packageOf))].sort();
  for (const p of packages) {
    if (!rank.has(p)) {
      violations.push({
        from: p === "" ? "lib/" : `lib/${p}/`,
        to: "",
        rule: "unlisted package",
        detail: p === ""
          ? "files directly in lib/ belong to no package; move them into one"
          : `add "${p}" to LAYERS.order at its level`,
      });
    }
  }

  // (a) file cycles
  for (const c of cycleEdges(files, edges.map((e) => [e.from, e.to]))) {
    if (allowed(policy, c.from, c.to, "file cycle")) continue;
    violations.push({ ...c, rule: "file cycle", detail: c.cycle.join(" -> ") });
  }

  // (b) package cycles: every file edge that makes a package edge on a cycle
  const pkgEdges = edges
    .map((e) => [packageOf(e.from), packageOf(e.to)] as [string, string])
    .filter(([a, b]) => a !== b);
  const onCycle = new Map<string, string[]>();
  for (const c of cycleEdges(packages, pkgEdges)) onCycle.set(`${c.from} ${c.to}`, c.cycle);

  for (const e of edges) {
    const a = packageOf(e.from);
    const b = packageOf(e.to);
    if (a === b) continue;
    const cycle = onCycle.get(`${a} ${b}`);
    if (cycle !== undefined && !allowed(policy, e.from, e.to, "package cycle")) {
      violations.push({
        from: e.from,
        to: e.to,
        rule: "package cycle",
        detail: cycle.join(" -> "),
      });
    }
    // (c) upward
    const ra = rank.get(a);
    const rb = rank.get(b);
    if (
      ra !== undefined && rb !== undefined && rb > ra && !allowed(policy, e.from, e.to, "upward")
    ) {
      violations.push({
        from: e.from,
        to: e.to,
        rule: "upward",
        detail: `${a} (${ra}) is below ${b} (${rb})`,
      });
    }
    // (d) private
    if (baseName(e.to).startsWith("_") && !allowed(policy, e.from, e.to, "private")) {
      violations.push({
        from: e.from,
        to: e.to,
        rule: "private",
        detail: `${baseName(e.to)} is private to ${b}`,
      });
    }
  }

  // notes: clients of lib that go past a mod.ts
  const notes: Note[] = [];
  for (const dir of CLIENT_DIRS) {
    const client: string[] = [];
    listFiles(root, dir, client);
    for (const from of client.sort()) {
      const seen = new Set<string>();
      for (const ref of parseImports(await Deno.readTextFile(`${root}/${from}`))) {
        if (!ref.specifier.startsWith(".")) continue;
        const to = resolve(from, ref.specifier);
        if (to === null || !to.startsWith("lib/") || baseName(to) === "mod.ts" || seen.has(to)) {
          continue;
        }
        seen.add(to);
        notes.push({ from, to });
      }
    }
  }

  const order: Record<Rule, number> = {
    "unlisted package": 0,
    "missing": 1,
    "outside lib": 2,
    "file cycle": 3,
    "package cycle": 4,
    "upward": 5,
    "private": 6,
  };
  violations.sort((x, y) =>
    order[x.rule] - order[y.rule] || x.from.localeCompare(y.from) || x.to.localeCompare(y.to)
  );
  return { files: files.length, imports, packages, violations, notes, ms: performance.now() - t0 };
}

/** One line per violation: `lib/a/x.ts -> lib/b/y.ts: rule (detail)`. */
export function formatViolation(v: Violation): string {
  const edge = v.to === "" ? v.from : `${v.from} -> ${v.to}`;
  return `${edge}: ${v.rule}${v.detail ? ` (${v.detail})` : ""}`;
}

/** `1 file`, `2 files`. */
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

if (import.meta.main) {
  const rootArg = Deno.args.find((a) => a.startsWith("--root="));
  const root = rootArg ? rootArg.slice("--root=".length) : new URL("..", import.meta.url).pathname;
  const listNotes = Deno.args.includes("--notes");
  const report = await checkLayers(root.replace(/\/$/, ""));
  const counts = `${plural(report.files, "file")}, ${plural(report.imports, "relative import")}, ${
    plural(report.packages.length, "package")
  }`;
  if (report.notes.length > 0) {
    if (listNotes) {
      for (const n of report.notes) console.log(`note: ${n.from} -> ${n.to}: past a mod.ts`);
    }
    const byDir = new Map<string, number>();
    for (const n of report.notes) {
      const d = n.from.split("/")[0];
      byDir.set(d, (byDir.get(d) ?? 0) + 1);
    }
    const parts = [...byDir].map(([d, k]) => `${d}/ ${k}`).join(", ");
    console.log(
      `note: ${plural(report.notes.length, "import")} of lib/ past a mod.ts (${parts}); ` +
        `not failures${listNotes ? "" : ", --notes lists them"}`,
    );
  }
  if (report.violations.length > 0) {
    for (const v of report.violations) console.log(formatViolation(v));
    const byRule = new Map<string, number>();
    for (const v of report.violations) byRule.set(v.rule, (byRule.get(v.rule) ?? 0) + 1);
    const parts = [...byRule].map(([r, k]) => `${k} ${r}`).join(", ");
    console.log(
      `check:layers: FAILED, ${plural(report.violations.length, "violation")} (${parts}); ` +
        `${counts}; order ${LAYERS.order.join(" < ")}`,
    );
    Deno.exit(1);
  }
  console.log(`check:layers: ok (${counts}; ${report.ms.toFixed(0)} ms)`);
}
