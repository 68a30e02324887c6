#!/usr/bin/python3
"""Export tiny Vision Transformers in the styles users bring, with the real torch.onnx.export, and
write PyTorch-autograd reference values beside each model (fixtures/exports/).

A developer tool: npm test and CI never run it; they read what it committed. Needs Debian's
python3-torch (1.13), python3-torchvision (0.14), python3-onnx (1.12), python3-numpy, python3-pil;
run it with /usr/bin/python3 (not a pyenv python):

    /usr/bin/python3 scripts/export-fixtures.py            # every fixture, into fixtures/exports
    /usr/bin/python3 scripts/export-fixtures.py --only hf-vit

Styles (each module is written here in the structure of its library; nothing is imported from
transformers or timm, which Debian does not package):

  hf-vit              Hugging Face ViTForImageClassification: separate query/key/value Linear
                      layers, view/permute/matmul/softmax attention with sizes taken from the
                      tensor (shape arithmetic in the export), LayerNorm eps 1e-12, class token,
                      exact GELU, classifier on the class token (no pooler). Opset 14 (decomposed
                      LayerNorm).
  hf-vit-fp16         the same structure in float16: weights, activations, input and output. torch
                      1.13 has no float16 CPU kernels (and optimum's --fp16 needs CUDA), so the model
                      is exported in float32 at opset 17 and converted the way onnxconverter-common's
                      convert_float_to_float16 does (initializers, Constant tensors, value types and
                      Cast targets float -> float16; attributes such as LayerNormalization's epsilon
                      stay float).
  timm-vit-gelu20     timm VisionTransformer: fused qkv Linear, reshape/permute/unbind, LayerNorm eps
                      1e-6, class token, head on the class token. torch 1.13 exports at most opset
                      17, so the model is exported at 17 and each Erf-GELU subgraph (Div, Erf, Add,
                      Mul, Mul) is rewritten into one `Gelu` node (approximate="none") with the opset
                      import set to 20 (no op of these graphs changed meaning between 17 and 20).
  timm-vit-gelu20-tanh the same with GELU(approximate="tanh"), whose exported Pow/Mul/Add/Tanh
                      subgraph is rewritten into `Gelu` approximate="tanh" at opset 20.
  deit-distilled      timm DistilledVisionTransformer: class and distillation tokens, two linear heads
                      (class token, distillation token) averaged at inference. Opset 13.
  cls-meanpool        a class token concatenated to the patches, but the head reads the mean over all
                      tokens (class token included). Opset 17.
  cls-meanpool-patches timm's global_pool="avg" with a class token: the mean over the patch tokens
                      only (x[:, 1:].mean(1)). Opset 17.

Each model is trained for a few hundred Adam steps on a seeded synthetic task (class templates plus
noise) with label smoothing, so that its probabilities are neither uniform nor saturated (a
saturated softmax makes float32 probability gradients lose digits). Reference values are computed
in float64 on the same weights (for hf-vit-fp16: the float16 weights, and the float16-rounded
constants of the export, evaluated in float64):

  logits            for every reference image (and per head for DeiT);
  clean rows        each block's FFN neuron row (after the activation) at the token;
  gradients         dF/dR_l for every block l with every block's row held at its clean value by a
                    do-intervention (F = softmax probability of the target class);
  search            the layer-progressive search of the README: at layer l, rows of earlier layers
                    held at their clean values except the chosen neuron scaled by alpha_k, row l
                    scaled whole by alpha_k, later rows as computed; alpha_k = k/m, k = 0..m-1
                    (left Riemann, m = 20); product-JAS score of every candidate; the chosen
                    neuron; the relative margin to the runner-up (near-ties are flagged);
  path JAS          product and sum forms of the found path, and F(clean) - F(path zeroed).

The token is the class token ('cls') or, for mean-pooled models, the mean of the rows the head
averages ('mean'): R = mean over those rows, edited as n'[:, p] = n[:, p] + (s - 1) m + o.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as Fn
from onnx import helper, numpy_helper, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS = 20          # Riemann steps of the reference search
NEAR_TIE = 1e-3     # relative margin below which a layer's pick is flagged as a near-tie
REF_IMAGES = 4      # images per input kind with full reference values
IMAGES_PER_CLASS = 2


# ---------------------------------------------------------------------------------------------
# Synthetic data: one smooth template per class, plus noise, quantized to 8-bit pixels.

def make_templates(channels, size, classes, seed):
    rng = np.random.RandomState(seed)
    low = rng.rand(classes, channels, 4, 4)
    up = np.kron(low, np.ones((1, 1, size // 4, size // 4)))
    # a little smoothing so patches are not constant
    k = np.array([0.25, 0.5, 0.25])
    for ax in (2, 3):
        up = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 1, mode='edge'), k, mode='valid'), ax, up)
    return up


def sample_images(templates, n, rng, noise=0.35):
    c = rng.randint(0, templates.shape[0], size=n)
    x = 0.55 * templates[c] + 0.2 + noise * rng.randn(n, *templates.shape[1:])
    u8 = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    return u8, c


def to_input(u8):
    """Pixels in 0..1 exactly as vitpath computes them (float32 division by 255)."""
    return torch.from_numpy(u8.astype(np.float32) / np.float32(255))


# ---------------------------------------------------------------------------------------------
# Model styles. Every model exposes `acts` (the FFN activation modules, in block order) and
# `pool_rows(tokens)` (the rows its head reads for mean pooling, or None).

class Gelu(nn.Module):
    """Exact or tanh GELU; `div` is the constant the export divides by (sqrt 2, or its float16 rounding)."""

    def __init__(self, approximate='none', div=math.sqrt(2.0)):
        super().__init__()
        self.approximate = approximate
        self.div = div

    def forward(self, x):
        if self.approximate == 'tanh' or self.div == math.sqrt(2.0):
            return Fn.gelu(x, approximate=self.approximate)
        return x * 0.5 * (1.0 + torch.erf(x / self.div))


# --- Hugging Face ViT (modeling_vit.py structure) ---

class HFEmbeddings(nn.Module):
    def __init__(self, c, img, patch, d):
        super().__init__()
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.patch_embeddings = nn.Conv2d(c, d, kernel_size=patch, stride=patch)
        self.position_embeddings = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        self.dropout = nn.Dropout(0.0)

    def forward(self, pixel_values):
        batch_size = pixel_values.shape[0]
        embeddings = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)
        cls_tokens = self.cls_token.expand(batch_size, -1, -1)
        embeddings = torch.cat((cls_tokens, embeddings), dim=1)
        embeddings = embeddings + self.position_embeddings
        return self.dropout(embeddings)


class HFSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = d // heads
        self.all_head_size = d
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.dropout = nn.Dropout(0.0)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        attention_probs = self.dropout(attention_probs)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        return context_layer.view(new_context_layer_shape)


class HFLayer(nn.Module):
    def __init__(self, d, heads, ffn, gelu_div):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(d, eps=1e-12)
        self.attention = HFSelfAttention(d, heads)
        self.attention_output = nn.Linear(d, d)  # ViTSelfOutput.dense
        self.layernorm_after = nn.LayerNorm(d, eps=1e-12)
        self.intermediate = nn.Linear(d, ffn)     # ViTIntermediate.dense
        self.intermediate_act_fn = Gelu(div=gelu_div)
        self.output = nn.Linear(ffn, d)           # ViTOutput.dense

    def forward(self, hidden_states):
        attention_output = self.attention_output(self.attention(self.layernorm_before(hidden_states)))
        hidden_states = attention_output + hidden_states
        layer_output = self.intermediate_act_fn(self.intermediate(self.layernorm_after(hidden_states)))
        return self.output(layer_output) + hidden_states


class HFViT(nn.Module):
    def __init__(self, c=1, img=28, patch=7, d=32, heads=2, ffn=128, depth=2, classes=10, gelu_div=math.sqrt(2.0)):
        super().__init__()
        self.embeddings = HFEmbeddings(c, img, patch, d)
        self.layer = nn.ModuleList([HFLayer(d, heads, ffn, gelu_div) for _ in range(depth)])
        self.layernorm = nn.LayerNorm(d, eps=1e-12)
        self.classifier = nn.Linear(d, classes)

    @property
    def acts(self):
        return [l.intermediate_act_fn for l in self.layer]

    def pool_rows(self, tokens):
        return None

    def forward(self, pixel_values):
        h = self.embeddings(pixel_values)
        for layer in self.layer:
            h = layer(h)
        sequence_output = self.layernorm(h)
        return self.classifier(sequence_output[:, 0, :])


# --- timm VisionTransformer (vision_transformer.py structure) ---

class TimmAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class TimmMlp(nn.Module):
    def __init__(self, dim, hidden, approximate):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = Gelu(approximate)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TimmBlock(nn.Module):
    def __init__(self, dim, heads, hidden, approximate):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = TimmAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = TimmMlp(dim, hidden, approximate)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, c, patch, d):
        super().__init__()
        self.proj = nn.Conv2d(c, d, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimmViT(nn.Module):
    """global_pool: 'token' (class token), 'avg-all' (mean over every token), 'avg' (timm: patches only)."""

    def __init__(self, c=3, img=32, patch=8, d=32, heads=2, mlp_ratio=4, depth=2, classes=10, approximate='none', global_pool='token'):
        super().__init__()
        n = (img // patch) ** 2
        self.global_pool = global_pool
        self.num_prefix_tokens = 1
        self.patch_embed = PatchEmbed(c, patch, d)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        self.blocks = nn.Sequential(*[TimmBlock(d, heads, d * mlp_ratio, approximate) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)

    @property
    def acts(self):
        return [b.mlp.act for b in self.blocks]

    def pool_rows(self, tokens):
        if self.global_pool == 'avg-all':
            return list(range(tokens))
        if self.global_pool == 'avg':
            return list(range(self.num_prefix_tokens, tokens))
        return None

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x)
        if self.global_pool == 'avg-all':
            x = x.mean(dim=1)
        elif self.global_pool == 'avg':
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        else:
            x = x[:, 0]
        return self.head(x)


class DistilledViT(TimmViT):
    """timm's DeiT with a distillation token: head(x[:, 0]) and head_dist(x[:, 1]) averaged at inference."""

    def __init__(self, c=3, img=32, patch=8, d=32, heads=2, mlp_ratio=2, depth=2, classes=10):
        super().__init__(c, img, patch, d, heads, mlp_ratio, depth, classes)
        n = (img // patch) ** 2
        self.num_prefix_tokens = 2
        self.dist_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 2, d) * 0.02)
        self.head_dist = nn.Linear(d, classes)
        self.which = 'avg'  # 'avg' (inference), 'cls', 'dist', or 'both' (training: a pair)

    def forward(self, x):
        x = self.patch_embed(x)
        B = x.shape[0]
        x = torch.cat((self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1), x), dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x)
        x, x_dist = self.head(x[:, 0]), self.head_dist(x[:, 1])
        if self.which == 'both':
            return x, x_dist
        if self.which == 'cls':
            return x
        if self.which == 'dist':
            return x_dist
        return (x + x_dist) / 2


