/**
 * The pre-norm transformer block as one kernel forward and one backward, on the wasm backend
 * with a native matmul (`_blas.ts`):
 *
 *   h = x + proj(attention(LN1(x))),   y = h + fc2(GELU(fc1(LN2(h)))).
 *
 * Inside, the kernels are the ones the composite block launches (`fused.ts`'s LayerNorm,
 * heads copy, softmax and GELU; the dense and batched products of `_blas.ts`; tfjs-wasm's
 * `Add` and `Transpose`), called directly on the wasm heap in the same order with the same
 * shapes, so the block computes bit for bit what the composite one does: forward, and every
 * gradient the autodiff of the composite block would take. What goes is the engine's work
 * between kernels: some 120 launches per block and step, each with its bookkeeping, a tape
 * node and a clone of every tensor saved for the backward pass (a ViT-Tiny MAE step made
 * about 1,000 of them). The tape holds one node per block.
 *
 * Used by `Block.apply` (`lib/vit/layers.ts`) on its fast path unless the attention is kept;
 * with drop-path, the two branches' scales are drawn there as `dropPath` draws them and come in
 * as inputs. {@link setFusedBlockEnabled} turns it off (the tests compare the two).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasActive, DENSE } from "./_blas.ts";
import { nativeEltwise } from "./_native_eltwise.ts";
import { isWasmBackend, type WasmBackendLike } from "./_wasm_types.ts";
import {
  fusedAvailable,
  GELU_BWD,
  GELU_BWD_NATIVE,
  GELU_FWD,
  GELU_FWD_NATIVE,
  LN_BWD,
  LN_FWD,
  MERGE_HEADS,
  SOFTMAX_BWD,
  SOFTMAX_FWD,
  SPLIT_HEADS,
} from "./fused.ts";

const BLOCK_FWD = "AmtBlockFwd";
const BLOCK_BWD = "AmtBlockBwd";

type Info = tf.TensorInfo;
type KArgs = Parameters<tf.KernelFunc>[0];

/** The parameters of one block, in this order everywhere (inputs, gradients). */
export interface BlockParams {
  /** LayerNorm 1 `[D]`. */
  norm1Gamma: tf.Tensor;
  norm1Beta: tf.Tensor;
  /** Fused q/k/v projection `[D, 3D]`, `[3D]`. */
  qkvW: tf.Tensor;
  qkvB: tf.Tensor;
  /** Attention output projection `[D, D]`, `[D]`. */
  projW: tf.Tensor;
  projB: tf.Tensor;
  /** LayerNorm 2 `[D]`. */
  norm2Gamma: tf.Tensor;
  norm2Beta: tf.Tensor;
  /** MLP `[D, F]`, `[F]`, `[F, D]`, `[D]`. */
  fc1W: tf.Tensor;
  fc1B: tf.Tensor;
  fc2W: tf.Tensor;
  fc2B: tf.Tensor;
}

const PARAM_NAMES = [
  "norm1Gamma",
  "norm1Beta",
  "qkvW",
  "qkvB",
  "projW",
  "projB",
  "norm2Gamma",
  "norm2Beta",
  "fc1W",
  "fc1B",
  "fc2W",
  "fc2B",
] as const satisfies readonly (keyof BlockParams)[];

/** The forward's tensors the backward reads, after the output (in this order). */
const SAVED = [
  "n1",
  "mean1",
  "rstd1",
  "q",
  "k",
  "v",
  "attn",
  "ctx",
  "h",
  "n2",
  "mean2",
  "rstd2",
  "geluSaved",
  "g",
] as const;

interface BlockAttrs {
  heads: number;
  eps1: number;
  eps2: number;
  /** 1 when GELU runs on oneDNN (the backward recomputes from fc1's output), else 0. */
  nativeGelu: number;
  /** 1 with drop-path: inputs `scale1`, `scale2` `[B, 1, 1]` multiply the two branches. */
  drop: number;
}

/**
 * The registered wasm kernels, called directly (no engine, no tape), with every buffer they
 * allocate recorded: {@link Kernels.release} frees all but the ones a block kernel returns (all
 * of them when it throws).
 */
class Kernels {
  readonly #made: Info[] = [];
  constructor(readonly backend: WasmBackendLike & tf.KernelBackend) {}

