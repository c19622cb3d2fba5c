#!/usr/bin/env python3
"""PyTorch CPU reference for `deno task bench` (peer measurement only).

PyTorch is not a dependency of amt-mim; this script exists so the TypeScript
numbers can be put next to an eager-mode PyTorch CPU run of the same models.

It times full training steps (forward + backward + AdamW update) of the fixed
benchmark models -- median of --steps (>= 8) timed steps after 2 warm-up steps,
each case repeated --repeats times round-robin, the minimum of the medians
reported -- and one no-grad saliency pass over a batch of 256 images.

Timed region of a training step (same as bench/bench.ts): drawing the step's
random index plan, gathering the visible/masked patches and position
embeddings, forward, loss, backward, AdamW step, reading the loss. The patch
table itself is made once per case (data loading is not timed).

    .venv/bin/python bench/pytorch_bench.py [--preset vit-tiny-32|fashion-mnist|reference]
        [--threads 2] [--steps 10] [--repeats 3] [--attn sdpa|explicit]
        [--only name,...] [--out FILE.json] [--config] [--autocast off|bf16] [--batch N]

--autocast bf16 runs each step's forward and loss under
torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's CPU mixed precision: matmuls in
bf16, reductions and norms in fp32); backward and the optimizer step run outside the
context, as PyTorch recommends (backward ops use the dtypes the forward picked). Compare
with `deno task bench --precision=bf16`. The JSON report records "autocast".
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is not needed

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CASES = ["mae-random-75", "mae-amt-45-40", "simmim-random-60", "simmim-amt-44-26", "saliency-b256"]

# Encoder / decoder widths are the same for both presets (the TS "vit-tiny" shape).
# "reference" is the reference-scale run's step (vit-tiny-28, batch 256; issue #14).
PRESETS = {
    "vit-tiny-32": {"image": 32, "patch": 4, "channels": 3, "batch": 64},
    "fashion-mnist": {"image": 28, "patch": 4, "channels": 1, "batch": 64},
    "reference": {"image": 28, "patch": 4, "channels": 1, "batch": 256},
}
DIM, DEPTH, HEADS, MLP_RATIO = 192, 6, 3, 4
DEC_DIM, DEC_DEPTH, DEC_HEADS = 128, 2, 4
SALIENCY_BATCH = 256

# Token counts each preset must produce (checked against the counting rules below).
EXPECTED = {
    "vit-tiny-32": {
        "mae-random-75": (48, 0, 16),
        "mae-amt-45-40": (28, 26, 10),
        "simmim-random-60": (40, 0, 24),
        "simmim-amt-44-26": (32, 20, 12),
    },
    "fashion-mnist": {
        "mae-random-75": (36, 0, 13),
        "mae-amt-45-40": (22, 19, 8),
        "simmim-random-60": (30, 0, 19),
        "simmim-amt-44-26": (22, 13, 14),
    },
}


# ---------------------------------------------------------------- model


def sincos_table(dim: int, grid: int) -> torch.Tensor:
    """[grid*grid, dim] fixed table: first half encodes the column, second half the row;
    each half is [sin(pos*w_k), cos(pos*w_k)] with w_k = 10000^(-k/(dim/4))."""
    quarter = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    cols = cols.reshape(-1, 1).double() * omega
    rows = rows.reshape(-1, 1).double() * omega
    return torch.cat([cols.sin(), cols.cos(), rows.sin(), rows.cos()], dim=1).float()


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, heads: int, mode: str):
        super().__init__()
        self.heads, self.head_dim, self.mode = heads, dim // heads, mode
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, want_attn: bool = False):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = None
        if want_attn or self.mode == "explicit":
            # explicit softmax attention, as the TypeScript side computes it
            attn = torch.softmax((q * self.head_dim**-0.5) @ k.transpose(-2, -1), dim=-1)
            ctx = attn @ v
        else:
            ctx = F.scaled_dot_product_attention(q, k, v)
        return self.proj(ctx.transpose(1, 2).reshape(b, t, d)), attn


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)); x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, mode: str):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, mode)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, dim * MLP_RATIO)
        self.act = nn.GELU()  # exact (erf) GELU
        self.fc2 = nn.Linear(dim * MLP_RATIO, dim)

    def forward(self, x: torch.Tensor, want_attn: bool = False):
        a, attn = self.attn(self.ln1(x), want_attn)
        x = x + a
        x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
        return x, attn


def take_rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """table [B, L, C], idx [B, K] -> [B, K, C]."""
    return torch.gather(table, 1, idx.unsqueeze(-1).expand(-1, -1, table.shape[-1]))


class Encoder(nn.Module):
    """ViT encoder: linear patch embedding, CLS token, fixed sin-cos positions, blocks, norm."""

    def __init__(self, patch_dim: int, grid: int, mode: str):
        super().__init__()
        self.patch_embed = nn.Linear(patch_dim, DIM)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.register_buffer("pos", sincos_table(DIM, grid), persistent=False)  # CLS position: 0
        self.blocks = nn.ModuleList(Block(DIM, HEADS, mode) for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM, eps=1e-6)

    def embed(self, patches: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """patches [B, L, P]; idx [B, K] patch positions to keep (None: all) -> [B, 1+K, D]."""
        if idx is None:
            x = self.patch_embed(patches) + self.pos
        else:
            x = self.patch_embed(take_rows(patches, idx)) + self.pos[idx]
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)

    def run(self, x: torch.Tensor, last_attn: bool = False):
        attn = None
        for i, blk in enumerate(self.blocks):
            x, a = blk(x, last_attn and i == len(self.blocks) - 1)
            if a is not None:
                attn = a
        return self.norm(x), attn


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class MAE(nn.Module):
    """MAE; the decoder sees [CLS | visible | mask tokens] (thrown patches get no slot).

    Attention is permutation-equivariant and positions enter only through the added
    embeddings, so this layout equals MAE's un-shuffled one up to a token permutation
    (the TypeScript model uses the same layout)."""

    def __init__(self, patch_dim: int, grid: int, mode: str):
        super().__init__()
        self.encoder = Encoder(patch_dim, grid, mode)
        self.dec_embed = nn.Linear(DIM, DEC_DIM)
        self.mask_token = nn.Parameter(torch.randn(1, 1, DEC_DIM) * 0.02)
        self.register_buffer("dec_pos", sincos_table(DEC_DIM, grid), persistent=False)
        self.dec_blocks = nn.ModuleList(Block(DEC_DIM, DEC_HEADS, mode) for _ in range(DEC_DEPTH))
        self.dec_norm = nn.LayerNorm(DEC_DIM, eps=1e-6)
        self.dec_pred = nn.Linear(DEC_DIM, patch_dim)
        init_weights(self)

    def loss(self, patches: torch.Tensor, visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        b, kv, km = patches.shape[0], visible.shape[1], masked.shape[1]
        latent, _ = self.encoder.run(self.encoder.embed(patches, visible))  # [B, 1+Kv, D]
        x = self.dec_embed(latent)
        vis = x[:, 1:] + self.dec_pos[visible]
        msk = self.mask_token.expand(b, km, -1) + self.dec_pos[masked]
        h = torch.cat([x[:, :1], vis, msk], dim=1)
        for blk in self.dec_blocks:
            h, _ = blk(h)
        pred = self.dec_pred(self.dec_norm(h)[:, 1 + kv:])  # [B, Km, P]
        target = take_rows(patches, masked)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased, as torch.var / the TS side
        target = (target - mean) / (var + 1e-6).sqrt()
        return ((pred - target) ** 2).mean()


class SimMIM(nn.Module):
    """SimMIM; the encoder sees [CLS | visible | mask tokens] (thrown patches removed),
    a linear head predicts each masked patch's pixels, L1 loss."""

    def __init__(self, patch_dim: int, grid: int, mode: str):
        super().__init__()
        self.encoder = Encoder(patch_dim, grid, mode)
        self.mask_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.head = nn.Linear(DIM, patch_dim)
        init_weights(self)

    def loss(self, patches: torch.Tensor, visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        b, kv, km = patches.shape[0], visible.shape[1], masked.shape[1]
        vis = self.encoder.embed(patches, visible)  # [B, 1+Kv, D]
        msk = self.mask_token.expand(b, km, -1) + self.encoder.pos[masked]
        tokens, _ = self.encoder.run(torch.cat([vis, msk], dim=1))
        pred = self.head(tokens[:, 1 + kv:])
        return (pred - take_rows(patches, masked)).abs().mean()


# ---------------------------------------------------------------- index plans


def plan_counts(name: str, L: int, U: int, unit: int) -> tuple[int, int, int]:
    """(masked, thrown, visible) patch counts of a case."""
    if name == "mae-random-75":  # the toolkit's rule: floor of the masked count (36 / 13 at L = 49)
        km = math.floor(L * 0.75)
        return km, 0, L - km
    if name == "mae-amt-45-40":  # MAE counts with floor
        km = math.floor(L * 0.45)
        kt = math.floor(L * (0.45 + 0.40)) - km
        return km, kt, L - km - kt
    per = unit * unit
    if name == "simmim-random-60":  # SimMIM counts mask units with ceil
        um = math.ceil(U * 0.6)
        return um * per, 0, (U - um) * per
    if name == "simmim-amt-44-26":
        um, ut = math.ceil(U * 0.44), math.ceil(U * 0.26)
        return um * per, ut * per, (U - um - ut) * per
    raise KeyError(name)


def unit_table(grid: int, unit: int) -> torch.Tensor:
    """[U, unit*unit] patch positions of each mask unit (unit x unit patches)."""
    ug = grid // unit
    rows = []
    for u in range(ug * ug):
        ur, uc = divmod(u, ug)
        rows.append([(ur * unit + dr) * grid + uc * unit + dc for dr in range(unit) for dc in range(unit)])
    return torch.tensor(rows, dtype=torch.long)


def make_planner(name: str, batch: int, grid: int, unit: int, gen: torch.Generator):
    """A function drawing one step's (visible, masked) [B, K] index tensors.

    random: uniform random order of units; attention-driven (amt): Plackett-Luce order,
    keys w / Exp(1) with random stand-in weights w (as the TS bench does); the first
    units are masked, the next thrown, the rest visible."""
    L = grid * grid
    k = unit if name.startswith("simmim") else 1
    U = L // (k * k)
    km, kt, kv = plan_counts(name, L, U, k)
    per = k * k
    table = unit_table(grid, k)
    weighted = "amt" in name

    def draw():
        if weighted:
            w = torch.rand(batch, U, generator=gen)
            e = -torch.log1p(-torch.rand(batch, U, generator=gen))  # Exp(1)
            order = torch.argsort(w / e, dim=1, descending=True)
            units_m, units_v = order[:, : km // per], order[:, (km + kt) // per:]
        else:
            order = torch.argsort(torch.rand(batch, U, generator=gen), dim=1)
            units_v, units_m = order[:, : kv // per], order[:, kv // per:]
        if per == 1:
            return units_v, units_m
        return table[units_v].reshape(batch, -1), table[units_m].reshape(batch, -1)

    return draw, (km, kt, kv)


# ---------------------------------------------------------------- timing


def optimizer_for(model: nn.Module) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim == 2 else no_decay).append(p)  # no decay: biases, norms, tokens
    return torch.optim.AdamW(
        [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05,
    )


def time_steps(fn, steps: int) -> tuple[float, float]:
    """2 warm-up calls, then `steps` timed ones: (median wall ms, median process-CPU ms).
    The CPU time (all threads) is a diagnostic for runs on a loaded machine."""
    for _ in range(2):
        fn()
    wall, cpu = [], []
    for _ in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def autocast_ctx(autocast: str):
    """The mixed-precision context for a step's forward: bf16 autocast on the CPU, or none."""
    if autocast == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_case(name: str, preset: dict, mode: str, steps: int, rep: int,
               autocast: str = "off") -> tuple[float, float]:
    grid = preset["image"] // preset["patch"]
    L, P = grid * grid, preset["patch"] ** 2 * preset["channels"]
    unit = 2 if preset["image"] % (2 * preset["patch"]) == 0 else 1
    torch.manual_seed(0)
    model = (MAE if name.startswith("mae") else SimMIM)(P, grid, mode)
    opt = optimizer_for(model)
    gen = torch.Generator().manual_seed(1000 * rep + CASES.index(name))
    B = preset["batch"]
    patches = torch.rand(B, L, P, generator=gen) * 2 - 1  # made once: data loading is not timed
    draw, _ = make_planner(name, B, grid, unit, gen)

    def step():
        visible, masked = draw()
        with autocast_ctx(autocast):
            loss = model.loss(patches, visible, masked)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    return time_steps(step, steps)


def saliency_case(preset: dict, mode: str, steps: int, rep: int,
                  autocast: str = "off") -> tuple[float, float]:
    """No-grad encoder pass on all tokens of 256 images -> [256, L] saliency maps.
    Timed: patchify of an image tensor, encoder, CLS-row min-max/mean reduction."""
    s, p, c = preset["image"], preset["patch"], preset["channels"]
    grid = s // p
    torch.manual_seed(0)
    model = MAE(p * p * c, grid, mode).eval()
    gen = torch.Generator().manual_seed(1000 * rep + 99)
    images = torch.rand(SALIENCY_BATCH, c, s, s, generator=gen)

    def step():
        with torch.inference_mode(), autocast_ctx(autocast):
            n = images.shape[0]
            patches = images.reshape(n, c, grid, p, grid, p).permute(0, 2, 4, 3, 5, 1).reshape(n, grid * grid, -1)
            _, attn = model.encoder.run(model.encoder.embed(patches, None), last_attn=True)
            row = attn[:, :, 0, 1:]  # [B, H, L]: CLS row without the CLS column
            lo = row.amin(dim=-1, keepdim=True)
            hi = row.amax(dim=-1, keepdim=True)
            maps = ((row - lo) / (hi - lo).clamp_min(1e-12)).mean(dim=1)  # [B, L]
            maps.contiguous()

    return time_steps(step, steps)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="vit-tiny-32", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per repeat (>= 8)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per case; min of medians is reported")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "explicit"],
                    help="sdpa: F.scaled_dot_product_attention; explicit: softmax(q k^T) v (as the TS side)")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--batch", type=int, help="overrides the preset's training batch")
    ap.add_argument("--out", help="write the JSON report here")
    ap.add_argument("--config", action="store_true", help="print torch.__config__.show() first")
    ap.add_argument("--autocast", default="off", choices=["off", "bf16"],
                    help='bf16: forward + loss under torch.autocast("cpu", dtype=torch.bfloat16)')
    args = ap.parse_args()
    if args.steps < 8:
        ap.error(f"--steps={args.steps}: at least 8 are timed")
    if args.repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be >= 1")
    names = CASES if not args.only else args.only.split(",")
    bad = [n for n in names if n not in CASES]
    if bad:
        ap.error(f"--only: unknown case(s) {', '.join(bad)}; valid: {', '.join(CASES)}")

    torch.set_num_threads(args.threads)
    preset = dict(PRESETS[args.preset])
    if args.batch is not None:
        if args.batch < 1:
            ap.error(f"--batch={args.batch}: at least 1")
        preset["batch"] = args.batch
    grid = preset["image"] // preset["patch"]
    unit = 2 if preset["image"] % (2 * preset["patch"]) == 0 else 1
    for n in names:
        expected = EXPECTED["fashion-mnist" if args.preset == "reference" else args.preset]
        if n in expected:
            got = make_planner(n, 1, grid, unit, torch.Generator())[1]
            assert got == expected[n], (n, got)

    if args.config:
        print(torch.__config__.show())
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), attention {args.attn}, "
          f"autocast {args.autocast}, preset {args.preset}, batch {preset['batch']}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical); env: {env or '-'}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    medians: dict[str, list[float]] = {n: [] for n in names}
    cpu_ms: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.repeats):  # round-robin so background load hits every case alike
        for n in names:
            if n == "saliency-b256":
                wall, cpu = saliency_case(preset, args.attn, args.steps, rep, args.autocast)
            else:
                wall, cpu = train_case(n, preset, args.attn, args.steps, rep, args.autocast)
            medians[n].append(wall)
            cpu_ms[n].append(cpu)

    results = []
    print("\n| case | ms/step (min of medians) | images/s | medians of repeats (ms) | CPU ms/step (min) |")
    print("|---|---|---|---|---|")
    for n in names:
        ms = min(medians[n])
        imgs = (SALIENCY_BATCH if n == "saliency-b256" else preset["batch"]) * 1000.0 / ms
        results.append({"name": n, "ms_per_step": round(ms, 3), "images_per_s": round(imgs, 2)})
        print(f"| {n} | {ms:.1f} | {imgs:.0f} | {', '.join(f'{m:.1f}' for m in medians[n])} | {min(cpu_ms[n]):.1f} |")
    by = {r["name"]: r["ms_per_step"] for r in results}
    if "mae-random-75" in by and "mae-amt-45-40" in by:
        print(f"MAE+AMT / MAE step-time ratio: {by['mae-amt-45-40'] / by['mae-random-75']:.3f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if args.out:
        report = {"backend": "pytorch-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "autocast": None if args.autocast == "off" else args.autocast,
                  "preset": args.preset, "batch": preset["batch"], "results": results}
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
