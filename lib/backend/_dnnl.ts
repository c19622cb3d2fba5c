/**
 * Optional oneDNN (`libdnnl`) for the wasm backend's native matmul (`_blas.ts`), loaded with
 * `Deno.dlopen`:
 *
 * - `dnnl_gemm_bf16bf16f32`: a row-major gemm on bfloat16 operands with fp32 accumulation and
 *   output, the bf16 precision mode (AVX512_BF16 / AMX on the CPU);
 * - the matmul primitive (oneDNN 2.x C API): one threaded call for a whole batch of small
 *   products (attention's `[B*heads, T, d]`), fp32 or bf16, transposes as strides, a batch of
 *   1 broadcast.
 *
 * oneDNN threads with its CPU runtime: OpenMP for Debian's build (libgomp), so the thread count
 * is set with the runtime's `omp_set_num_threads` from the thread that calls oneDNN (the main
 * JS thread, which makes every call here). A TBB or sequential build keeps its own count.
 *
 * OpenMP's wait policy: by default libgomp's threads spin for about 300,000 iterations after each
 * parallel region, and `OMP_WAIT_POLICY=PASSIVE` puts them to sleep at once. Neither fits: a step
 * makes some 300 short oneDNN calls with a few tens of microseconds of JS between them, so sleeping
 * threads are woken (a futex round trip) for every call, which cost about 10-15 ms per vit-tiny-32
 * step; long spins take the cores of XNNPACK's pool, the main thread and any other process (beside
 * a second training process, 30,000 spins made a step 3x slower than passive). So unless the user
 * set `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`, oneDNN is loaded with
 * `GOMP_SPINCOUNT=${@link OMP_SPIN_COUNT}` (read by the OpenMP runtime when it loads; the variable
 * is put back right after, so child processes do not inherit it): threads stay awake across the
 * short gaps between one step's calls and sleep soon after.
 *
 * Nothing here is required: {@link loadDnnl} returns why it did not load, and the matmul stays
 * fp32. The choice (`auto`, `off` or a path) comes from `lib/backend/mod.ts` (`AMT_DNNL`).
 *
 * @module
 */

/** Library names tried by `auto`, most wanted first. */
export const DNNL_CANDIDATES: readonly string[] = Deno.build.os === "darwin"
  ? ["libdnnl.3.dylib", "libdnnl.2.dylib", "libdnnl.dylib"]
  : Deno.build.os === "windows"
  ? ["dnnl.dll"]
  : ["libdnnl.so.2", "libdnnl.so", "libdnnl.so.3"];

/** What to tell a user who has no oneDNN, per OS. */
export const DNNL_HINT = Deno.build.os === "linux"
  ? "apt install libdnnl2, or set AMT_DNNL=/path/to/libdnnl.so.2"
  : "set AMT_DNNL=/path/to/the oneDNN library";

/** The CPU's bf16 instructions, from `/proc/cpuinfo`. */
export interface CpuBf16 {
  /** `avx512_bf16`: bf16 dot products in AVX-512 (Cooper Lake, Zen 4 and later). */
  avx512bf16: boolean;
  /** `amx_bf16`: AMX tiles with bf16 (Sapphire Rapids and later). */
  amxBf16: boolean;
  /** What was found (`avx512_bf16`, `avx512_bf16 amx_bf16`, `none`) or why it is unknown. */
  note: string;
}

let cpu: CpuBf16 | null = null;

/** The CPU's bf16 support (read once per process). */
export function cpuBf16(): CpuBf16 {
  if (cpu !== null) return cpu;
  if (Deno.build.os !== "linux") {
    return cpu = { avx512bf16: false, amxBf16: false, note: `unknown on ${Deno.build.os}` };
  }
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/cpuinfo");
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return cpu = { avx512bf16: false, amxBf16: false, note: `cannot read /proc/cpuinfo (${why})` };
  }
  const line = text.split("\n").find((l) => /^flags\s*:/.test(l)) ?? "";
  const flags = new Set(line.replace(/^flags\s*:/, "").trim().split(/\s+/));
  const avx512bf16 = flags.has("avx512_bf16"), amxBf16 = flags.has("amx_bf16");
  const found = [avx512bf16 ? "avx512_bf16" : "", amxBf16 ? "amx_bf16" : ""].filter((s) => s);
  return cpu = { avx512bf16, amxBf16, note: found.length ? found.join(" ") : "none" };
}

