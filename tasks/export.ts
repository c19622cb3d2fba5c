/**
 * `deno task export --ckpt=RUN_DIR [--out=DIR]`
 *
 * Writes a run's newest checkpoint as `DIR/model.safetensors` (default `RUN_DIR/export/`):
 * the encoder in timm `VisionTransformer` names and layouts (loads with `strict=True` into
 * `timm.models.vision_transformer.VisionTransformer(..., num_classes=0, global_pool="token")`),
 * plus MAE's decoder or SimMIM's head in their own names; and `DIR/config.json` with the
 * model arguments and the run's mean / std (`pretrained_cfg`).
 */
import { exportTask, parseTask, runTask, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "export",
  usage: "--ckpt=RUN_DIR [--out=DIR]",
  keys: [],
  positional: "RUN_DIR (the same as --ckpt)",
  flags: {
    "ckpt=RUN_DIR": "run folder to export (required)",
    "out=DIR": "output folder (default RUN_DIR/export)",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args);
    if (args.help) return console.log(taskHelp(TASK));
    await exportTask(args);
  });
}
