#!/usr/bin/python3
"""Export tiny torchvision VisionTransformer models with the real torch.onnx.export, as users do.

A developer tool (never needed by npm test or CI). Writes fixtures/exports/torchvision/:
  tv-vit-op11.onnx, tv-vit-op14.onnx, tv-vit-op17.onnx
      dynamic batch axes: nn.MultiheadAttention's shape arithmetic (Shape -> Gather -> Div/Mul ->
      Concat/Unsqueeze -> Slice/Reshape) stays in the graph.
  tv-vit-op14-stale.onnx
      a dynamic-axes export carrying the value_info of its batch-1 twin (the same model traced
      without dynamic axes, shapes inferred by onnx): the input batch is symbolic, but value_info
      says [1,17,24] and the logits output [1,10].
  tv-vit-op17-baked.onnx
      traced at batch 1 without dynamic axes (shape constants folded at batch 1: Reshape targets
      such as [17,2,16], the class token expanded to [1,1,D]), shape-inferred, then the input and
      output batch made symbolic: an export whose constants are still baked at the traced batch.
  tv-vit-op14-flat.onnx
      a wrapper returning vit(x).reshape(x.shape[0], -1), traced at batch 1 without dynamic axes:
      the Reshape target [1,-1] folds the batch into the class axis; input made symbolic. vitpath
      cannot rewrite it and runs it one image at a time.
  references.json
      per model: the configuration, seed, how the inputs are made, and PyTorch's logits for them.

Inputs: image i of a model is lcg_bytes(C*H*W, seed + i) / 256 (the generator of test/data/lcg.ts:
x <- (1103515245 x + 12345) mod 2^31, byte = (x >> 16) & 255), so every value is exact in float32.
Weights: seeded normal draws for every parameter (torchvision zero-initializes the head, which
would make every logit 0).

Run from the repository root:  /usr/bin/python3 scripts/export-torchvision.py
Needs Debian's python3-torch (1.13), python3-torchvision (0.14) and python3-onnx (1.12).
"""
import hashlib
import json
import os
import sys

import onnx
import torch
import torchvision
from onnx import shape_inference
from torchvision.models import VisionTransformer

OUT = os.path.join('fixtures', 'exports', 'torchvision')
IMAGES = 3

MODELS = [
    # name, opset, export style, architecture
    dict(name='tv-vit-op11', opset=11, style='dynamic', seed=11, image=32, patch=8, layers=2, heads=2, hidden=24, mlp=48),
    dict(name='tv-vit-op14', opset=14, style='dynamic', seed=14, image=28, patch=7, layers=2, heads=3, hidden=24, mlp=48),
    dict(name='tv-vit-op17', opset=17, style='dynamic', seed=17, image=32, patch=8, layers=2, heads=4, hidden=24, mlp=64),
    dict(name='tv-vit-op14-stale', opset=14, style='stale', seed=114, image=28, patch=7, layers=2, heads=2, hidden=24, mlp=48),
    dict(name='tv-vit-op17-baked', opset=17, style='baked', seed=117, image=32, patch=8, layers=2, heads=2, hidden=24, mlp=48),
    dict(name='tv-vit-op14-flat', opset=14, style='flat', seed=214, image=28, patch=7, layers=2, heads=2, hidden=24, mlp=48),
]

# What vitpath is expected to make of each export style (checked by test/exports/torchvision.test.ts).
EXPECT = {'dynamic': 'dynamic', 'stale': 'dynamic', 'baked': 'rewritten', 'flat': 'one-at-a-time'}


def lcg_bytes(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 255
    return out


def images(cfg):
    c, h, w = 3, cfg['image'], cfg['image']
    rows = [torch.tensor(list(lcg_bytes(c * h * w, cfg['seed'] * 1000 + i)), dtype=torch.float32).reshape(c, h, w) / 256.0 for i in range(IMAGES)]
    return torch.stack(rows)


def build(cfg):
    torch.manual_seed(cfg['seed'])
    m = VisionTransformer(
        image_size=cfg['image'], patch_size=cfg['patch'], num_layers=cfg['layers'], num_heads=cfg['heads'],
        hidden_dim=cfg['hidden'], mlp_dim=cfg['mlp'], num_classes=10,
    )
    g = torch.Generator().manual_seed(cfg['seed'])
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or name.endswith('ln.weight'):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1 or 'class_token' in name or 'pos_embedding' in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[1] if p.dim() == 2 else p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))
    return m.eval()