# ---------------------------------------------------------------------------------------------
# Fixture specs

SPECS = {
    'hf-vit': dict(style='Hugging Face ViT (separate q/k/v, LayerNorm eps 1e-12, class token, exact GELU)', kind='gray28', opset=14, hf_axes=True,
                   make=lambda: HFViT(c=1, img=28, patch=7, d=32, heads=2, ffn=96), seed=11),
    'hf-vit-fp16': dict(style='Hugging Face ViT in float16 (weights, activations, input and output)', kind='gray28', opset=17, fp16=True, hf_axes=True,
                        make=lambda: HFViT(c=1, img=28, patch=7, d=32, heads=2, ffn=64), seed=12),
    'timm-vit-gelu20': dict(style='timm ViT (fused qkv, reshape/permute/unbind), Gelu node at opset 20', kind='rgb32', opset=17, gelu_op='none',
                            make=lambda: TimmViT(c=3, img=32, patch=8, d=32, heads=2, mlp_ratio=2), seed=13),
    'timm-vit-gelu20-tanh': dict(style='timm ViT with tanh GELU, Gelu node approximate="tanh" at opset 20', kind='rgb32', opset=17, gelu_op='tanh',
                                 make=lambda: TimmViT(c=3, img=32, patch=8, d=32, heads=2, mlp_ratio=2, approximate='tanh'), seed=14),
    'deit-distilled': dict(style='DeiT distilled (class + distillation tokens, two heads averaged)', kind='rgb32', opset=13,
                           make=lambda: DistilledViT(c=3, img=32, patch=8, d=32, heads=2, mlp_ratio=2), seed=15),
    'cls-meanpool': dict(style='class token concatenated, head on the mean over all tokens', kind='gray28', opset=17,
                         make=lambda: TimmViT(c=1, img=28, patch=7, d=32, heads=4, mlp_ratio=2, global_pool='avg-all'), seed=16),
    'cls-meanpool-patches': dict(style='class token concatenated, head on the mean over the patch tokens (timm global_pool="avg")', kind='gray28', opset=17,
                                 make=lambda: TimmViT(c=1, img=28, patch=7, d=32, heads=2, mlp_ratio=2, global_pool='avg'), seed=17),
}

