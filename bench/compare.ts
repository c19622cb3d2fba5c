/**
 * `deno run -A bench/compare.ts OURS.json PYTORCH.json`
 *
 * Puts a `deno task bench` report next to a `bench/pytorch_bench.py` report of the same preset
 * and thread count: a markdown table of ms/step, images/s and our time / PyTorch's time per case,
 * plus the MAE+AMT / MAE step-time ratio of each side.
 */

interface Report {
  backend: string;
  threads: number;
  preset?: string;
  matmul?: string;
  torch?: string;
  results: { name: string; ms_per_step: number; images_per_s?: number }[];
}

/** The comparison table (markdown). */
export function compareReports(ours: Report, theirs: Report): string {
  if (ours.threads !== theirs.threads) {
    throw new RangeError(
      `thread counts differ (${ours.threads} vs ${theirs.threads}): compare like with like`,
    );
  }
  // PyTorch reports name their preset since the reference preset (older ones do not)
  if (ours.preset && theirs.preset && ours.preset !== theirs.preset) {
    throw new RangeError(
      `presets differ (${ours.preset} vs ${theirs.preset}): compare like with like`,
    );
  }
  const byName = new Map(theirs.results.map((r) => [r.name, r]));
  const rows = [
    "| case | amt-mim ms/step | images/s | PyTorch ms/step | images/s | ours / PyTorch |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of ours.results) {
    const t = byName.get(r.name);
    const f = (v: number | undefined, d = 1) => v === undefined ? "-" : v.toFixed(d);
    rows.push(
      `| ${r.name} | ${f(r.ms_per_step)} | ${f(r.images_per_s, 0)} | ${f(t?.ms_per_step)} | ${
        f(t?.images_per_s, 0)
      } | ${t ? (r.ms_per_step / t.ms_per_step).toFixed(2) : "-"} |`,
    );
  }
  const ratio = (rep: Report) => {
    const mae = rep.results.find((r) => r.name === "mae-random-75");
    const amt = rep.results.find((r) => r.name === "mae-amt-45-40");
    return mae && amt ? (amt.ms_per_step / mae.ms_per_step).toFixed(3) : "-";
  };
  rows.push(
    "",
    `MAE+AMT / MAE step time: amt-mim ${ratio(ours)}, PyTorch ${ratio(theirs)}. ` +
      `amt-mim: ${ours.backend}, ${ours.threads} thread(s)${
        ours.matmul ? `, matmul ${ours.matmul}` : ""
      }; PyTorch ${theirs.torch ?? ""} CPU, ${theirs.threads} thread(s).`,
  );
  return rows.join("\n");
}

if (import.meta.main) {
  if (Deno.args.length !== 2) {
    console.error("usage: deno run -A bench/compare.ts OURS.json PYTORCH.json");
    Deno.exit(2);
  }
  const [a, b] = await Promise.all(
    Deno.args.map(async (p) => JSON.parse(await Deno.readTextFile(p)) as Report),
  );
  console.log(compareReports(a, b));
}