class Flat(torch.nn.Module):
    """vit(x) flattened per sample, as x.reshape(x.shape[0], -1) reads in user code."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def forward(self, x):
        return self.vit(x).reshape(x.shape[0], -1)


def set_batch(model, name, value):
    for v in list(model.graph.input) + list(model.graph.output):
        if v.name == name:
            d = v.type.tensor_type.shape.dim[0]
            if isinstance(value, int):
                d.dim_value = value
            else:
                d.dim_param = value


def export(cfg):
    vit = build(cfg)
    path = os.path.join(OUT, cfg['name'] + '.onnx')
    x1 = images(cfg)[:1]
    style = cfg['style']
    module = Flat(vit) if style == 'flat' else vit
    kwargs = dict(input_names=['input'], output_names=['logits'], opset_version=cfg['opset'], do_constant_folding=True)
    if style in ('dynamic', 'stale'):
        kwargs['dynamic_axes'] = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
    torch.onnx.export(module, x1, path, **kwargs)
    model = onnx.load(path)
    if style == 'stale':
        twin_path = path + '.twin'
        torch.onnx.export(module, x1, twin_path, input_names=['input'], output_names=['logits'], opset_version=cfg['opset'], do_constant_folding=True)
        twin = shape_inference.infer_shapes(onnx.load(twin_path))
        os.remove(twin_path)
        # Float tensors made by the same op in both graphs (names follow the module path and op).
        ops = {o: n.op_type for n in model.graph.node for o in n.output}
        twin_ops = {o: n.op_type for n in twin.graph.node for o in n.output}
        own_types = {v.name: v.type.tensor_type.elem_type for v in shape_inference.infer_shapes(model).graph.value_info}
        del model.graph.value_info[:]
        model.graph.value_info.extend(
            v for v in twin.graph.value_info
            if ops.get(v.name) is not None and ops.get(v.name) == twin_ops.get(v.name) and v.type.tensor_type.HasField('shape')
            and v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and own_types.get(v.name) == onnx.TensorProto.FLOAT
        )
        set_batch(model, 'logits', 1)
    elif style in ('baked', 'flat'):
        model = shape_inference.infer_shapes(model, data_prop=True)
        set_batch(model, 'input', 'batch')
        set_batch(model, 'logits', 'batch')
    model.producer_name = 'pytorch'
    onnx.checker.check_model(model)
    onnx.save(model, path)
    with torch.no_grad():
        logits = module(images(cfg)) if style != 'flat' else torch.cat([module(images(cfg)[i:i + 1]) for i in range(IMAGES)])
    data = open(path, 'rb').read()
    return {
        'file': cfg['name'] + '.onnx',
        'sha256': hashlib.sha256(data).hexdigest(),
        'bytes': len(data),
        'opset': cfg['opset'],
        'style': style,
        'expectBatch': EXPECT[style],
        'config': {k: cfg[k] for k in ('image', 'patch', 'layers', 'heads', 'hidden', 'mlp')} | {'channels': 3, 'classes': 10},
        'inputs': {'count': IMAGES, 'seeds': [cfg['seed'] * 1000 + i for i in range(IMAGES)], 'dims': [3, cfg['image'], cfg['image']], 'scale': 1 / 256},
        'logits': [[float(v) for v in row] for row in logits.tolist()],
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    refs = []
    for cfg in MODELS:
        refs.append(export(cfg))
        print(f"{refs[-1]['file']}: {refs[-1]['bytes']} bytes", file=sys.stderr)
    doc = {
        'generator': 'scripts/export-torchvision.py',
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'onnx': onnx.__version__,
        'inputs': 'image i = lcg_bytes(C*H*W, seed_i) / 256 in C,H,W order; lcg: x <- (1103515245 x + 12345) mod 2^31, byte = (x >> 16) & 255, x0 = seed',
        'models': refs,
    }
    with open(os.path.join(OUT, 'references.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