KINDS = {'gray28': dict(channels=1, size=28, seed=101), 'rgb32': dict(channels=3, size=32, seed=202)}


# ---------------------------------------------------------------------------------------------
# Training

def train(model, templates, seed, steps=300, batch=64, lr=2e-3):
    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3)
    distilled = isinstance(model, DistilledViT)
    model.train()
    for _ in range(steps):
        u8, c = sample_images(templates, batch, rng)
        x = to_input(u8)
        y = torch.from_numpy(c).long()
        if distilled:
            model.which = 'both'
            a, b = model(x)
            loss = 0.5 * (loss_fn(a, y) + loss_fn(b, y))
        else:
            loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if distilled:
        model.which = 'avg'
    model.eval()
    u8, c = sample_images(templates, 512, np.random.RandomState(seed + 1))
    with torch.no_grad():
        p = torch.softmax(model(to_input(u8)), -1)
    acc = float((p.argmax(-1).numpy() == c).mean())
    return {'steps': steps, 'batch': batch, 'lr': lr, 'labelSmoothing': 0.3, 'heldOutAccuracy': acc,
            'heldOutMeanMaxProb': float(p.max(-1).values.mean())}


# ---------------------------------------------------------------------------------------------
# ONNX post-processing

def consumers(graph, name):
    return [n for n in graph.node if name in n.input]