  run(name: string, inputs: Record<string, Info>, attrs: object = {}): Info[] {
    const k = tf.getKernel(name, "wasm");
    if (k === undefined) throw new Error(`fused block: no wasm kernel ${name}`);
    const out = k.kernelFunc({ inputs, backend: this.backend, attrs } as unknown as KArgs);
    const outs = Array.isArray(out) ? out : [out as Info];
    this.#made.push(...outs);
    return outs;
  }

  one(name: string, inputs: Record<string, Info>, attrs: object = {}): Info {
    return this.run(name, inputs, attrs)[0];
  }

  /** `a @ b` (tfjs's `BatchMatMul`, here `_blas.ts`'s native one). */
  mm(a: Info, b: Info, transposeA: boolean, transposeB: boolean): Info {
    return this.one("BatchMatMul", { a, b }, { transposeA, transposeB });
  }

  /** `[1, n]` of ones, as the composite bias gradient's `tf.ones([1, n])`. */
  ones(n: number): Info {
    const t = this.backend.makeOutput([1, n], "float32");
    this.#made.push(t);
    (this.backend.typedArrayFromHeap(t) as Float32Array).fill(1);
    return t;
  }

  release(keep: readonly Info[]): void {
    const kept = new Set(keep.map((t) => t.dataId));
    for (const t of this.#made) if (!kept.has(t.dataId)) this.backend.disposeData(t.dataId);
    this.#made.length = 0;
  }
}

/** The same data under another shape (a reshape; nothing is allocated or counted). */
const view = (t: Info, shape: number[]): Info => ({ dataId: t.dataId, shape, dtype: t.dtype });

const counts = { forward: 0, backward: 0 };

/** How many blocks ran as one kernel since the start (or {@link resetFusedBlockStats}). */
export function fusedBlockStats(): Readonly<typeof counts> {
  return { ...counts };
}

/** Zeroes {@link fusedBlockStats}. */
export function resetFusedBlockStats(): void {
  counts.forward = counts.backward = 0;
}

/** Runs `body` on a {@link Kernels}; frees what it allocated and does not return. */
function withKernels(args: KArgs, body: (k: Kernels) => Info[]): Info[] {
  const k = new Kernels(args.backend as WasmBackendLike & tf.KernelBackend);
  let out: Info[] = [];
  try {
    out = body(k);
    return out;
  } finally {
    k.release(out);
  }
}

function blockFwd(args: KArgs): Info[] {
  counts.forward++;
  const inp = args.inputs as Record<string, Info>;
  const { heads: H, eps1, eps2, nativeGelu, drop } = args.attrs as unknown as BlockAttrs;
  const x = inp.x, [B, T, D] = x.shape, N = B * T, hd = D / H, F = inp.fc1W.shape[1];
  return withKernels(args, (k) => {
    // a branch times its drop-path scale (dropPath's broadcasting product), or as it is
    const dropped = (t: Info, scale: Info) => drop ? k.one("Multiply", { a: t, b: scale }) : t;
    const [n1, mean1, rstd1] = k.run(LN_FWD, { x, gamma: inp.norm1Gamma, beta: inp.norm1Beta }, {
      eps: eps1,
    });
    const qkv = k.one(DENSE, { x: view(n1, [N, D]), w: inp.qkvW, b: inp.qkvB }); // [N, 3D]
    const [q, kk, v] = k.run(SPLIT_HEADS, { x: qkv }, {
      batch: B,
      heads: H,
      scale: 1 / Math.sqrt(hd),
    }); // 3 x [B, H, T, hd], q scaled
    const scores = k.mm(q, kk, false, true); // [B, H, T, T]
    const attn = k.one(SOFTMAX_FWD, { x: scores });
    const ctx4 = k.mm(attn, v, false, false); // [B, H, T, hd]
    const ctx = k.one("Transpose", { x: ctx4 }, { perm: [0, 2, 1, 3] }); // [B, T, H, hd]
    const ao = k.one(DENSE, { x: view(ctx, [N, D]), w: inp.projW, b: inp.projB });
    const h = k.one("Add", { a: x, b: dropped(view(ao, [B, T, D]), inp.scale1) });
    const [n2, mean2, rstd2] = k.run(LN_FWD, { x: h, gamma: inp.norm2Gamma, beta: inp.norm2Beta }, {
      eps: eps2,
    });
    const u = view(k.one(DENSE, { x: view(n2, [N, D]), w: inp.fc1W, b: inp.fc1B }), [B, T, F]);
    // GELU on oneDNN keeps fc1's output (its backward recomputes GELU'), the wasm kernel GELU'
    const [g, geluSaved] = nativeGelu
      ? [k.one(GELU_FWD_NATIVE, { x: u }), u]
      : k.run(GELU_FWD, { x: u });
    const m = k.one(DENSE, { x: view(g, [N, F]), w: inp.fc2W, b: inp.fc2B });
    const out = k.one("Add", { a: h, b: dropped(view(m, [B, T, D]), inp.scale2) });
    return [out, n1, mean1, rstd1, q, kk, v, attn, ctx, h, n2, mean2, rstd2, geluSaved, g];
  });
}

function blockBwd(args: KArgs): Info[] {
  counts.backward++;
  const inp = args.inputs as Record<string, Info>;
  const { heads: H, nativeGelu, drop } = args.attrs as unknown as BlockAttrs;
  const dy = inp.dy, [B, T, D] = dy.shape, N = B * T, hd = D / H, F = inp.fc1W.shape[1];
  return withKernels(args, (k) => {
    // the gradient through a drop-path product: times the same scale (tfjs's Mul gradient)
    const dropped = (t: Info, scale: Info) => drop ? k.one("Multiply", { a: t, b: scale }) : t;
    // ops.linear's gradient: db as a ones-row product, then dx, then dW
    const ones = k.ones(N); // one for the four layers
    const linearBwd = (dOut: Info, xRows: Info, w: Info) => {
      const db = k.mm(ones, dOut, false, false); // [1, out]
      const dx = k.mm(dOut, w, false, true); // [N, in]
      const dw = k.mm(xRows, dOut, true, false); // [in, out]
      return { dx, dw, db: view(db, [db.shape[1]]) };
    };
    // y = h + drop(fc2(g)): both terms get dy
    const dm = dropped(dy, inp.scale2);
    const fc2 = linearBwd(view(dm, [N, D]), view(inp.g, [N, F]), inp.fc2W);
    const dg = view(fc2.dx, [B, T, F]);
    const du = nativeGelu
      ? k.one(GELU_BWD_NATIVE, { dy: dg, x: inp.geluSaved })
      : k.one(GELU_BWD, { a: dg, b: inp.geluSaved });
    const fc1 = linearBwd(view(du, [N, F]), view(inp.n2, [N, D]), inp.fc1W);
    const [dhNorm, dg2, dbeta2] = k.run(LN_BWD, {
      dy: view(fc1.dx, [B, T, D]),
      x: inp.h,
      gamma: inp.norm2Gamma,
      mean: inp.mean2,
      rstd: inp.rstd2,
    });
    const dh = k.one("Add", { a: dy, b: dhNorm }); // h feeds LN2 and the sum
    // h = x + drop(proj(ctx))
    const proj = linearBwd(view(dropped(dh, inp.scale1), [N, D]), view(inp.ctx, [N, D]), inp.projW);
    const dctx = k.one("Transpose", { x: view(proj.dx, [B, T, H, hd]) }, { perm: [0, 2, 1, 3] });
    // ctx4 = attn @ v (tfjs's BatchMatMul gradient), then softmax's, then scores = q kᵀ
    const dAttn = k.mm(dctx, inp.v, false, true);
    const dv = k.mm(inp.attn, dctx, true, false);
    const dScores = k.one(SOFTMAX_BWD, { dy: dAttn, y: inp.attn });
    const dq = k.mm(dScores, inp.k, false, false);
    const dk = k.mm(dScores, inp.q, true, false);
    const dqkv = k.one(MERGE_HEADS, { q: dq, k: dk, v: dv }, {
      batch: B,
      heads: H,
      scale: 1 / Math.sqrt(hd),
    }); // [N, 3D]
    const qkv = linearBwd(dqkv, view(inp.n1, [N, D]), inp.qkvW);
    const [dxNorm, dg1, dbeta1] = k.run(LN_BWD, {
      dy: view(qkv.dx, [B, T, D]),
      x: inp.x,
      gamma: inp.norm1Gamma,
      mean: inp.mean1,
      rstd: inp.rstd1,
    });
    const dx = k.one("Add", { a: dh, b: dxNorm }); // x feeds LN1 and the sum
    return [
      dx,
      dg1,
      dbeta1,
      qkv.dw,
      qkv.db,
      proj.dw,
      proj.db,
      dg2,
      dbeta2,
      fc1.dw,
      fc1.db,
      fc2.dw,
      fc2.db,
    ];
  });
}

let registered = false;
function register(): void {
  if (registered) return;
  registered = true;
  for (const [kernelName, kernelFunc] of [[BLOCK_FWD, blockFwd], [BLOCK_BWD, blockBwd]] as const) {
    if (tf.getKernel(kernelName, "wasm") === undefined) {
      tf.registerKernel({
        kernelName,
        backendName: "wasm",
        kernelFunc: kernelFunc as tf.KernelFunc,
      });
    }
  }
}

let disabled = false;

/** Turn the one-kernel block off (`Block.apply` then launches the composite ops). */
export function setFusedBlockEnabled(on: boolean): void {
  disabled = !on;
}

/**
 * Whether {@link fusedBlock} runs: the wasm backend with a native matmul and the fused kernels,
 * and not turned off.
 */
export function fusedBlockAvailable(): boolean {
  return !disabled && tf.getBackend() === "wasm" && blasActive() && fusedAvailable() &&
    isWasmBackend(tf.backend());
}

type BlockOp = (x: tf.Tensor, ...params: tf.Tensor[]) => tf.Tensor;
const blockOps = new Map<string, BlockOp>();

function blockOp(
  heads: number,
  eps1: number,
  eps2: number,
  nativeGelu: boolean,
  drop: boolean,
): BlockOp {
  const key = `${heads}:${eps1}:${eps2}:${nativeGelu}:${drop}`;
  let op = blockOps.get(key);
  if (op !== undefined) return op;
  const attrs = { heads, eps1, eps2, nativeGelu: nativeGelu ? 1 : 0, drop: drop ? 1 : 0 };
  op = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((...args: any[]) => {
      const save = args.pop() as (ts: tf.Tensor[]) => void;
      const [x, ...rest] = args as tf.Tensor[];
      const params = rest.slice(0, PARAM_NAMES.length), scales = rest.slice(PARAM_NAMES.length);
      const inputs: tf.NamedTensorMap = { x };
      PARAM_NAMES.forEach((name, i) => inputs[name] = params[i]);
      if (drop) [inputs.scale1, inputs.scale2] = scales;
      const outs = tf.engine().runKernel(BLOCK_FWD, inputs, attrs) as tf.Tensor[];
      save([x, ...outs.slice(1), ...scales]);
      return {
        value: outs[0],
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const bwd: tf.NamedTensorMap = { dy, x: saved[0] };
          SAVED.forEach((name, i) => bwd[name] = saved[i + 1]);
          PARAM_NAMES.forEach((name, i) => bwd[name] = params[i]);
          if (drop) [bwd.scale1, bwd.scale2] = saved.slice(SAVED.length + 1);
          const grads = tf.engine().runKernel(BLOCK_BWD, bwd, attrs) as tf.Tensor[];
          // the scales are drawn, not learned: no gradient flows to them
          return [...grads, ...scales.map((t) => tf.zerosLike(t))];
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as unknown as BlockOp;
  blockOps.set(key, op);
  return op;
}

/**
 * The pre-norm block `x [B, T, D] -> [B, T, D]` as one kernel (and one for its gradient), the
 * same function, bit for bit, as the composite block. Needs {@link fusedBlockAvailable}.
 *
 * @param dropScales drop-path: the two branches' per-sample scales `[B, 1, 1]` (`dropPathScale`
 *   in `lib/vit/layers.ts`), attention's first; omitted without drop-path
 */
export function fusedBlock(
  x: tf.Tensor3D,
  p: BlockParams,
  heads: number,
  eps1: number,
  eps2: number,
  dropScales?: readonly [tf.Tensor, tf.Tensor],
): tf.Tensor3D {
  register();
  const [B, T] = x.shape, F = p.fc1W.shape[1] ?? 0;
  const nativeGelu = nativeEltwise(B * T * F) !== null;
  const op = blockOp(heads, eps1, eps2, nativeGelu, dropScales !== undefined);
  return op(x, ...PARAM_NAMES.map((n) => p[n]), ...(dropScales ?? [])) as tf.Tensor3D;
}