const GEMM_PARAMS = [
  "u8", // transa: 'N' or 'T'
  "u8", // transb
  "i64", // M
  "i64", // N
  "i64", // K
  "f32", // alpha
  "pointer", // A
  "i64", // lda
  "pointer", // B
  "i64", // ldb
  "f32", // beta
  "pointer", // C (fp32)
  "i64", // ldc
] as const;

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_gemm_bf16bf16f32: { parameters: GEMM_PARAMS, result: "i32" },
  dnnl_sgemm: { parameters: GEMM_PARAMS, result: "i32" },
  dnnl_get_effective_cpu_isa: { parameters: [], result: "i32", optional: true },
  dnnl_cpu_isa2str: { parameters: ["i32"], result: "pointer", optional: true },
  // the matmul primitive, oneDNN 2.x C API (3.x replaced the *_desc_init functions)
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32", optional: true },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32", optional: true },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], // bias md: null for none
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_softmax_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "i32"],
    result: "i32",
    optional: true,
  },
  dnnl_softmax_backward_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "i32"],
    result: "i32",
    optional: true,
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "buffer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32", optional: true },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  dnnl_primitive_attr_set_output_scales: {
    parameters: ["pointer", "i64", "i32", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32", optional: true },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  dnnl_memory_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32", optional: true },
} as const;

type DnnlLib = Deno.DynamicLibrary<typeof SYMBOLS>;

const OMP_SYMBOLS = {
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
  omp_get_max_threads: { parameters: [], result: "i32" },
} as const;

/** `dnnl_version_t.cpu_runtime` values. */
const RUNTIMES: Record<number, string> = {
  0: "no CPU runtime",
  1: "sequential",
  2: "OpenMP",
  4: "TBB",
  8: "threadpool",
};

/** oneDNN data types and constants used here (oneDNN 2.x `dnnl_types.h`). */
const DT_BF16 = 2, DT_F32 = 3, ENGINE_CPU = 1, STREAM_IN_ORDER = 1, QUERY_IMPL_INFO_STR = 8;
const ARG_SRC = 1,
  ARG_DST = 17,
  ARG_WEIGHTS = 33,
  ARG_BIAS = 41,
  ARG_DIFF_SRC = 129,
  ARG_DIFF_DST = 145;
const PROP_FORWARD_TRAINING = 64, ALG_ELTWISE_GELU_ERF = 0x30;
/** Upper bounds on sizeof(dnnl_memory_desc_t) / sizeof(dnnl_matmul_desc_t) in oneDNN 2.x. */
const MD_BYTES = 4096, OP_DESC_BYTES = 16384;
const N_CHAR = 78, T_CHAR = 84; // 'N', 'T'

/** A batch of products in one oneDNN matmul primitive (created once per shape). */
export interface BatchedMatmul {
  /** oneDNN's implementation name, e.g. `brg:avx512_core_bf16`. */
  impl: string;
  /**
   * `C[i] = op(A[i]) op(B[i]) (+ bias)` for the whole batch; pointers to the first matrices,
   * and to the fp32 bias row `[N]` when the primitive was made with one.
   */
  run(
    a: Deno.PointerValue,
    b: Deno.PointerValue,
    c: Deno.PointerValue,
    bias?: Deno.PointerValue,
  ): void;
}

/**
 * oneDNN's threaded elementwise kernels over `n` contiguous fp32 values (pointers into native
 * memory, e.g. the wasm heap). Each returns false when this oneDNN cannot make the primitive
 * (the caller then runs its own kernel); primitives are cached per `n`.
 */
export interface DnnlEltwise {
  /** `y = x Phi(x)`, the exact (erf) GELU. */
  gelu(x: Deno.PointerValue, y: Deno.PointerValue, n: number): boolean;
  /** `dx = dy (Phi(x) + x phi(x))`, GELU's backward from its input. */
  geluBackward(
    x: Deno.PointerValue,
    dy: Deno.PointerValue,
    dx: Deno.PointerValue,
    n: number,
  ): boolean;
  /** fp32 -> bf16 bits, round to nearest even (a reorder). */
  toBf16(src: Deno.PointerValue, dst: Deno.PointerValue, n: number): boolean;
  /** `y = softmax(x)` along the rows of a row-major `[rows, cols]` (false: no primitive). */
  softmax(x: Deno.PointerValue, y: Deno.PointerValue, rows: number, cols: number): boolean;
  /** `dx = y (dy - sum_row(dy y))`, softmax's backward from its output `y`. */
  softmaxBackward(
    y: Deno.PointerValue,
    dy: Deno.PointerValue,
    dx: Deno.PointerValue,
    rows: number,
    cols: number,
  ): boolean;
  /**
   * `dst[i] = scale * src[i]` over a 4-D index space `dims` with element strides per side (a
   * threaded strided copy: attention's head split and merge).
   */
  copyStrided(
    dims: readonly number[],
    srcStrides: readonly number[],
    dstStrides: readonly number[],
    scale: number,
    src: Deno.PointerValue,
    dst: Deno.PointerValue,
  ): boolean;
}