def producer(graph, name):
    for n in graph.node:
        if name in n.output:
            return n
    return None


def rewrite_gelu(model, approximate):
    """Replace each exported GELU subgraph (Erf or Tanh form) by one Gelu node; opset import -> 20.

    The subgraph of one activation is every node on a path from x to y, where x is fc1's output
    (the bias Add after a MatMul, reached backwards from the Erf/Tanh node) and y the tensor the
    next MatMul (fc2) reads, reached forwards. Only Constants, x and the subgraph's own tensors may
    feed it (checked).
    """
    g = model.graph
    marker = 'Erf' if approximate == 'none' else 'Tanh'
    prod = lambda t: producer(g, t)
    count = 0
    for t in [n for n in g.node if n.op_type == marker]:
        # backwards: breadth-first through non-constant inputs to the first fc1 output
        x, frontier = None, list(t.input)
        while frontier and x is None:
            nxt = []
            for name in frontier:
                p = prod(name)
                if p is None or p.op_type == 'Constant':
                    continue
                if p.op_type == 'Add' and any(prod(i) is not None and prod(i).op_type == 'MatMul' for i in p.input):
                    x = name
                    break
                nxt.extend(p.input)
            frontier = nxt
        # forwards: the only consumer chain to the tensor a MatMul reads
        y, frontier = None, list(t.output)
        while frontier and y is None:
            nxt = []
            for name in frontier:
                for c in consumers(g, name):
                    if c.op_type == 'MatMul':
                        y = name
                        break
                    nxt.extend(c.output)
            frontier = nxt
        assert x and y, 'GELU subgraph not found'
        desc, stack = set(), [x]
        while stack:
            name = stack.pop()
            for c in consumers(g, name):
                for o in c.output:
                    if o not in desc and o != y:
                        desc.add(o)
                        stack.append(o)
                    elif o == y:
                        desc.add(o)
        island = [n for n in g.node if n.output[0] in desc and n.op_type != 'MatMul']
        inner = {o for n in island for o in n.output}
        consts = []
        for n in island:
            for i in n.input:
                if i != x and i not in inner:
                    p = prod(i)
                    assert p is not None and p.op_type == 'Constant', (n.op_type, i)
                    consts.append(p)
        idx = min(list(g.node).index(n) for n in island)
        for n in island:
            g.node.remove(n)
        for c in consts:
            if c in g.node and not any(c.output[0] in n.input for n in g.node):
                g.node.remove(c)
        g.node.insert(idx, helper.make_node('Gelu', [x], [y], approximate=approximate))
        count += 1
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid('', 20)])
    return count


