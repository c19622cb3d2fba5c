/**
 * The safetensors and `.npy` formats (lib/run/safetensors.ts, lib/run/npy.ts): round trips,
 * the header's layout, the float dtypes read, and refusals that say what is wrong.
 */
import assert from "node:assert/strict";
import {
  decodeNpy,
  decodeSafetensors,
  encodeNpy,
  encodeSafetensors,
  SafetensorsError,
  tensorFloat32,
} from "../lib/run/mod.ts";

const FIXTURE = new URL("./fixtures/timm_vit_tiny/", import.meta.url).pathname;

/** A file from a header object and a data buffer, padded as given. */
function rawFile(header: unknown, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function headerOf(bytes: Uint8Array): { size: number; json: Record<string, unknown> } {
  const size = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return { size, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + size))) };
}

Deno.test("encodeSafetensors() / decodeSafetensors() round-trip tensors, shapes and __metadata__", () => {
  const tensors = new Map([
    ["a", { shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-7, -1e30) }],
    ["b.c", { shape: [1], data: Float32Array.of(42) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
    ["scalar", { shape: [], data: Float32Array.of(7) }],
  ]);
  const bytes = encodeSafetensors(tensors, { format: "pt", note: "x" });
  const file = decodeSafetensors(bytes);
  assert.deepEqual(file.metadata, { format: "pt", note: "x" });
  assert.deepEqual([...file.tensors.keys()], ["a", "b.c", "empty", "scalar"]);
  for (const [name, t] of tensors) {
    assert.deepEqual(file.tensors.get(name)!.shape, t.shape, name);
    assert.equal(file.tensors.get(name)!.dtype, "F32");
    assert.deepEqual(tensorFloat32(file, name), t.data, name);
  }
});

Deno.test("encodeSafetensors() writes the header JSON with data_offsets and pads it to 8 bytes", () => {
  for (const name of ["w", "ww", "www", "a-much-longer-tensor-name"]) {
    const bytes = encodeSafetensors(
      new Map([[name, { shape: [3], data: Float32Array.of(1, 2, 3) }], ["z", {
        shape: [1, 2],
        data: Float32Array.of(4, 5),
      }]]),
      { format: "pt" },
    );
    const { size, json } = headerOf(bytes);
    assert.equal((8 + size) % 8, 0, `data starts at ${8 + size}`);
    assert.deepEqual(json.__metadata__, { format: "pt" });
    assert.deepEqual(json[name], { dtype: "F32", shape: [3], data_offsets: [0, 12] });
    assert.deepEqual(json.z, { dtype: "F32", shape: [1, 2], data_offsets: [12, 20] });
    assert.equal(bytes.length, 8 + size + 20);
    // padding is spaces after the JSON
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + size));
    assert.match(text, /^\{.*\} *$/);
  }
});

Deno.test("tensorFloat32() reads F16, BF16 and F64, and encodeSafetensors() writes F16 / BF16", () => {
  // hand-made bits: F16 1.0 = 0x3c00, -2.5 = 0xc100, 2^-24 (smallest subnormal) = 0x0001,
  // 65504 (largest) = 0x7bff; BF16 1.0 = 0x3f80, -3.0 = 0xc040
  const f16 = new Uint8Array(8), bf16 = new Uint8Array(4), f64 = new Uint8Array(16);
  const v16 = new DataView(f16.buffer),
    vb = new DataView(bf16.buffer),
    v64 = new DataView(f64.buffer);
  [0x3c00, 0xc100, 0x0001, 0x7bff].forEach((h, i) => v16.setUint16(2 * i, h, true));
  [0x3f80, 0xc040].forEach((h, i) => vb.setUint16(2 * i, h, true));
  v64.setFloat64(0, Math.PI, true);
  v64.setFloat64(8, -0.125, true);
  const data = new Uint8Array(28);
  data.set(f16, 0), data.set(bf16, 8), data.set(f64, 12);
  const file = decodeSafetensors(rawFile({
    h: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
    b: { dtype: "BF16", shape: [2], data_offsets: [8, 12] },
    d: { dtype: "F64", shape: [2], data_offsets: [12, 28] },
  }, data));
  assert.deepEqual([...tensorFloat32(file, "h")], [1, -2.5, 2 ** -24, 65504]);
  assert.deepEqual([...tensorFloat32(file, "b")], [1, -3]);
  assert.deepEqual([...tensorFloat32(file, "d")], [Math.fround(Math.PI), -0.125]);

  const values = Float32Array.of(1, -2.5, 0.1, 3.14159, 1e-6, 70000);
  const back = decodeSafetensors(encodeSafetensors(
    new Map([
      ["h", { shape: [6], data: values, dtype: "F16" as const }],
      ["b", { shape: [6], data: values, dtype: "BF16" as const }],
    ]),
  ));
  assert.equal(back.tensors.get("h")!.dtype, "F16");
  const h = tensorFloat32(back, "h"), b = tensorFloat32(back, "b");
  for (let i = 0; i < 5; i++) {
    assert.ok(Math.abs(h[i] - values[i]) <= Math.abs(values[i]) * 2 ** -11 + 2 ** -25, `f16 ${i}`);
    assert.ok(Math.abs(b[i] - values[i]) <= Math.abs(values[i]) * 2 ** -8, `bf16 ${i}`);
  }
  assert.equal(h[5], Infinity); // above F16's range
});

