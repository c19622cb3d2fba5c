/**
 * `deno task pretrain --config configs/<exp>.yaml [--section.key=value ...]`
 *
 * Pre-trains a MIM model (MAE / SimMIM, random or AMT masking) and writes a run
 * folder. Running the same command on an unfinished run folder resumes it; a
 * second process on a folder that another one is writing exits at once with
 * status 2, naming the other process.
 */
import { ConfigError, formatHelp, resolveConfig } from "../mod.ts";
import { pretrain, RunLockedError } from "../mod.ts";

if (import.meta.main) {
  try {
    if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
      console.log("usage: deno task pretrain --config FILE [--section.key=value ...]\n");
      console.log(formatHelp());
      Deno.exit(0);
    }
    const { config } = resolveConfig({ argv: Deno.args });
    await pretrain(config);
  } catch (e) {
    if (
      e instanceof ConfigError || e instanceof RangeError || e instanceof RunLockedError ||
      (e as Error).name === "DataError"
    ) {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