/** Element type of a product's operands (the output is always fp32). */
export type OperandType = "f32" | "bf16";

/** A loaded oneDNN. */
export interface Dnnl {
  /** The file or name that loaded. */
  path: string;
  /** `2.6.3`. */
  version: string;
  /** CPU runtime: `OpenMP`, `TBB`, `sequential`, ... */
  runtime: string;
  /** Threads oneDNN runs on (OpenMP's max threads), or 0 when the runtime keeps its own. */
  threads: number;
  /** OpenMP's wait policy: `spin N`, `from the environment (...)`, or why it is not set. */
  waitPolicy: string;
  /** The ISA oneDNN dispatches to, e.g. `avx512_core_bf16` (`` when it cannot say). */
  isa: string;
  /** Whether the matmul primitive (batched products) is available (oneDNN 2.x API). */
  batchedApi: boolean;
  /** The elementwise kernels (GELU, bf16 conversion), or null without the primitive API. */
  eltwise: DnnlEltwise | null;
  /**
   * Row-major `C = alpha op(A) op(B) + beta C` on bf16 A, B (u16 bits) and fp32 C.
   * @throws when oneDNN returns an error status.
   */
  gemmBf16(
    ta: boolean,
    tb: boolean,
    m: number,
    n: number,
    k: number,
    a: Deno.PointerValue,
    lda: number,
    b: Deno.PointerValue,
    ldb: number,
    beta: number,
    c: Deno.PointerValue,
    ldc: number,
  ): void;
  /**
   * The matmul primitive for `[bA, M, K] x [bB, K, N] -> [max(bA, bB), M, N]` (a batch of 1
   * broadcasts; `ta`/`tb`: the operand is stored transposed; `bias`: an fp32 row `[N]` added to
   * every output row), or null when this oneDNN cannot make a fast one (then the caller loops
   * over the batch, or calls the gemm). Cached per shape.
   */
  batched(
    type: OperandType,
    bA: number,
    bB: number,
    m: number,
    n: number,
    k: number,
    ta: boolean,
    tb: boolean,
    bias?: boolean,
  ): BatchedMatmul | null;
}

let loaded: Dnnl | null = null;