def convert_fp16(model):
    """float32 -> float16 everywhere a tensor type lives (onnxconverter-common's convert_float_to_float16)."""
    g = model.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            a = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                arr = numpy_helper.to_array(a.t).astype(np.float16)
                a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
            if n.op_type == 'Cast' and a.name == 'to' and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16


def export(model, kind, opset, path, fp16=False, gelu_op=None, hf_axes=False):
    k = KINDS[kind]
    dummy = torch.zeros(1, k['channels'], k['size'], k['size'])
    # optimum's ViT OnnxConfig declares every input axis dynamic; timm/torch users usually the batch only
    axes = {0: 'batch_size', 1: 'num_channels', 2: 'height', 3: 'width'} if hf_axes else {0: 'batch_size'}
    torch.onnx.export(model, dummy, path, opset_version=opset, input_names=['pixel_values'], output_names=['logits'],
                      dynamic_axes={'pixel_values': axes, 'logits': {0: 'batch_size'}}, do_constant_folding=True)
    m = onnx.load(path)
    notes = []
    if gelu_op:
        c = rewrite_gelu(m, gelu_op)
        notes.append(f'{c} GELU subgraphs rewritten into Gelu(approximate="{gelu_op}"); opset import set to 20')
    if fp16:
        convert_fp16(m)
        notes.append('converted to float16 (initializers, Constant tensors, input/output/value types, Cast targets)')
    if not gelu_op:
        onnx.checker.check_model(m)
    m.producer_name = 'pytorch'
    onnx.save(m, path)
    return m, notes


# ---------------------------------------------------------------------------------------------
# Reference: do-interventions on the FFN neuron rows by forward hooks, gradients by autograd.

class Edit:
    """Per block: row' = row * scale + offset at the token (or the pooled-row mean), or None."""

    def __init__(self, model, token_rows, mean):
        self.model = model
        self.rows = token_rows  # int (a row) or list of rows (mean)
        self.mean = mean
        self.edits = {}
        self.captured = {}
        self.handles = []

    def __enter__(self):
        for l, act in enumerate(self.model.acts):
            self.handles.append(act.register_forward_hook(self.hook(l)))
        return self

    def __exit__(self, *a):
        for h in self.handles:
            h.remove()

    def hook(self, l):
        def f(_m, _inp, out):
            if self.mean:
                r = out[:, self.rows, :].mean(1)
            else:
                r = out[:, self.rows, :]
            self.captured[l] = r
            e = self.edits.get(l)
            if e is None:
                return out
            s, o = e
            out2 = out.clone()
            if self.mean:
                out2[:, self.rows, :] = out[:, self.rows, :] + ((s - 1) * r + o).unsqueeze(1)
            else:
                out2[:, self.rows, :] = r * s + o
            return out2
        return f