Deno.test("decodeSafetensors() reads a file written by Python's safetensors (the timm fixture)", async () => {
  const file = decodeSafetensors(await Deno.readFile(`${FIXTURE}model.safetensors`));
  assert.equal(file.metadata.format, "pt");
  assert.deepEqual(file.tensors.get("patch_embed.proj.weight")!.shape, [16, 1, 4, 4]);
  assert.deepEqual(file.tensors.get("pos_embed")!.shape, [1, 5, 16]);
  assert.equal(file.tensors.size, 30);
});

Deno.test("decodeSafetensors() refuses truncated and malformed files, naming what is wrong", () => {
  const good = encodeSafetensors(new Map([["w", { shape: [2], data: Float32Array.of(1, 2) }]]));
  const bad = (bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => decodeSafetensors(bytes, "x.safetensors"), (e: Error) => {
      assert.ok(e instanceof SafetensorsError, String(e));
      assert.match(e.message, /^x\.safetensors: not a valid safetensors file: /);
      assert.match(e.message, re);
      return true;
    });
  const data = new Uint8Array(8);
  bad(good.subarray(0, 5), /truncated: 5 bytes/);
  bad(good.subarray(0, 20), /truncated: the header says \d+ bytes but only 12 follow/);
  bad(
    good.subarray(0, good.length - 1),
    /truncated: tensor "w" ends at byte 8 of the data, which has 7/,
  );
  bad(rawFile("[1]", data), /does not start with "\{"/);
  bad(rawFile({}, data).fill(0x7b, 8, 10), /not JSON/);
  bad(
    rawFile({ w: { dtype: "F17", shape: [2], data_offsets: [0, 8] } }, data),
    /unknown dtype "F17"/,
  );
  bad(rawFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 8] } }, data), /shape \[-1\]/);
  bad(
    rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, data),
    /data_offsets \[8,0\]/,
  );
  bad(
    rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data),
    /tensor "w": shape \[3\] of F32 needs 12 bytes, data_offsets \[0, 8\] give 8/,
  );
  bad(
    rawFile({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, data),
    /overlaps/,
  );
  bad(
    rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, data),
    /bytes 0\.\.4 of the data belong to no tensor/,
  );
  bad(
    rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, data),
    /the data has 8 bytes but the tensors cover 4/,
  );
  bad(rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__\.a is not a string/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  bad(huge, /header size 1099511627776 exceeds/);
  // an integer tensor decodes, but is not read as weights
  const ints = decodeSafetensors(
    rawFile({ i: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, data),
  );
  assert.throws(() => tensorFloat32(ints, "i"), /tensor "i" is I64; only floating-point/);
  assert.throws(() => tensorFloat32(ints, "nope"), /no tensor "nope"/);
});

Deno.test("encodeNpy() writes a v1.0 '<f4' C-order header aligned to 64 bytes; decodeNpy() reads it", async () => {
  const data = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);
  const bytes = encodeNpy(data, [3, 4]);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const len = new DataView(bytes.buffer).getUint16(8, true);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + len));
  assert.equal((10 + len) % 64, 0);
  assert.equal(header.trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  assert.ok(header.endsWith("\n"));
  assert.equal(bytes.length, 10 + len + 48);
  assert.equal(new DataView(bytes.buffer).getFloat32(10 + len + 4, true), -4.5);
  const back = decodeNpy(bytes);
  assert.deepEqual(back.shape, [3, 4]);
  assert.deepEqual(back.data, data);
  const one = new TextDecoder().decode(encodeNpy(Float32Array.of(1, 2), [2]).subarray(10, 128));
  assert.match(one, /'shape': \(2,\), \}/);
  // numpy's own file (the fixture, written by np.save)
  const np = decodeNpy(await Deno.readFile(`${FIXTURE}features.npy`));
  assert.deepEqual(np.shape, [4, 16]);
  assert.equal(np.descr, "<f4");
  assert.throws(
    () => decodeNpy(bytes.subarray(0, bytes.length - 4), "f.npy"),
    /f\.npy: shape \(3,4\)/,
  );
  assert.throws(() => encodeNpy(data, [5]), /12 values for shape \[5\]/);
});
