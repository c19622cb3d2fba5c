/**
 * Checkpoints: one binary file holding named float32/int32 arrays plus a JSON
 * header, verified by a SHA-256 of its payload.
 *
 * Layout: `"AMTCKPT1"` · u32 header length · header JSON · payload.
 * Writes go to `<file>.tmp`, are flushed, then renamed over the target after
 * the previous good file has been moved to `<file>.prev`; a reader that finds
 * the newest file corrupt or truncated falls back to `.prev` and says so.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../util/fs.ts";

const MAGIC = "AMTCKPT1";

/** An array stored in a checkpoint. */
export interface StoredArray {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** What a checkpoint holds: arrays by name plus free-form JSON metadata. */
export interface CheckpointData {
  meta: Record<string, unknown>;
  arrays: Map<string, StoredArray>;
}

interface HeaderEntry {
  name: string;
  dtype: "float32" | "int32" | "uint8";
  shape: number[];
  offset: number;
  byteLength: number;
}

/** Raised when a checkpoint file is unreadable, truncated or fails its checksum. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

function dtypeOf(a: StoredArray["data"]): HeaderEntry["dtype"] {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Int32Array) return "int32";
  return "uint8";
}

/** Serialise a checkpoint to bytes. */
export function encodeCheckpoint(ckpt: CheckpointData): Uint8Array {
  const entries: HeaderEntry[] = [];
  let offset = 0;
  for (const [name, arr] of ckpt.arrays) {
    const byteLength = arr.data.byteLength;
    entries.push({ name, dtype: dtypeOf(arr.data), shape: arr.shape, offset, byteLength });
    offset += Math.ceil(byteLength / 4) * 4; // keep 4-byte alignment
  }
  const payload = new Uint8Array(offset);
  let i = 0;
  for (const arr of ckpt.arrays.values()) {
    const d = arr.data;
    payload.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), entries[i++].offset);
  }
  const sha256 = createHash("sha256").update(payload).digest("hex");
  const header = new TextEncoder().encode(
    JSON.stringify({ version: 1, meta: ckpt.meta, entries, payloadBytes: offset, sha256 }),
  );
  const out = new Uint8Array(8 + 4 + header.length + payload.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(payload, 12 + header.length);
  return out;
}

/** Parse and verify checkpoint bytes; `path` is used in error messages. */
export function decodeCheckpoint(bytes: Uint8Array, path = "<memory>"): CheckpointData {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new CheckpointError(`${path}: not an amt-mim checkpoint (bad magic or empty file)`);
  }
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (12 + headerLen > bytes.length) {
    throw new CheckpointError(`${path}: truncated header (${bytes.length} bytes)`);
  }
  // deno-lint-ignore no-explicit-any
  let header: any;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLen)));
  } catch {
    throw new CheckpointError(`${path}: corrupt header`);
  }
  const payload = bytes.subarray(12 + headerLen);
  if (payload.length !== header.payloadBytes) {
    throw new CheckpointError(
      `${path}: truncated: payload has ${payload.length} bytes, header says ${header.payloadBytes}`,
    );
  }
  const sha = createHash("sha256").update(payload).digest("hex");
  if (sha !== header.sha256) throw new CheckpointError(`${path}: checksum mismatch (corrupt file)`);
  const arrays = new Map<string, StoredArray>();
  for (const e of header.entries as HeaderEntry[]) {
    const buf = payload.slice(e.offset, e.offset + e.byteLength).buffer;
    const data = e.dtype === "float32"
      ? new Float32Array(buf)
      : e.dtype === "int32"
      ? new Int32Array(buf)
      : new Uint8Array(buf);
    arrays.set(e.name, { shape: e.shape, data });
  }
  return { meta: header.meta, arrays };
}

/** Save a checkpoint atomically, keeping the previous one as `<path>.prev`. */
export async function saveCheckpoint(path: string, ckpt: CheckpointData): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(ckpt), { keepPrev: true });
}

/**
 * Load the newest good checkpoint at `path`, falling back to `<path>.prev`.
 * Returns null when neither exists; `warning` says when the fallback was used.
 */
export async function loadCheckpoint(
  path: string,
): Promise<{ ckpt: CheckpointData; file: string; warning?: string } | null> {
  let firstError: string | undefined;
  for (const file of [path, `${path}.prev`]) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    try {
      const ckpt = decodeCheckpoint(bytes, file);
      const warning = firstError
        ? `${firstError}; resumed from the previous good checkpoint ${file}`
        : undefined;
      return { ckpt, file, warning };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      firstError = e.message;
    }
  }
  if (firstError) {
    throw new CheckpointError(
      `${firstError}, and no previous good checkpoint exists. Delete the run folder's checkpoints to start over.`,
    );
  }
  return null;
}