def target_prob(logits, target):
    return torch.softmax(logits, -1)[:, target]


class Reference:
    def __init__(self, model, x, target, rows, mean, m=STEPS):
        self.model, self.x, self.target, self.rows, self.mean, self.m = model, x, target, rows, mean, m
        with torch.no_grad(), Edit(model, rows, mean) as e:
            self.logits = model(x)[0]
            self.acts = [e.captured[l][0].clone() for l in range(len(model.acts))]
        self.L = len(self.acts)
        self.F = self.acts[0].shape[0]

    def run(self, states):
        """states: list (samples) of dict layer -> (scale [F], offset [F]); returns F [S], grads {l: [S, F]}."""
        S = len(states)
        x = self.x.expand(S, *self.x.shape[1:])
        layers = sorted({l for st in states for l in st})
        offs = {l: torch.stack([st[l][1] for st in states]).requires_grad_(True) for l in layers}
        scs = {l: torch.stack([st[l][0] for st in states]) for l in layers}
        with Edit(self.model, self.rows, self.mean) as e:
            e.edits = {l: (scs[l], offs[l]) for l in layers}
            f = target_prob(self.model(x), self.target)
        grads = torch.autograd.grad(f.sum(), [offs[l] for l in layers])
        return f.detach(), {l: g for l, g in zip(layers, grads)}

    def do_clean(self, l):
        return (torch.zeros(self.F, dtype=torch.float64), self.acts[l].clone())

    def clean_gradients(self):
        f, g = self.run([{l: self.do_clean(l) for l in range(self.L)}])
        return [g[l][0] for l in range(self.L)]

    def search(self):
        m, L, F = self.m, self.L, self.F
        path, layers = [], []
        for li in range(L):
            states = []
            for k in range(m):
                a = k / m
                st = {}
                for lj in range(li):
                    o = self.acts[lj].clone()
                    o[path[lj]] = a * self.acts[lj][path[lj]]
                    st[lj] = (torch.zeros(F, dtype=torch.float64), o)
                st[li] = (torch.zeros(F, dtype=torch.float64), a * self.acts[li])
                states.append(st)
            _, g = self.run(states)
            G = g[li].sum(0)
            gprev = sum(float(g[lj][:, path[lj]].sum()) for lj in range(li))
            wprev = sum(float(self.acts[lj][path[lj]]) for lj in range(li))
            score = (G + gprev) * ((self.acts[li] + wprev) / m)
            order = torch.argsort(score, descending=True)
            best, second = int(order[0]), int(order[1])
            margin = float((score[best] - score[second]) / abs(score[best])) if score[best] != 0 else 0.0
            path.append(best)
            layers.append({'layer': li, 'neuron': best, 'activation': float(self.acts[li][best]), 'score': float(score[best]),
                           'runnerUp': second, 'margin': margin, 'nearTie': margin < NEAR_TIE,
                           'gradSums': G.tolist(), 'scores': score.tolist()})
        return path, layers

    def path_jas(self, path):
        m, L, F = self.m, self.L, self.F
        states = []
        for k in range(m):
            st = {}
            for l in range(L):
                o = self.acts[l].clone()
                o[path[l]] = (k / m) * self.acts[l][path[l]]
                st[l] = (torch.zeros(F, dtype=torch.float64), o)
            states.append(st)
        f, g = self.run(states)
        w = [float(self.acts[l][path[l]]) for l in range(L)]
        gs = [float(g[l][:, path[l]].sum()) for l in range(L)]
        f_clean = float(target_prob(self.logits[None], self.target)[0])
        return {'product': sum(w) / m * sum(gs), 'sum': sum(wl / m * gl for wl, gl in zip(w, gs)),
                'completenessGap': f_clean - float(f[0]), 'fZeroed': float(f[0])}


