/**
 * `deno task plots --run.dir=DIR [--images=N] [--backend=auto]`
 *
 * Regenerates every figure of a pre-training run folder (`DIR/plots/*.png`)
 * from the folder alone: loss / lr / accuracy curves from its metrics files,
 * and the image | saliency | mask plan | reconstruction grid from its config
 * and checkpoint.
 */
import { initBackend, writeAllRunFigures } from "../mod.ts";

const USAGE = "usage: deno task plots --run.dir=DIR [--images=N] [--backend=auto|wasm|cpu]";

/** `--key=value` or `--key value` flags. */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) flags.set(a.slice(2), argv[++i]);
    else flags.set(a.slice(2), "true");
  }
  return flags;
}

if (import.meta.main) {
  try {
    const flags = parseFlags(Deno.args);
    if (flags.has("help") || flags.has("h")) {
      console.log(USAGE);
      Deno.exit(0);
    }
    const known = new Set(["run.dir", "images", "backend"]);
    for (const k of flags.keys()) {
      if (!known.has(k)) throw new Error(`unknown flag --${k}\n${USAGE}`);
    }
    const dir = flags.get("run.dir");
    if (!dir) throw new Error(`--run.dir is required\n${USAGE}`);
    const images = flags.has("images") ? Number(flags.get("images")) : undefined;
    if (images !== undefined && !(Number.isInteger(images) && images >= 0)) {
      throw new Error(`--images=${flags.get("images")}: expected an integer >= 0`);
    }
    await initBackend({ backend: (flags.get("backend") ?? "auto") as "auto", quiet: true });
    const t0 = performance.now();
    const { written, skipped } = await writeAllRunFigures(dir.replace(/\/+$/, ""), { images });
    for (const path of written) console.log(`wrote ${path}`);
    console.log(
      `${written.length} figures, ${skipped.length} skipped (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s)`,
    );
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
