/**
 * `deno task bench` produces the report the performance issue specifies (names, fields, no
 * tensor growth). Timings are not asserted: speed is checked with the benchmark itself.
 */
import assert from "node:assert/strict";
import { runBench } from "../bench/bench.ts";

Deno.test("runBench() reports the named cases, threads and matmul, and no tensor growth", async () => {
  const report = await runBench({
    preset: "vit-tiny-32",
    steps: 8,
    repeats: 1,
    backend: "wasm",
    threads: 0,
    only: ["mae-amt-45-40", "data-augment-b64"],
  }) as {
    backend: string;
    threads: number;
    matmul: string;
    results: { name: string; ms_per_step: number; images_per_s: number; medians: number[] }[];
    memory: Record<string, { tensorsAfterWarmup: number; tensorsAtEnd: number } | number>;
  };
  assert.equal(report.backend, "wasm");
  assert.ok(report.threads >= 1);
  assert.ok(report.matmul.length > 0);
  assert.deepEqual(report.results.map((r) => r.name), ["mae-amt-45-40", "data-augment-b64"]);
  for (const r of report.results) {
    assert.ok(r.ms_per_step > 0 && Number.isFinite(r.ms_per_step));
    assert.equal(r.medians.length, 1);
    assert.ok(Math.abs(r.images_per_s - 64_000 / r.ms_per_step) < 1e-6 * r.images_per_s);
  }
  const mem = report.memory["mae-amt-45-40"] as {
    tensorsAfterWarmup: number;
    tensorsAtEnd: number;
  };
  assert.equal(mem.tensorsAtEnd, mem.tensorsAfterWarmup, "tensors grow across steps");
  assert.ok((report.memory.peakRssBytes as number) > 0);
  // the reference-scale run's step: batch 256, and the data case is named for its batch
  const ref = await runBench({
    preset: "reference",
    steps: 8,
    repeats: 1,
    backend: "wasm",
    threads: 0,
    only: ["data-augment-b256", "data-augment-b64"],
  }) as { batch: number; results: { name: string; ms_per_step: number; images_per_s: number }[] };
  assert.equal(ref.batch, 256);
  assert.deepEqual(ref.results.map((r) => r.name), ["data-augment-b256"]);
  const r0 = ref.results[0];
  assert.ok(Math.abs(r0.images_per_s - 256_000 / r0.ms_per_step) < 1e-6 * r0.images_per_s);
  await assert.rejects(
    runBench({ preset: "nope", steps: 8, backend: "wasm", threads: 0 }),
    /--preset=nope: unknown; valid: vit-tiny-32, fashion-mnist, reference/,
  );
  await assert.rejects(
    runBench({ preset: "vit-tiny-32", steps: 4, backend: "wasm", threads: 0 }),
    /--steps=4: at least 8/,
  );
  await assert.rejects(
    runBench({ preset: "vit-tiny-32", steps: 8, backend: "wasm", threads: 0, batch: 0 }),
    /--batch=0: a whole number >= 1/,
  );
});

Deno.test("compareReports() lines cases up with PyTorch's and refuses mismatched threads", async () => {
  const { compareReports } = await import("../bench/compare.ts");
  const ours = {
    backend: "wasm",
    threads: 2,
    results: [
      { name: "mae-random-75", ms_per_step: 400, images_per_s: 160 },
      { name: "mae-amt-45-40", ms_per_step: 260, images_per_s: 246 },
      { name: "data-augment-b64", ms_per_step: 4, images_per_s: 16000 },
    ],
  };
  const theirs = {
    backend: "pytorch-cpu",
    threads: 2,
    torch: "2.13.0",
    results: [
      { name: "mae-random-75", ms_per_step: 200, images_per_s: 320 },
      { name: "mae-amt-45-40", ms_per_step: 140, images_per_s: 457 },
    ],
  };
  const table = compareReports(ours, theirs);
  assert.match(table, /\| mae-random-75 \| 400\.0 \| 160 \| 200\.0 \| 320 \| 2\.00 \|/);
  assert.match(table, /\| data-augment-b64 \| 4\.0 \| 16000 \| - \| - \| - \|/);
  assert.match(table, /amt-mim 0\.650, PyTorch 0\.700/);
  assert.throws(() => compareReports(ours, { ...theirs, threads: 1 }), /thread counts differ/);
  assert.throws(
    () => compareReports({ ...ours, preset: "reference" }, { ...theirs, preset: "vit-tiny-32" }),
    /presets differ \(reference vs vit-tiny-32\)/,
  );
});
