"""A tiny ViT in plain PyTorch, in timm's `VisionTransformer` names and forward, as a fixture.

timm cannot be imported everywhere this project is tested, so this file writes the same module
structure (the parameter names `timm.models.vision_transformer.VisionTransformer(...,
num_classes=0, global_pool="token")` has with its defaults: class token, learned position
table with a CLS position, qkv bias, no LayerScale, LayerNorm eps 1e-6, exact GELU) and
follows its forward: patch convolution, CLS + position table, pre-norm blocks, final norm,
the CLS token.

    /work/venv/bin/python tools/make_timm_fixture.py            # writes the fixture
    /work/venv/bin/python tools/make_timm_fixture.py --check DIR  # load DIR/model.safetensors

The fixture (`tests/fixtures/timm_vit_tiny/`, a few KB): `model.safetensors` (random weights,
seed 0, in timm names), `config.json` (timm's model arguments and `pretrained_cfg`),
`input.npy` (float32 `[N, C, H, W]`, already normalised) and `features.npy` (float32 `[N, D]`,
the module's output on it). `--check DIR` builds the module from `DIR/config.json`, loads
`DIR/model.safetensors` with `strict=True` (the encoder part: tensors not starting with
`decoder`, `mask_token` or `head`) and prints the features of `input.npy` beside it, if any.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "timm_vit_tiny"
SHAPE = dict(img_size=8, patch_size=4, in_chans=1, embed_dim=16, depth=2, num_heads=2, mlp_ratio=4.0)
MEAN, STD = [0.5], [0.25]


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):  # [B, C, H, W] -> [B, L, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, H, N, hd] each
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf), timm's default
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """timm's names and forward for class_token=True, global_pool="token", num_classes=0."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio):
        super().__init__()
        L = (img_size // patch_size) ** 2
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + L, embed_dim))
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward_features(self, x):
        x = self.patch_embed(x)  # [B, L, D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # [B, 1+L, D]
        x = x + self.pos_embed  # timm: concat, then add (the CLS token has a position)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        return self.forward_features(x)[:, 0]  # the CLS token after the final norm


def randomize(model, gen):
    """Weights far from an identity init, so a wrong layout cannot pass by accident."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def write_fixture():
    gen = torch.Generator().manual_seed(0)
    model = VisionTransformer(**SHAPE).eval()
    randomize(model, gen)
    n, c, s = 4, SHAPE["in_chans"], SHAPE["img_size"]
    x = torch.randn((n, c, s, s), generator=gen)
    with torch.no_grad():
        feats = model(x)
    OUT.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(OUT / "model.safetensors"), metadata={"format": "pt"})
    (OUT / "model.safetensors").chmod(0o644)
    config = {
        "architecture": "VisionTransformer",
        **{k: (int(v) if k != "mlp_ratio" else v) for k, v in SHAPE.items()},
        "num_classes": 0,
        "global_pool": "token",
        "pretrained_cfg": {"mean": MEAN, "std": STD, "input_size": [c, s, s], "num_classes": 0},
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    np.save(OUT / "input.npy", x.numpy().astype(np.float32))
    np.save(OUT / "features.npy", feats.numpy().astype(np.float32))
    print(f"wrote {OUT}: {len(state)} tensors, features {tuple(feats.shape)}")


def check(folder):
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    model = VisionTransformer(**{k: cfg[k] for k in SHAPE}).eval()
    state = load_file(str(folder / "model.safetensors"))
    encoder = {k: v for k, v in state.items() if not k.startswith(("decoder", "mask_token", "head"))}
    model.load_state_dict(encoder, strict=True)
    print(f"loaded {len(encoder)} of {len(state)} tensors with strict=True")
    x_path = folder / "input.npy"
    if x_path.exists():
        with torch.no_grad():
            feats = model(torch.from_numpy(np.load(x_path)))
        np.save(folder / "torch_features.npy", feats.numpy().astype(np.float32))
        print(f"wrote {folder / 'torch_features.npy'} {tuple(feats.shape)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        write_fixture()