def reference_for(model, images, labels, token, head=None):
    """Full reference values for one (token, head) setting over the reference images."""
    out = []
    for u8, label in zip(images, labels):
        x = to_input(u8[None]).double()
        with torch.no_grad():
            tokens = tokens_of(model, x)
        if token == 'mean':
            rows, mean = model.pool_rows(tokens), True
        else:
            rows, mean = token, False
        if head is not None:
            model.which = head
        ref = Reference(model, x, int(label), rows, mean)
        path, layers = ref.search()
        out.append({
            'target': int(label),
            'logits': ref.logits.tolist(),
            'probability': float(torch.softmax(ref.logits, -1)[int(label)]),
            'activations': [a.tolist() for a in ref.acts],
            'cleanGradients': [g.tolist() for g in ref.clean_gradients()],
            'path': path,
            'layers': layers,
            'jas': ref.path_jas(path),
        })
    return out


def tokens_of(model, x):
    seen = {}
    def hook(_m, _i, o):
        seen['t'] = o.shape[1]
    h = model.acts[0].register_forward_hook(hook)
    model(x)
    h.remove()
    return seen['t']


# ---------------------------------------------------------------------------------------------
# PNG writer (8-bit gray or RGB, no filter), so the images need nothing beyond zlib.

def write_png(path, u8):
    if u8.ndim == 3 and u8.shape[0] == 1:
        u8 = u8[0]
    color = 0 if u8.ndim == 2 else 2
    if u8.ndim == 3:
        u8 = np.transpose(u8, (1, 2, 0))
    h, w = u8.shape[:2]
    raw = b''.join(b'\x00' + u8[r].tobytes() for r in range(h))
    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)
    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)


def images_for(kind, out):
    """IMAGES_PER_CLASS images per class under images/<kind>/<class>/<k>.png; the first REF_IMAGES (classes 0..3, k=0) carry references."""
    k = KINDS[kind]
    templates = make_templates(k['channels'], k['size'], 10, k['seed'])
    rng = np.random.RandomState(k['seed'] + 7)
    files, arrays, labels = [], [], []
    for j in range(IMAGES_PER_CLASS):
        for c in range(10):
            u8, _ = sample_images(templates[c:c + 1], 1, rng)
            rel = f'images/{kind}/{c}/{j}.png'
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            write_png(os.path.join(out, rel), u8[0])
            files.append(rel)
            arrays.append(u8[0])
            labels.append(c)
    return templates, files, arrays, labels


