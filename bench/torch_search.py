#!/usr/bin/python3
"""The layer-progressive neuron-path search of trace-path as a plain PyTorch eager loop (the way the
paper's official code runs it, images batched): for each batch of images and layer l, one batch of
m samples per image in which the
class-token FFN rows of the layers before l hold the clean row with the chosen neuron scaled by
alpha_k, layer l's row is alpha_k times the clean row (do-interventions, as forward hooks), a
forward pass, the sum of the target probabilities, and torch.autograd.grad with respect to the
intervened rows; JAS (product form) picks the neuron. A developer tool for bench/trace-scale.ts:
it times the same work vitpath's search does on a ViT of the same architecture and sizes (random
weights) and prints one JSON line. Never run by npm test.

usage: torch_search.py '{"image": 224, "channels": 3, "patch": 16, "width": 384, "depth": 12,
                         "heads": 6, "ffn": 1536, "classes": 1000, "steps": 20, "images": 2,
                         "threads": 2, "batch": 1}'
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, f)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(f, d)

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["width"]
        self.patch = nn.Conv2d(c["channels"], d, c["patch"], c["patch"])
        n = (c["image"] // c["patch"]) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, c["heads"], c["ffn"]) for _ in range(c["depth"]))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c["classes"])

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def search(model, images, targets, m):
    """A batch of B images: L passes of B*m samples, do-interventions on the class-token FFN row."""
    blocks = model.blocks
    L = len(blocks)
    B = images.shape[0]
    alphas = (torch.arange(m, dtype=torch.float32) / m).repeat(B)  # [B*m], sample (i, k) at i*m + k
    # Clean rows (the activation output, i.e. fc2's input, at the class token), [B, F] per layer.
    clean = {}
    hooks = [b.act.register_forward_hook(lambda mod, i, o, l=l: clean.__setitem__(l, o[:, 0].detach().clone())) for l, b in enumerate(blocks)]
    with torch.no_grad():
        model(images)
    for h in hooks:
        h.remove()
    chosen = []  # per layer: LongTensor [B]
    x = images.repeat_interleave(m, 0)
    t = targets.repeat_interleave(m)
    sample = torch.arange(B * m)
    for li in range(L):
        rows = {}
        for lj in range(li + 1):
            a = clean[lj].repeat_interleave(m, 0)  # [B*m, F]
            if lj < li:
                r = a.clone()
                p = chosen[lj].repeat_interleave(m)
                r[sample, p] = alphas * a[sample, p]
            else:
                r = alphas[:, None] * a
            rows[lj] = r.requires_grad_(True)

        def edit(mod, inp, out, l):
            if l not in rows:
                return out
            out = out.clone()
            out[:, 0] = rows[l]
            return out

        hooks = [b.act.register_forward_hook(lambda mod, i, o, l=l: edit(mod, i, o, l)) for l, b in enumerate(blocks)]
        prob = torch.softmax(model(x), -1)[sample, t].sum()
        grads = torch.autograd.grad(prob, [rows[lj] for lj in range(li + 1)])
        for h in hooks:
            h.remove()
        g = grads[li].view(B, m, -1).sum(1)  # [B, F]
        g_prev = torch.zeros(B)
        w_prev = torch.zeros(B)
        for lj in range(li):
            p = chosen[lj]
            g_prev += grads[lj].view(B, m, -1).sum(1)[torch.arange(B), p]
            w_prev += clean[lj][torch.arange(B), p]
        score = (g + g_prev[:, None]) * ((clean[li] + w_prev[:, None]) / m)
        chosen.append(torch.argmax(score, 1))
    return torch.stack(chosen, 1)


def main():
    c = json.loads(sys.argv[1])
    torch.manual_seed(0)
    torch.set_num_threads(c.get("threads", 1))
    model = ViT(c).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    images = torch.rand(c["images"], c["channels"], c["image"], c["image"])
    targets = torch.arange(c["images"]) % c["classes"]
    batch = c.get("batch", 1)
    search(model, images[:1], targets[:1], 2)  # warm-up
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(0, c["images"], batch):
        search(model, images[i : i + batch], targets[i : i + batch], c["steps"])
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": batch, "images": c["images"], "seconds": wall, "cpuSeconds": cpu, "imagesPerSecond": c["images"] / wall}))


if __name__ == "__main__":
    main()