/** The loaded oneDNN, or null. */
export function dnnlLoaded(): Dnnl | null {
  return loaded;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

function cString(p: Deno.PointerValue): string {
  return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
}

/** OpenMP runtimes mapped into this process (from `/proc/self/maps`; empty elsewhere). */
function mappedOpenMp(): string[] {
  const names: string[] = [];
  try {
    const maps = Deno.readTextFileSync("/proc/self/maps");
    for (const m of maps.matchAll(/\s(\/\S*\/lib(?:gomp|iomp5|omp)[^/\s]*\.so[^/\s]*)$/gm)) {
      if (!names.includes(m[1])) names.push(m[1]);
    }
  } catch { /* not Linux, or no read permission */ }
  return names;
}

/** The OpenMP runtime oneDNN pulled in (the file mapped into this process), else the usual. */
function loadedOpenMp(): string[] {
  return [...mappedOpenMp(), "libgomp.so.1", "libiomp5.so", "libomp.so"];
}

/** Sets OpenMP's thread count for calls from this thread; returns what OpenMP then reports. */
function setOpenMpThreads(threads: number): number {
  for (const name of loadedOpenMp()) {
    let omp: Deno.DynamicLibrary<typeof OMP_SYMBOLS>;
    try {
      omp = Deno.dlopen(name, OMP_SYMBOLS);
    } catch {
      continue;
    }
    if (threads > 0) omp.symbols.omp_set_num_threads(threads);
    return omp.symbols.omp_get_max_threads();
  }
  return 0;
}

/**
 * Loads oneDNN. `choice`: `auto`, `off`, or a path. `threads`: what the backend runs on (0 =
 * oneDNN's default). Returns the library or, when none loads, the reason (for the report).
 */
export function loadDnnl(choice: string, threads: number): Dnnl | string {
  if (loaded !== null) return loaded;
  if (choice === "off") return "oneDNN off (AMT_DNNL=off)";
  if (typeof Deno.dlopen !== "function") return "oneDNN needs Deno.dlopen";
  const names = choice === "auto" ? DNNL_CANDIDATES : [choice];
  const errors: string[] = [];
  for (const name of names) {
    let lib: DnnlLib;
    const policy = boundedSpinOpenMp();
    try {
      lib = Deno.dlopen(name, SYMBOLS);
    } catch (e) {
      policy.restore();
      const msg = errorText(e);
      if (/permission|Requires ffi/i.test(msg)) {
        return "oneDNN needs --allow-ffi (the deno tasks pass -A)";
      }
      errors.push(`${name}: ${msg}`);
      continue;
    }
    policy.restore();
    loaded = makeDnnl(name, lib, threads, policy.note);
    return loaded;
  }
  if (choice !== "auto") return `oneDNN "${choice}" did not load (${errors.join("; ")})`;
  return `no oneDNN found (${DNNL_HINT})`;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Spin iterations of an idle OpenMP thread before it sleeps (libgomp's default is 300,000). Measured
 * with the bench (vit-tiny-32, bf16, batch 64, MAE / MAE+AMT step), 2026-12-01:
 * - nothing else running: 0 spins (passive) 157-161 / 110-114 ms, 1,000 150-164 / 101-111,
 *   3,000 146-150 / 96, 30,000 151 / 96;
 * - beside another training process: 0 spins 258-264 / 165-174 ms, 1,000 273 / 187, 3,000
 *   311 / 223, 10,000 451-453 / 355-364, 30,000 835-839 / 723-725 (the spinning threads of the two
 *   processes take each other's cores).
 * 3,000 keeps all of the quiet machine's gain and loses least beside another process.
 */
export const OMP_SPIN_COUNT = 3000;

/** Sets `GOMP_SPINCOUNT` for the runtime about to load, unless the user chose a wait policy. */
function boundedSpinOpenMp(): { note: string; restore(): void } {
  const none = (note: string) => ({ note, restore() {} });
  const user = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"].filter((v) => envGet(v) !== undefined);
  if (user.length > 0) {
    return none(`from the environment (${user.map((v) => `${v}=${envGet(v)}`).join(" ")})`);
  }
  if (mappedOpenMp().length > 0) return none("OpenMP's default (it was loaded before oneDNN)");
  try {
    Deno.env.set("GOMP_SPINCOUNT", String(OMP_SPIN_COUNT));
  } catch {
    return none("OpenMP's default (no --allow-env to set GOMP_SPINCOUNT)");
  }
  return {
    note: `spin ${OMP_SPIN_COUNT}`,
    restore() {
      try {
        Deno.env.delete("GOMP_SPINCOUNT");
      } catch { /* set above, so env access is allowed */ }
    },
  };
}

function makeDnnl(path: string, lib: DnnlLib, threads: number, waitPolicy: string): Dnnl {
  const s = lib.symbols;
  const vp = s.dnnl_version();
  let version = "?", runtime = "?";
  if (vp !== null) {
    const v = new Deno.UnsafePointerView(vp);
    version = `${v.getInt32(0)}.${v.getInt32(4)}.${v.getInt32(8)}`;
    const rt = v.getUint32(24);
    runtime = RUNTIMES[rt] ?? `runtime ${rt}`;
  }
  const ompThreads = runtime === "OpenMP" ? setOpenMpThreads(threads) : 0;
  let isa = "";
  if (s.dnnl_get_effective_cpu_isa && s.dnnl_cpu_isa2str) {
    isa = cString(s.dnnl_cpu_isa2str(s.dnnl_get_effective_cpu_isa())).replace(/^cpu_isa_/, "");
  }
  const batchedApi = [
    s.dnnl_engine_create,
    s.dnnl_stream_create,
    s.dnnl_memory_desc_init_by_strides,
    s.dnnl_matmul_desc_init,
    s.dnnl_primitive_desc_create,
    s.dnnl_primitive_create,
    s.dnnl_memory_create,
    s.dnnl_memory_set_data_handle,
    s.dnnl_primitive_execute,
    s.dnnl_stream_wait,
  ].every((f) => f !== null && f !== undefined);
  const prims = new Primitives(lib);
  const eltwiseApi = batchedApi && [
    s.dnnl_eltwise_forward_desc_init,
    s.dnnl_eltwise_backward_desc_init,
    s.dnnl_reorder_primitive_desc_create,
    s.dnnl_primitive_attr_create,
    s.dnnl_primitive_attr_destroy,
    s.dnnl_primitive_attr_set_output_scales,
  ].every((f) => f !== null && f !== undefined);
  const softmaxApi = s.dnnl_softmax_forward_desc_init !== null &&
    s.dnnl_softmax_forward_desc_init !== undefined &&
    s.dnnl_softmax_backward_desc_init !== null &&
    s.dnnl_softmax_backward_desc_init !== undefined;
  const go = (kind: "gelu" | "geluBackward" | "toBf16", n: number, ptrs: Deno.PointerValue[]) => {
    const run = prims.eltwise(kind, n);
    if (run === null) return false;
    run(ptrs);
    return true;
  };
  const eltwise: DnnlEltwise | null = eltwiseApi
    ? {
      gelu: (x, y, n) => go("gelu", n, [x, y]),
      geluBackward: (x, dy, dx, n) => go("geluBackward", n, [x, dy, dx]),
      toBf16: (src, dst, n) => go("toBf16", n, [src, dst]),
      softmax: (x, y, rows, cols) => {
        const run = softmaxApi ? prims.softmax(false, rows, cols) : null;
        if (run === null) return false;
        run([x, y]);
        return true;
      },
      softmaxBackward: (y, dy, dx, rows, cols) => {
        const run = softmaxApi ? prims.softmax(true, rows, cols) : null;
        if (run === null) return false;
        run([y, dy, dx]);
        return true;
      },
      copyStrided: (dims, ss, ds, scale, src, dst) => {
        const run = prims.strided(dims, ss, ds, scale);
        if (run === null) return false;
        run([src, dst]);
        return true;
      },
    }
    : null;
  return {
    path,
    version,
    runtime,
    threads: ompThreads,
    waitPolicy: runtime === "OpenMP" ? waitPolicy : `${runtime}'s own`,
    isa,
    batchedApi,
    eltwise,
    gemmBf16(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc) {
      const st = s.dnnl_gemm_bf16bf16f32(
        ta ? T_CHAR : N_CHAR,
        tb ? T_CHAR : N_CHAR,
        BigInt(m),
        BigInt(n),
        BigInt(k),
        1,
        a,
        BigInt(lda),
        b,
        BigInt(ldb),
        beta,
        c,
        BigInt(ldc),
      );
      if (st !== 0) {
        throw new Error(
          `oneDNN dnnl_gemm_bf16bf16f32 (${ta ? "T" : "N"}${tb ? "T" : "N"} ${m}x${n}x${k}) ` +
            `failed with status ${st}`,
        );
      }
    },
    batched: (type, bA, bB, m, n, k, ta, tb, bias = false) =>
      batchedApi ? prims.get(type, bA, bB, m, n, k, ta, tb, bias) : null,
  };
}

/** Reads a pointer written by oneDNN into an 8-byte out-parameter. */
function outPointer(buf: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(buf[0]);
}

/** The matmul primitives made so far, by shape (at most {@link Primitives.CAP}, LRU). */
class Primitives {
  static readonly CAP = 256;
  #s: DnnlLib["symbols"];
  #engine: Deno.PointerValue = null;
  #stream: Deno.PointerValue = null;
  #byKey = new Map<string, (BatchedMatmul & { destroy(): void }) | null>();

  constructor(lib: DnnlLib) {
    this.#s = lib.symbols;
  }

  #check(status: number, what: string): void {
    if (status !== 0) throw new Error(`oneDNN ${what} failed with status ${status}`);
  }

  #start(): void {
    if (this.#engine !== null) return;
    const out = new BigUint64Array(1);
    this.#check(this.#s.dnnl_engine_create!(out, ENGINE_CPU, 0n), "dnnl_engine_create");
    this.#engine = outPointer(out);
    this.#check(
      this.#s.dnnl_stream_create!(out, this.#engine, STREAM_IN_ORDER),
      "dnnl_stream_create",
    );
    this.#stream = outPointer(out);
  }

  #eltwiseByKey = new Map<string, ((ptrs: Deno.PointerValue[]) => void) | null>();

  /**
   * The runner of one elementwise primitive over `n` values (pointers in the order of
   * {@linkcode DnnlEltwise}'s arguments), or null when it cannot be made. Cached, LRU.
   */
  eltwise(
    kind: "gelu" | "geluBackward" | "toBf16",
    n: number,
  ): ((ptrs: Deno.PointerValue[]) => void) | null {
    return this.#cached(`${kind}:${n}`, () => this.#makeEltwise(kind, n));
  }

  #eltwiseDestroy = new Map<string, () => void>();

  /**
   * Softmax along the rows of `[rows, cols]`: forward (pointers x, y) or backward from the
   * output (y, dy, dx). Cached like the rest.
   */
  softmax(
    backward: boolean,
    rows: number,
    cols: number,
  ): ((ptrs: Deno.PointerValue[]) => void) | null {
    return this.#cached(
      `softmax${backward ? "Backward" : ""}:${rows}:${cols}`,
      () => this.#makeSoftmax(backward, rows, cols),
    );
  }

  #makeSoftmax(
    backward: boolean,
    rows: number,
    cols: number,
  ): { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } | null {
    this.#start();
    const s = this.#s;
    const md = this.#md([rows, cols], [cols, 1], DT_F32);
    const out = new BigUint64Array(1);
    const pds: Deno.PointerValue[] = [];
    let pd: Deno.PointerValue;
    try {
      const fwd = new Uint8Array(OP_DESC_BYTES);
      this.#check(
        s.dnnl_softmax_forward_desc_init!(fwd, PROP_FORWARD_TRAINING, md, 1),
        "dnnl_softmax_forward_desc_init",
      );
      this.#check(
        s.dnnl_primitive_desc_create!(out, fwd, null, this.#engine, null),
        "dnnl_primitive_desc_create",
      );
      pd = outPointer(out);
      pds.push(pd);
      if (backward) {
        const bwd = new Uint8Array(OP_DESC_BYTES);
        this.#check(
          s.dnnl_softmax_backward_desc_init!(bwd, md, md, 1),
          "dnnl_softmax_backward_desc_init",
        );
        this.#check(
          s.dnnl_primitive_desc_create!(out, bwd, null, this.#engine, pd), // forward pd: hint
          "dnnl_primitive_desc_create",
        );
        pd = outPointer(out);
        pds.push(pd);
      }
      if (this.#isReference(pd)) return null; // a scalar loop: the caller's kernel is faster
      this.#check(s.dnnl_primitive_create!(out, pd), "dnnl_primitive_create");
    } finally {
      for (const p of pds) s.dnnl_primitive_desc_destroy?.(p);
    }
    return backward
      ? this.#runner(
        outPointer(out),
        [md, md, md],
        [ARG_DST, ARG_DIFF_DST, ARG_DIFF_SRC],
        `softmax backward [${rows}, ${cols}]`,
      )
      : this.#runner(outPointer(out), [md, md], [ARG_SRC, ARG_DST], `softmax [${rows}, ${cols}]`);
  }

  /** The strided-copy reorder of {@linkcode DnnlEltwise.copyStrided}, cached like the rest. */
  strided(
    dims: readonly number[],
    srcStrides: readonly number[],
    dstStrides: readonly number[],
    scale: number,
  ): ((ptrs: Deno.PointerValue[]) => void) | null {
    return this.#cached(
      `strided:${dims}:${srcStrides}:${dstStrides}:${scale}`,
      () => this.#makeStrided(dims, srcStrides, dstStrides, scale),
    );
  }

  /** The runner made for `key` (LRU), or made now; null (remembered) when it cannot be. */
  #cached(
    key: string,
    make: () => { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } | null,
  ): ((ptrs: Deno.PointerValue[]) => void) | null {
    const hit = this.#eltwiseByKey.get(key);
    if (hit !== undefined) {
      this.#eltwiseByKey.delete(key);
      this.#eltwiseByKey.set(key, hit);
      return hit;
    }
    let made: { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } | null = null;
    try {
      made = make();
    } catch {
      made = null; // the caller's own kernel runs instead
    }
    this.#eltwiseByKey.set(key, made?.run ?? null);
    if (made) this.#eltwiseDestroy.set(key, made.destroy);
    if (this.#eltwiseByKey.size > Primitives.CAP) {
      const oldKey = this.#eltwiseByKey.keys().next().value!;
      this.#eltwiseByKey.delete(oldKey);
      this.#eltwiseDestroy.get(oldKey)?.();
      this.#eltwiseDestroy.delete(oldKey);
    }
    return made?.run ?? null;
  }

  #makeStrided(
    dims: readonly number[],
    srcStrides: readonly number[],
    dstStrides: readonly number[],
    scale: number,
  ): { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } | null {
    this.#start();
    const s = this.#s;
    const src = this.#md([...dims], [...srcStrides], DT_F32);
    const dst = this.#md([...dims], [...dstStrides], DT_F32);
    const out = new BigUint64Array(1);
    let attr: Deno.PointerValue = null;
    if (scale !== 1) {
      this.#check(s.dnnl_primitive_attr_create!(out), "dnnl_primitive_attr_create");
      attr = outPointer(out);
    }
    let pd: Deno.PointerValue = null;
    try {
      if (attr !== null) {
        this.#check(
          s.dnnl_primitive_attr_set_output_scales!(attr, 1n, 0, new Float32Array([scale])),
          "dnnl_primitive_attr_set_output_scales",
        );
      }
      this.#check(
        s.dnnl_reorder_primitive_desc_create!(out, src, this.#engine, dst, this.#engine, attr),
        "dnnl_reorder_primitive_desc_create",
      );
      pd = outPointer(out);
      if (this.#isReference(pd)) return null; // a scalar loop: the caller's kernel is faster
      this.#check(s.dnnl_primitive_create!(out, pd), "dnnl_primitive_create");
    } finally {
      if (pd !== null) s.dnnl_primitive_desc_destroy?.(pd);
      if (attr !== null) s.dnnl_primitive_attr_destroy!(attr);
    }
    return this.#runner(outPointer(out), [src, dst], [ARG_SRC, ARG_DST], "strided copy");
  }

  /** Memory objects and the execute call of a made primitive. */
  #runner(
    prim: Deno.PointerValue,
    mds: Uint8Array<ArrayBuffer>[],
    argIds: number[],
    what: string,
  ): { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } {
    const s = this.#s;
    const out = new BigUint64Array(1);
    const mems: Deno.PointerValue[] = [];
    for (const md of mds) {
      this.#check(s.dnnl_memory_create!(out, md, this.#engine, null), "dnnl_memory_create");
      mems.push(outPointer(out));
    }
    // dnnl_exec_arg_t { int arg; dnnl_memory_t memory; }: 16 bytes each
    const args = new Uint8Array(16 * mems.length);
    const view = new DataView(args.buffer);
    argIds.forEach((arg, i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mems[i])), true);
    });
    const stream = this.#stream;
    return {
      run: (ptrs) => {
        for (let i = 0; i < mems.length; i++) s.dnnl_memory_set_data_handle!(mems[i], ptrs[i]);
        const st = s.dnnl_primitive_execute!(prim, stream, mems.length, args);
        if (st !== 0) throw new Error(`oneDNN ${what}: status ${st}`);
        s.dnnl_stream_wait!(stream);
      },
      destroy: () => {
        for (const m of mems) s.dnnl_memory_destroy?.(m);
        s.dnnl_primitive_destroy?.(prim);
      },
    };
  }

  #makeEltwise(
    kind: "gelu" | "geluBackward" | "toBf16",
    n: number,
  ): { run: (ptrs: Deno.PointerValue[]) => void; destroy(): void } | null {
    this.#start();
    const s = this.#s;
    const f32 = this.#md([n], [1], DT_F32);
    const out = new BigUint64Array(1);
    const pds: Deno.PointerValue[] = [];
    let pd: Deno.PointerValue;
    let mds: Uint8Array<ArrayBuffer>[];
    let argIds: number[];
    try {
      if (kind === "toBf16") {
        const bf16 = this.#md([n], [1], DT_BF16);
        this.#check(
          s.dnnl_reorder_primitive_desc_create!(out, f32, this.#engine, bf16, this.#engine, null),
          "dnnl_reorder_primitive_desc_create",
        );
        pd = outPointer(out);
        pds.push(pd);
        mds = [f32, bf16];
        argIds = [ARG_SRC, ARG_DST];
      } else {
        const fwd = new Uint8Array(OP_DESC_BYTES);
        this.#check(
          s.dnnl_eltwise_forward_desc_init!(
            fwd,
            PROP_FORWARD_TRAINING,
            ALG_ELTWISE_GELU_ERF,
            f32,
            0,
            0,
          ),
          "dnnl_eltwise_forward_desc_init",
        );
        this.#check(
          s.dnnl_primitive_desc_create!(out, fwd, null, this.#engine, null),
          "dnnl_primitive_desc_create",
        );
        pd = outPointer(out);
        pds.push(pd);
        mds = [f32, f32];
        argIds = [ARG_SRC, ARG_DST];
        if (kind === "geluBackward") {
          const bwd = new Uint8Array(OP_DESC_BYTES);
          this.#check(
            s.dnnl_eltwise_backward_desc_init!(bwd, ALG_ELTWISE_GELU_ERF, f32, f32, 0, 0),
            "dnnl_eltwise_backward_desc_init",
          );
          this.#check(
            s.dnnl_primitive_desc_create!(out, bwd, null, this.#engine, pd), // forward pd: hint
            "dnnl_primitive_desc_create",
          );
          pd = outPointer(out);
          pds.push(pd);
          mds = [f32, f32, f32];
          argIds = [ARG_SRC, ARG_DIFF_DST, ARG_DIFF_SRC];
        }
      }
      if (this.#isReference(pd)) return null; // a scalar loop: the caller's kernel is faster
      this.#check(s.dnnl_primitive_create!(out, pd), "dnnl_primitive_create");
    } finally {
      for (const p of pds) s.dnnl_primitive_desc_destroy?.(p);
    }
    return this.#runner(outPointer(out), mds, argIds, `${kind} over ${n} values`);
  }

  /** Whether oneDNN picked its reference (scalar loop) implementation for `pd`. */
  #isReference(pd: Deno.PointerValue): boolean {
    const s = this.#s;
    if (!s.dnnl_primitive_desc_query) return false;
    const str = new BigUint64Array(1);
    if (s.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, str) !== 0) return false;
    return /^ref/.test(cString(outPointer(str)));
  }

  #md(dims: number[], strides: number[], dt: number): Uint8Array<ArrayBuffer> {
    const md = new Uint8Array(MD_BYTES);
    const d = new BigInt64Array(12), st = new BigInt64Array(12);
    dims.forEach((v, i) => d[i] = BigInt(v));
    strides.forEach((v, i) => st[i] = BigInt(v));
    this.#check(
      this.#s.dnnl_memory_desc_init_by_strides!(md, dims.length, d, dt, st),
      "dnnl_memory_desc_init_by_strides",
    );
    return md;
  }

  get(
    type: OperandType,
    bA: number,
    bB: number,
    m: number,
    n: number,
    k: number,
    ta: boolean,
    tb: boolean,
    bias: boolean,
  ): BatchedMatmul | null {
    const key = `${type}:${bA}:${bB}:${m}:${n}:${k}:${ta ? "T" : "N"}${tb ? "T" : "N"}${
      bias ? "+b" : ""
    }`;
    const hit = this.#byKey.get(key);
    if (hit !== undefined) {
      this.#byKey.delete(key);
      this.#byKey.set(key, hit); // most recently used last
      return hit;
    }
    let made: (BatchedMatmul & { destroy(): void }) | null = null;
    try {
      made = this.#make(type, bA, bB, m, n, k, ta, tb, bias);
    } catch {
      made = null; // this shape loops over the batch instead
    }
    this.#byKey.set(key, made);
    if (this.#byKey.size > Primitives.CAP) {
      const [oldKey, old] = this.#byKey.entries().next().value!;
      this.#byKey.delete(oldKey);
      old?.destroy();
    }
    return made;
  }

  #make(
    type: OperandType,
    bA: number,
    bB: number,
    m: number,
    n: number,
    k: number,
    ta: boolean,
    tb: boolean,
    bias: boolean,
  ): (BatchedMatmul & { destroy(): void }) | null {
    this.#start();
    const s = this.#s;
    const dt = type === "bf16" ? DT_BF16 : DT_F32;
    const batch = Math.max(bA, bB);
    // logical [batch, rows, cols] with strides in elements: a transposed operand is stored
    // [batch, cols, rows]
    const src = this.#md([bA, m, k], ta ? [m * k, 1, m] : [m * k, k, 1], dt);
    const wei = this.#md([bB, k, n], tb ? [k * n, 1, k] : [k * n, n, 1], dt);
    const dst = this.#md([batch, m, n], [m * n, n, 1], DT_F32);
    const bmd = bias ? this.#md([1, 1, n], [n, n, 1], DT_F32) : null;
    const op = new Uint8Array(OP_DESC_BYTES);
    this.#check(s.dnnl_matmul_desc_init!(op, src, wei, bmd, dst), "dnnl_matmul_desc_init");
    const out = new BigUint64Array(1);
    this.#check(
      s.dnnl_primitive_desc_create!(out, op, null, this.#engine, null),
      "dnnl_primitive_desc_create",
    );
    const pd = outPointer(out);
    let impl = "";
    let prim: Deno.PointerValue = null;
    try {
      if (s.dnnl_primitive_desc_query) {
        const str = new BigUint64Array(1);
        if (s.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, str) === 0) {
          impl = cString(outPointer(str));
        }
      }
      // the reference implementation is a scalar loop: the caller's gemm loop beats it
      if (/^ref/.test(impl)) return null;
      this.#check(s.dnnl_primitive_create!(out, pd), "dnnl_primitive_create");
      prim = outPointer(out);
    } finally {
      s.dnnl_primitive_desc_destroy?.(pd);
    }
    const r = this.#runner(
      prim,
      bmd ? [src, wei, dst, bmd] : [src, wei, dst],
      bmd ? [ARG_SRC, ARG_WEIGHTS, ARG_DST, ARG_BIAS] : [ARG_SRC, ARG_WEIGHTS, ARG_DST],
      `matmul (${impl}, ${batch} x ${m}x${n}x${k})`,
    );
    return {
      impl,
      run: (a, b, c, biasRow) => {
        if (bmd && !biasRow) throw new Error("oneDNN matmul: made with a bias, run without one");
        r.run(bmd ? [a, b, c, biasRow!] : [a, b, c]);
      },
      destroy: r.destroy,
    };
  }
}