def compact(v):
    """Floats to 10 significant digits (the reference is float64; the tests compare at 1e-4)."""
    if isinstance(v, float):
        return float(f'{v:.10g}')
    if isinstance(v, list):
        return [compact(x) for x in v]
    if isinstance(v, dict):
        return {k: compact(x) for k, x in v.items()}
    return v


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def round_fp16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(ROOT, 'fixtures', 'exports'))
    ap.add_argument('--only', nargs='*')
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    data = {kind: images_for(kind, args.out) for kind in KINDS}
    for kind, (_t, files, _a, labels) in data.items():
        # the reference images as a `file,label` list, for the CLI's --images
        with open(os.path.join(args.out, 'images', f'{kind}-reference.csv'), 'w') as f:
            f.write('file,label\n')
            for c in range(REF_IMAGES):
                i = labels.index(c)
                f.write(f'{os.path.relpath(files[i], "images")},{c}\n')
    manifest_path = os.path.join(args.out, 'manifest.json')
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) and args.only else {'fixtures': {}}
    for name, spec in SPECS.items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(spec['seed'])
        model = spec['make']()
        templates, files, arrays, labels = data[spec['kind']]
        training = train(model, templates, spec['seed'])
        fp16 = spec.get('fp16', False)
        if fp16:
            round_fp16_(model)
        path = os.path.join(args.out, f'{name}.onnx')
        onnx_model, notes = export(model, spec['kind'], spec['opset'], path, fp16=fp16, gelu_op=spec.get('gelu_op'), hf_axes=spec.get('hf_axes', False))
        if fp16:
            # the float16 export divides by sqrt(2) rounded to float16; the reference does the same
            for act in model.acts:
                act.div = float(np.float16(math.sqrt(2.0)))
        model = model.double().eval()
        ref_idx = [labels.index(c) for c in range(REF_IMAGES)]
        imgs = [arrays[i] for i in ref_idx]
        labs = [labels[i] for i in ref_idx]
        pooled_mean = model.pool_rows(1) is not None
        settings = []
        if isinstance(model, DistilledViT):
            settings = [('cls', 'avg'), ('cls', 'cls'), (1, 'dist')]
        elif pooled_mean:
            settings = [('mean', None), ('cls', None)]
        else:
            settings = [('cls', None)]
        refs = []
        for token, head in settings:
            tok = 0 if token == 'cls' else token
            refs.append({'token': token, 'head': head or 'model', 'images': reference_for(model, imgs, labs, tok if token != 'mean' else 'mean', head)})
        if isinstance(model, DistilledViT):
            model.which = 'avg'
        # logits of every image (float64), for the end-to-end comparisons
        with torch.no_grad():
            x_all = to_input(np.stack(arrays)).double()
            all_logits = model(x_all).tolist()
            per_head = {}
            if isinstance(model, DistilledViT):
                for h in ('cls', 'dist'):
                    model.which = h
                    per_head[h] = model(x_all).tolist()
                model.which = 'avg'
        ref_doc = {
            'model': f'{name}.onnx',
            'style': spec['style'],
            'objective': 'prob',
            'steps': STEPS,
            'jas': 'product',
            'nearTie': NEAR_TIE,
            'images': [files[i] for i in ref_idx],
            'allImages': files,
            'allLabels': labels,
            'allLogits': all_logits,
            'headLogits': per_head,
            'references': refs,
        }
        with open(os.path.join(args.out, f'{name}.reference.json'), 'w') as f:
            json.dump(compact(ref_doc), f, indent=None, separators=(',', ':'))
            f.write('\n')
        opset = [o.version for o in onnx_model.opset_import if o.domain in ('', 'ai.onnx')][0]
        manifest['fixtures'][name] = {
            'file': f'{name}.onnx',
            'reference': f'{name}.reference.json',
            'style': spec['style'],
            'opset': opset,
            'bytes': os.path.getsize(path),
            'sha256': sha256(path),
            'input': {'kind': spec['kind'], 'images': f'images/{spec["kind"]}', 'referenceImages': f'images/{spec["kind"]}-reference.csv',
                      'dtype': 'float16' if fp16 else 'float32', 'dynamicAxes': 'batch, channels, height, width' if spec.get('hf_axes') else 'batch'},
            'torch': torch.__version__,
            'onnx': onnx.__version__,
            'training': training,
            'postprocess': notes,
            'nearTies': [{'setting': r['token'] if r['head'] == 'model' else f"{r['token']}/{r['head']}", 'image': i, 'layer': la['layer'], 'margin': la['margin']}
                         for r in refs for i, im in enumerate(r['images']) for la in im['layers'] if la['nearTie']],
        }
        print(f'{name}: opset {opset}, {os.path.getsize(path)} bytes, held-out acc {training["heldOutAccuracy"]:.3f}, '
              f'mean max prob {training["heldOutMeanMaxProb"]:.3f}, near-ties {len(manifest["fixtures"][name]["nearTies"])}')
    manifest['generator'] = 'scripts/export-fixtures.py'
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
