/**
 * The optional native backends: `tensorflow` (tfjs-node / tfjs-node-gpu, libtensorflow) and
 * `webgpu` (tfjs-backend-webgpu on Deno's `navigator.gpu`).
 *
 * tfjs-node is never imported unless its package folder already exists, so probing cannot make
 * Deno download it (with `"nodeModulesDir": "auto"` an unknown `npm:` import would be fetched).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** tfjs-node packages in the order `auto` prefers them. */
export const NATIVE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
export type NativePackage = typeof NATIVE_PACKAGES[number];

/** The version tfjs-node must have to share this project's tfjs-core. */
export const TFJS_VERSION = "4.22.0";

/** How to install tfjs-node, for error messages and docs. */
export const TFJS_NODE_INSTALL = `install tfjs-node where the internet is reachable: ` +
  `\`deno add npm:@tensorflow/tfjs-node@${TFJS_VERSION}\` then ` +
  "`deno install --allow-scripts=npm:@tensorflow/tfjs-node` (its install script downloads " +
  `libtensorflow), or \`npm i @tensorflow/tfjs-node@${TFJS_VERSION}\` in the project folder; ` +
  "use tfjs-node-gpu instead for CUDA";

/** Folders whose `node_modules/` may hold tfjs-node: the project root, then the cwd. */
function searchRoots(): string[] {
  const roots: string[] = [];
  const here = new URL("../../", import.meta.url); // lib/backend/ -> project root
  if (here.protocol === "file:") roots.push(here.pathname);
  try {
    const cwd = Deno.cwd().replace(/\/?$/, "/");
    if (!roots.includes(cwd)) roots.push(cwd);
  } catch {
    // No read permission for the cwd; the project root is enough.
  }
  return roots;
}

/** Where `pkg` is installed (its folder), or null. Reads the file system only. */
export function findNativePackage(pkg: NativePackage): { dir: string; version: string } | null {
  for (const root of searchRoots()) {
    const dir = `${root}node_modules/${pkg}/`;
    try {
      const meta = JSON.parse(Deno.readTextFileSync(`${dir}package.json`));
      return { dir, version: String(meta.version ?? "") };
    } catch {
      // Not here.
    }
  }
  return null;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/**
 * Imports an installed tfjs-node package and switches to its `tensorflow` backend.
 * Throws with the reason when that fails.
 */
export async function startTfjsNode(pkg: NativePackage): Promise<string> {
  const found = findNativePackage(pkg);
  if (found === null) throw new Error(`${pkg} is not installed`);
  if (found.version !== TFJS_VERSION) {
    throw new Error(
      `${pkg}@${found.version} is installed but this project pins tfjs ${TFJS_VERSION}; ` +
        `install ${pkg}@${TFJS_VERSION} so both share one tfjs-core`,
    );
  }
  // A bare name works after `deno add` (import map) or `npm i` (package.json); the versioned
  // npm: form covers a node_modules folder filled some other way. Specifiers are built at run
  // time so `deno check` / `deno cache` never try to fetch them.
  const specifiers = [pkg, `npm:${pkg}@${found.version}`];
  const errors: string[] = [];
  for (const spec of specifiers) {
    try {
      await import(spec);
      if (!(await tf.setBackend("tensorflow"))) throw new Error("tf.setBackend returned false");
      return `${pkg}@${found.version}`;
    } catch (e) {
      errors.push(`${spec}: ${errorText(e)}`);
    }
  }
  throw new Error(`${pkg} is installed but failed to load (${errors.join("; ")})`);
}

/** Starts the WebGPU backend, or throws a message naming the backend and the way out. */
export async function startWebgpu(): Promise<string> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (gpu === undefined || gpu === null) {
    throw new Error(
      "backend webgpu: navigator.gpu is not available in this runtime; " +
        "run with --backend=wasm (or --backend=cpu)",
    );
  }
  const adapter = await gpu.requestAdapter();
  if (adapter === null) {
    throw new Error(
      "backend webgpu: navigator.gpu.requestAdapter() found no GPU adapter (no GPU, or no " +
        "Vulkan/Metal driver; on Linux `apt-get install mesa-vulkan-drivers` gives a slow " +
        "software adapter); run with --backend=wasm",
    );
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  let ok = false;
  try {
    ok = await tf.setBackend("webgpu");
  } catch (e) {
    throw new Error(`backend webgpu: failed to start (${errorText(e)}); run with --backend=wasm`);
  }
  if (!ok) throw new Error("backend webgpu: failed to start; run with --backend=wasm");
  const info = adapter.info;
  const name = info.description || info.vendor || "unknown adapter";
  return info.isFallbackAdapter ? `${name}, software fallback adapter` : name;
}
