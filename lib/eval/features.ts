/**
 * Frozen-encoder features: the CLS token after the final LayerNorm for every
 * un-augmented image of a split, and an on-disk cache of them in the run
 * folder keyed by the checkpoint step (a new checkpoint invalidates it).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, loadBatch } from "../data/mod.ts";
import { runPaths } from "../run/mod.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { makeRng } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import type { VisionTransformer } from "../vit/vit.ts";

/** Features of one split. */
export interface FeatureSet {
  /** [count, dim] row-major. */
  features: Float32Array;
  /** [count] class labels (-1 for unlabeled items). */
  labels: Int32Array;
  count: number;
  dim: number;
  /** Seconds spent extracting (0 when read from the cache). */
  seconds: number;
}

/** Options of {@link extractFeatures}. */
export interface ExtractOptions {
  /** Model input side S (images are resized to it, not cropped). */
  imageSize: number;
  /** Images per forward pass. */
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Encode every image of `dataset` (resize only, no augmentation, no drop-path,
 * no gradient) and collect the CLS feature after the final norm.
 *
 * @returns features [N, D], labels [N] and the time taken
 */
export async function extractFeatures(
  encoder: VisionTransformer,
  dataset: Dataset,
  opts: ExtractOptions,
): Promise<FeatureSet> {
  const t0 = performance.now();
  const { imageSize, batchSize } = opts;
  if (imageSize !== encoder.shape.imageSize) {
    throw new RangeError(
      `extractFeatures: imageSize ${imageSize} but the encoder takes ${encoder.shape.imageSize} px ` +
        `inputs; pass the run's model image size`,
    );
  }
  if (dataset.channels !== encoder.shape.channels) {
    throw new RangeError(
      `extractFeatures: ${dataset.name} has ${dataset.channels} channels, the encoder expects ` +
        `${encoder.shape.channels}; evaluate on the dataset the run was pre-trained on`,
    );
  }
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`extractFeatures: batchSize ${batchSize}: expected a positive integer`);
  }
  const N = dataset.length, D = encoder.shape.dim, L = encoder.numPatches;
  const features = new Float32Array(N * D);
  const labels = new Int32Array(N);
  const rng = makeRng(0, "features"); // unused without augmentation
  for (let start = 0; start < N; start += batchSize) {
    const n = Math.min(batchSize, N - start);
    const indices = Int32Array.from({ length: n }, (_, i) => start + i);
    const batch = await loadBatch(dataset, indices, { imageSize, augment: false, rng });
    const patches = patchify(batch.images, n, imageSize, dataset.channels, encoder.shape.patchSize);
    const cls = tf.tidy(() => {
      const x = tf.tensor3d(patches, [n, L, encoder.patchDim]); // [n, L, ppc]
      return encoder.forwardFeatures(x).cls; // [n, D]
    });
    try {
      features.set((await cls.data()) as Float32Array, start * D);
    } finally {
      cls.dispose();
    }
    labels.set(batch.labels, start);
    opts.onProgress?.(start + n, N);
  }
  return { features, labels, count: N, dim: D, seconds: (performance.now() - t0) / 1000 };
}

const MAGIC = "AMTFEAT1";

/** What a cache file's header records; all of it must match for a hit. */
interface CacheHeader {
  step: number;
  split: string;
  dataset: string;
  count: number;
  dim: number;
  imageSize: number;
}

/** Encode a feature set with its header: magic, JSON length, JSON, pad, labels, features. */
export function encodeFeatureFile(header: CacheHeader, set: FeatureSet): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headLen = Math.ceil((8 + 4 + json.length) / 4) * 4;
  const bytes = new Uint8Array(headLen + 4 * set.count + 4 * set.count * set.dim);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(8, json.length, true);
  bytes.set(json, 12);
  const body = new DataView(bytes.buffer, headLen);
  for (let i = 0; i < set.count; i++) body.setInt32(4 * i, set.labels[i], true);
  const off = 4 * set.count;
  for (let i = 0; i < set.features.length; i++) body.setFloat32(off + 4 * i, set.features[i], true);
  return bytes;
}

/** Decode {@link encodeFeatureFile}'s bytes; null when they are not a whole, valid file. */
export function decodeFeatureFile(
  bytes: Uint8Array,
): { header: CacheHeader; set: FeatureSet } | null {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLen = view.getUint32(8, true);
  if (12 + jsonLen > bytes.length) return null;
  let header: CacheHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLen)));
  } catch {
    return null;
  }
  const { count, dim } = header;
  const headLen = Math.ceil((12 + jsonLen) / 4) * 4;
  if (bytes.length !== headLen + 4 * count + 4 * count * dim) return null;
  const labels = new Int32Array(count);
  const features = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) labels[i] = view.getInt32(headLen + 4 * i, true);
  const off = headLen + 4 * count;
  for (let i = 0; i < count * dim; i++) features[i] = view.getFloat32(off + 4 * i, true);
  return { header, set: { features, labels, count, dim, seconds: 0 } };
}

/** Options of {@link cachedFeatures}. */
export interface CachedFeatureOptions extends ExtractOptions {
  /** Checkpoint step of the encoder's weights (the cache key). */
  step: number;
  encoder: VisionTransformer;
  dataset: Dataset;
  /** The split's item limit, 0 = all; part of the file name so limits do not evict each other. */
  limit?: number;
}

/** The cache file of a split at a checkpoint step. */
export function featureCachePath(runDir: string, split: string, step: number, limit = 0): string {
  const safe = split.replace(/[^A-Za-z0-9_-]/g, "-");
  const n = limit > 0 ? `_n${limit}` : "";
  return `${runPaths(runDir).eval}/features_${safe}${n}_step${step}.bin`;
}

/**
 * Features of `split` from `<runDir>/eval/features_<split>_step<N>.bin` when
 * that file matches (step, dataset, count, dim, image size); otherwise
 * extract them, write the file atomically and delete the split's files from
 * other steps.
 */
export async function cachedFeatures(
  runDir: string,
  split: string,
  opts: CachedFeatureOptions,
): Promise<FeatureSet & { cached: boolean; path: string }> {
  const { step, encoder, dataset, imageSize } = opts;
  const limit = opts.limit ?? 0;
  const path = featureCachePath(runDir, split, step, limit);
  const want: CacheHeader = {
    step,
    split,
    dataset: dataset.name,
    count: dataset.length,
    dim: encoder.shape.dim,
    imageSize,
  };
  let bytes: Uint8Array | null = null;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const hit = bytes ? decodeFeatureFile(bytes) : null;
  if (hit && (Object.keys(want) as (keyof CacheHeader)[]).every((k) => hit.header[k] === want[k])) {
    return { ...hit.set, cached: true, path };
  }
  const set = await extractFeatures(encoder, dataset, opts);
  await writeFileAtomic(path, encodeFeatureFile(want, set));
  // a newer checkpoint makes older files of this split useless
  const prefix = path.slice(path.lastIndexOf("/") + 1).replace(/_step\d+\.bin$/, "_step");
  const cacheDir = runPaths(runDir).eval;
  for await (const entry of Deno.readDir(cacheDir)) {
    if (
      entry.isFile && entry.name.startsWith(prefix) && /_step\d+\.bin$/.test(entry.name) &&
      entry.name !== path.slice(path.lastIndexOf("/") + 1)
    ) {
      await Deno.remove(`${cacheDir}/${entry.name}`).catch(() => {});
    }
  }
  return { ...set, cached: false, path };
}
