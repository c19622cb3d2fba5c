/**
 * `run.json` and `summary.json` as types: what a pre-training run records
 * about its data, model and machine when it starts, and what it measured
 * when it finished. Both are written atomically (lib/util/fs.ts) as pretty
 * JSON with a final newline.
 *
 * @module
 */
import { writeFileAtomic } from "../util/fs.ts";
import type { VitShape } from "../vit/presets.ts";
import { pathExists, runPaths } from "./folder.ts";

/**
 * `run.json`: written when a run starts (again on each resume). Fields
 * marked optional are absent from folders written before they were recorded.
 */
export interface RunInfo {
  /** tfjs backend that trained (`wasm`, `cpu`, ...). */
  backend: string;
  threads: number;
  simd?: boolean;
  /** What the backend said about itself ("" when nothing). */
  backendNote?: string;
  /** The native BLAS behind wasm's matmul, or why there is none; null off wasm. */
  matmul?: string | null;
  /**
   * Matmul precision of this invocation (`fp32` / `bf16`) and why (`train.precision` resolved);
   * a resume may use another (checkpoints hold fp32 master weights).
   */
  precision?: string;
  precisionReason?: string;
  /** Dataset name and the images one epoch draws from. */
  dataset: string;
  images: number;
  channels: number;
  /** Per-channel normalisation the images were trained with. */
  mean: readonly number[];
  std: readonly number[];
  /**
   * Whose normalisation the run's images get: `"dataset"` (absent: the dataset's own
   * constants, which `mean` / `std` then repeat) or `"run"` (`mean` / `std` above replace the
   * dataset's wherever the run is read: evaluations, figures, continued pre-training; set by
   * `deno task import` from the weights' `config.json`). See {@linkcode runNormalization}.
   */
  normalization?: "dataset" | "run";
  /** Where imported weights came from (`deno task import`); absent for trained runs. */
  imported?: ImportedFrom;
  /** Model input side in pixels. */
  imageSize: number;
  shape?: VitShape;
  /** Trainable scalars of the model. */
  parameters?: number;
  stepsPerEpoch: number;
  totalSteps: number;
  deno?: string;
  tfjs?: string;
  /** Commit of the checkout (`-dirty` with changes), null outside git. */
  gitCommit?: string | null;
  /** The command line that started this invocation. */
  command?: string;
}

/** What `run.json` records about imported weights. */
export interface ImportedFrom {
  /** The `.safetensors` file, as given. */
  weights: string;
  /** The `config.json` the shape and normalisation came from. */
  config: string;
  /** The naming the tensors were read in (`timm`, `hf-vitmae`). */
  format: string;
  /** `config.json`'s `architecture` (or `architectures[0]`), when it has one. */
  architecture?: string;
  /** Tensors of the file that were not used (a classifier head...). */
  ignored?: string[];
}

/** Per-channel mean and std of pixels scaled to [0, 1]. */
export interface RunNormalization {
  mean: readonly number[];
  std: readonly number[];
}

/**
 * The normalisation that replaces the dataset's own for this run: `mean` / `std` of `run.json`
 * when it says `normalization: "run"`, else undefined (the dataset's constants, the default).
 */
export function runNormalization(
  info: Pick<RunInfo, "mean" | "std" | "normalization">,
): RunNormalization | undefined {
  return info.normalization === "run" ? { mean: info.mean, std: info.std } : undefined;
}

/** `summary.json`: written once, when the last step is done. */
export interface RunSummary {
  /** Optimiser steps. */
  steps: number;
  /** Epoch records in `metrics.jsonl`. */
  epochs: number;
  /** First and last step loss of the whole run (across resumes). */
  firstLoss: number;
  finalLoss: number;
  /** Sum of the epochs' wall time, saliency passes included. */
  pretrainSeconds: number;
  /** Sum of the epochs' saliency-pass time (AMT). */
  saliencySeconds: number;
  /** `saliencySeconds / pretrainSeconds` (0 when no time was recorded). */
  saliencyShare: number;
  /** Equals `pretrainSeconds`. */
  seconds: number;
}

function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** Write `<dir>/run.json` atomically. */
export async function writeRunInfo(dir: string, info: RunInfo): Promise<void> {
  await writeFileAtomic(runPaths(dir).run, prettyJson(info));
}

/** Read `<dir>/run.json`; the error names the file and asks whether `dir` is a run folder. */
export async function readRunInfo(dir: string): Promise<RunInfo> {
  const path = runPaths(dir).run;
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `${path}: cannot read it (${(e as Error).message}); is ${dir} a pre-training run folder?`,
    );
  }
}

/** Write `<dir>/summary.json` atomically (the run is finished from then on). */
export async function writeRunSummary(dir: string, summary: RunSummary): Promise<void> {
  await writeFileAtomic(runPaths(dir).summary, prettyJson(summary));
}

/** Read `<dir>/summary.json`, or null when the run has not finished (no file). */
export async function readRunSummary(dir: string): Promise<RunSummary | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(runPaths(dir).summary);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return JSON.parse(text);
}

/** Whether the run in `dir` finished (`summary.json` exists). */
export function isFinished(dir: string): Promise<boolean> {
  return pathExists(runPaths(dir).summary);
}

/** The checkout's commit (with "-dirty" when it has changes), or null outside a git checkout. */
export async function gitCommit(): Promise<string | null> {
  try {
    const run = (args: string[]) =>
      new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    const head = await run(["rev-parse", "HEAD"]);
    if (!head.success) return null;
    const dirty = await run(["status", "--porcelain", "--untracked-files=no"]);
    const id = new TextDecoder().decode(head.stdout).trim();
    return dirty.stdout.length > 0 ? `${id}-dirty` : id;
  } catch {
    return null;
  }
}
