#!/usr/bin/python3
"""One-off reference values for src/data (decode, convert('L'), resize, Resize+CenterCrop, normalize).

Computed with Debian's Pillow (python3-pil) and, where installed, Debian's torchvision
(python3-torchvision), independently of vitpath's TypeScript. Writes:
  test/data/reference/synthetic.json  deterministic synthetic arrays (always tested)
  test/data/reference/images.json     images from ../shared/data (tested when ../shared exists)

Run from the repository root:  /usr/bin/python3 scripts/reference/pil_resize.py
Setup: apt-get install python3-pil python3-numpy python3-torchvision (the last is optional:
without it the torchvision cases are computed by the small emulation below, and the JSON
records which one produced them).
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import PIL
from PIL import Image

try:
    import torch
    import torchvision
    import torchvision.transforms as T
    from torchvision.transforms import InterpolationMode
except Exception:  # noqa: BLE001 - optional
    torchvision = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'data', 'reference')
SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')

PIL_FILTER = {'nearest': Image.NEAREST, 'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC}


# ---------- deterministic synthetic arrays (the TypeScript test generates the same bytes) ----------
def lcg_bytes(n, seed):
    """x <- (1103515245 x + 12345) mod 2^31; byte = (x >> 16) & 255."""
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        out[i] = (x >> 16) & 255
    return bytes(out)


def pattern_bytes(h, w, c):
    """Gradient with a hard-edged bright block: exercises bicubic overshoot and clipping."""
    out = bytearray(h * w * c)
    for y in range(h):
        for x in range(w):
            for k in range(c):
                v = (x * 37 + y * 91 + k * 50) % 256
                if (x // 5 + y // 7) % 2 == 0:
                    v = 255 if k != 1 else 0
                out[(y * w + x) * c + k] = v
    return bytes(out)


def make_array(spec):
    n = spec['h'] * spec['w'] * spec['c']
    raw = lcg_bytes(n, spec['seed']) if spec['kind'] == 'noise' else pattern_bytes(spec['h'], spec['w'], spec['c'])
    a = np.frombuffer(raw, dtype=np.uint8).reshape(spec['h'], spec['w'], spec['c'])
    if spec['c'] == 1:
        return Image.fromarray(a[:, :, 0], 'L')
    return Image.fromarray(a, {2: 'LA', 3: 'RGB', 4: 'RGBA'}[spec['c']])


# ---------- torchvision semantics (used only when torchvision is absent; cross-checked when present) ----------
def tv_resize_emul(img, size, interp):
    w, h = img.size
    if isinstance(size, int):
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_h, new_w = size
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), PIL_FILTER[interp])


def tv_center_crop_emul(img, crop):
    ch, cw = crop
    w, h = img.size
    if cw > w or ch > h:
        pl = (cw - w) // 2 if cw > w else 0
        pt = (ch - h) // 2 if ch > h else 0
        pr = (cw - w + 1) // 2 if cw > w else 0
        pb = (ch - h + 1) // 2 if ch > h else 0
        padded = Image.new(img.mode, (w + pl + pr, h + pt + pb), 0)
        padded.paste(img, (pl, pt))
        img = padded
        w, h = img.size
        if (cw, ch) == (w, h):
            return img
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))


def tv_pipeline(img, resize, crop, interp):
    if torchvision is not None:
        ts = []
        if resize is not None:
            ts.append(T.Resize(resize, interpolation=InterpolationMode(interp)))
        if crop is not None:
            ts.append(T.CenterCrop(crop))
        out = T.Compose(ts)(img) if ts else img
        emul = img
        if resize is not None:
            emul = tv_resize_emul(emul, resize, interp)
        if crop is not None:
            emul = tv_center_crop_emul(emul, crop)
        assert np.array_equal(np.asarray(out), np.asarray(emul)), 'torchvision and the emulation disagree'
        return out
    out = img
    if resize is not None:
        out = tv_resize_emul(out, resize, interp)
    if crop is not None:
        out = tv_center_crop_emul(out, crop)
    return out


def tv_tensor(img, resize, crop, interp, mean, std):
    """float32 CHW after ToTensor + Normalize (torchvision's, or numpy float32 arithmetic)."""
    pil = tv_pipeline(img, resize, crop, interp)
    if torchvision is not None:
        t = T.Normalize(mean, std)(T.ToTensor()(pil))
        return t.numpy().astype(np.float32)
    a = np.asarray(pil, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    x = a.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return ((x - m) / s).astype(np.float32)


# ---------- compact checks ----------
def arr_u8(img):
    a = np.asarray(img, dtype=np.uint8)
    return a if a.ndim == 3 else a[:, :, None]


def full_u8(img):
    a = arr_u8(img)
    h, w, c = a.shape
    return {'h': h, 'w': w, 'c': c, 'data': a.reshape(-1).tolist()}


def samples_of(a):
    h, w, c = a.shape
    pts = []
    for k in range(8):
        y, x, ch = (k * 37 + 3) % h, (k * 53 + 5) % w, k % c
        pts.append([y, x, ch, int(a[y, x, ch])])
    return pts


def hashed_u8(img):
    a = np.ascontiguousarray(arr_u8(img))
    h, w, c = a.shape
    return {'h': h, 'w': w, 'c': c, 'sha256': hashlib.sha256(a.tobytes()).hexdigest(), 'samples': samples_of(a)}


def f32_bits(t):
    return [struct.unpack('<I', struct.pack('<f', float(v)))[0] for v in t.reshape(-1)]


def hashed_f32(t):
    t = np.ascontiguousarray(t.astype('<f4'))
    c, h, w = t.shape
    pts = []
    for k in range(8):
        ch, y, x = k % c, (k * 37 + 3) % h, (k * 53 + 5) % w
        pts.append([ch, y, x, f32_bits(t[ch, y, x])[0]])
    return {'c': c, 'h': h, 'w': w, 'sha256': hashlib.sha256(t.tobytes()).hexdigest(), 'samples_f32bits': pts}


IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def synthetic():
    arrays = [
        {'name': 'noise_rgb_13x17', 'kind': 'noise', 'h': 13, 'w': 17, 'c': 3, 'seed': 1},
        {'name': 'noise_l_9x11', 'kind': 'noise', 'h': 9, 'w': 11, 'c': 1, 'seed': 2},
        {'name': 'pattern_rgb_40x30', 'kind': 'pattern', 'h': 40, 'w': 30, 'c': 3, 'seed': 0},
        {'name': 'noise_rgb_2x3', 'kind': 'noise', 'h': 2, 'w': 3, 'c': 3, 'seed': 3},
    ]
    cases = []
    # alpha images: only the mode conversions vitpath does after decoding (alpha dropped)
    for spec in ({'name': 'noise_rgba_6x5', 'kind': 'noise', 'h': 6, 'w': 5, 'c': 4, 'seed': 4},
                 {'name': 'noise_la_4x7', 'kind': 'noise', 'h': 4, 'w': 7, 'c': 2, 'seed': 5}):
        img = make_array(spec)
        spec['sha256'] = hashlib.sha256(np.asarray(img).tobytes()).hexdigest()
        arrays.append(spec)
        cases.append({'array': spec['name'], 'op': 'convertL', 'out': full_u8(img.convert('L'))})
        cases.append({'array': spec['name'], 'op': 'convertRGB', 'out': full_u8(img.convert('RGB'))})
    for spec in arrays[:4]:
        img = make_array(spec)
        spec['sha256'] = hashlib.sha256(arr_u8(img).tobytes()).hexdigest()
        name = spec['name']
        for interp in ('nearest', 'bilinear', 'bicubic'):
            for (w, h) in ((7, 5), (23, 31), (spec['w'], spec['h'] + 1), (1, 1)):
                out = img.resize((w, h), PIL_FILTER[interp])
                cases.append({'array': name, 'op': 'resize', 'width': w, 'height': h, 'interpolation': interp, 'out': full_u8(out)})
        if spec['c'] == 3:
            cases.append({'array': name, 'op': 'convertL', 'out': full_u8(img.convert('L'))})
        else:
            cases.append({'array': name, 'op': 'convertRGB', 'out': full_u8(img.convert('RGB'))})
        tv_cases = [(8, (6, 6), 'bilinear'), (10, (12, 12), 'bicubic'), (None, (4, 7), 'bilinear'), (None, (spec['h'] + 3, 2), 'bilinear'),
                    ([5, 9], None, 'bicubic'), (21, (16, 16), 'nearest')]
        for resize, crop, interp in tv_cases:
            out = tv_pipeline(img, resize, crop, interp)
            cases.append({'array': name, 'op': 'torchvision', 'resize': resize, 'crop': list(crop) if crop else None,
                          'interpolation': interp, 'out': full_u8(out)})
        mean, std = (IMAGENET if spec['c'] == 3 else ([0.1307], [0.3081]))
        t = tv_tensor(img, 8, (6, 6), 'bilinear', mean, std)
        cases.append({'array': name, 'op': 'tensor', 'resize': 8, 'crop': [6, 6], 'interpolation': 'bilinear', 'mean': mean, 'std': std,
                      'out': {'c': t.shape[0], 'h': t.shape[1], 'w': t.shape[2], 'f32bits': f32_bits(t)}})
    # tiny JPEGs written here and committed: PIL's decode of them is the reference for sharp's
    jpegs = []
    for name, spec, opts in (('gray_q90.jpg', {'kind': 'pattern', 'h': 12, 'w': 16, 'c': 1}, {'quality': 90}),
                             ('rgb_420_q75.jpg', {'kind': 'noise', 'h': 13, 'w': 21, 'c': 3, 'seed': 6}, {'quality': 75, 'subsampling': 2}),
                             ('rgb_444_q95.jpg', {'kind': 'pattern', 'h': 9, 'w': 10, 'c': 3}, {'quality': 95, 'subsampling': 0})):
        src = make_array({**spec, 'seed': spec.get('seed', 0)})
        src.save(os.path.join(OUT, name), 'JPEG', **opts)
        with Image.open(os.path.join(OUT, name)) as im:
            mode = im.mode
            jpegs.append({'file': name, 'mode': mode, 'decoded': full_u8(im), 'L': full_u8(im.convert('L')), 'RGB': full_u8(im.convert('RGB'))})
    return {'arrays': arrays, 'cases': cases, 'jpegs': jpegs, 'modes': mode_files()}


def png16(path, w, h, ctype, arr16):
    """A 16-bit PNG (PIL cannot write 16-bit RGB): filter 0 rows, big-endian samples."""
    import zlib
    raw = b''.join(b'\0' + arr16[y].astype('>u2').tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, ctype, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def mode_files():
    """Files in the modes PIL opens differently (palette, alpha, 1-bit, 16-bit, CMYK, progressive):
    PIL's convert('RGB') and convert('L') are the reference for vitpath's decode."""
    d = os.path.join(OUT, 'modes')
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1)
    h, w = 11, 9
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 'RGB')
    rgb.quantize(32).save(os.path.join(d, 'palette.png'))
    rgb.quantize(32).save(os.path.join(d, 'palette_trns.png'), transparency=3)
    Image.fromarray(rng.integers(0, 256, (h, w, 2), dtype=np.uint8), 'LA').save(os.path.join(d, 'la.png'))
    Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), 'RGBA').save(os.path.join(d, 'rgba.png'))
    Image.fromarray((rng.integers(0, 2, (h, w), dtype=np.uint8) * 255), 'L').convert('1').save(os.path.join(d, 'bilevel.png'))
    rgb.convert('CMYK').save(os.path.join(d, 'cmyk.jpg'), quality=90)
    rgb.save(os.path.join(d, 'progressive.jpg'), quality=80, progressive=True)
    png16(os.path.join(d, 'gray16.png'), w, h, 0, rng.integers(0, 65536, (h, w)))
    png16(os.path.join(d, 'gray16_small_values.png'), w, h, 0, rng.integers(0, 300, (h, w)))
    png16(os.path.join(d, 'rgb16.png'), w, h, 2, rng.integers(0, 65536, (h, w * 3)))
    png16(os.path.join(d, 'gray_alpha16.png'), w, h, 4, rng.integers(0, 65536, (h, w * 2)))
    out = []
    for name in sorted(os.listdir(d)):
        with Image.open(os.path.join(d, name)) as im:
            out.append({'file': 'modes/' + name, 'mode': im.mode, 'RGB': full_u8(im.convert('RGB')), 'L': full_u8(im.convert('L'))})
    return out


def shared_images():
    if not os.path.isdir(SHARED):
        return None
    files = []
    for sub in ('imagenet-sample', 'cifar10-sample'):
        for dirpath, _, names in sorted(os.walk(os.path.join(SHARED, sub))):
            for n in sorted(names):
                p = os.path.join(dirpath, n)
                with Image.open(p) as im:
                    mode = im.mode
                    rgb = im.convert('RGB')
                files.append({'path': os.path.relpath(p, SHARED), 'mode': mode, 'decodeRGB': hashed_u8(rgb)})
    chosen = ['imagenet-sample/n01440764_tench.JPEG', 'imagenet-sample/n02417914_ibex.JPEG', 'imagenet-sample/n03297495_espresso_maker.JPEG',
              'imagenet-sample/n03759954_microphone.JPEG', 'imagenet-sample/n02097474_Tibetan_terrier.JPEG',
              'cifar10-sample/airplane/0000.jpg', 'cifar10-sample/cat/0007.jpg', 'cifar10-sample/truck/0029.jpg']
    cases = []
    for rel in chosen:
        rgb = Image.open(os.path.join(SHARED, rel)).convert('RGB')
        gray = rgb.convert('L')
        cases.append({'path': rel, 'op': 'convertL', 'out': hashed_u8(gray)})
        for resize, crop, interp in ((256, (224, 224), 'bilinear'), (224, (224, 224), 'bicubic'), (248, (224, 224), 'nearest'), ([7, 5], None, 'bilinear')):
            cases.append({'path': rel, 'op': 'torchvision', 'channels': 3, 'resize': resize, 'crop': list(crop) if crop else None,
                          'interpolation': interp, 'out': hashed_u8(tv_pipeline(rgb, resize, crop, interp))})
        cases.append({'path': rel, 'op': 'torchvision', 'channels': 1, 'resize': [28, 28], 'crop': None, 'interpolation': 'bilinear',
                      'out': hashed_u8(tv_pipeline(gray, [28, 28], None, 'bilinear'))})
        t = tv_tensor(rgb, 256, (224, 224), 'bilinear', *IMAGENET)
        cases.append({'path': rel, 'op': 'tensor', 'channels': 3, 'resize': 256, 'crop': [224, 224], 'interpolation': 'bilinear',
                      'mean': IMAGENET[0], 'std': IMAGENET[1], 'out': hashed_f32(t)})
    return {'files': files, 'cases': cases}


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {'generatedBy': 'scripts/reference/pil_resize.py', 'pillow': PIL.__version__, 'numpy': np.__version__,
            'torchvision': torchvision.__version__ if torchvision is not None else None,
            'torch': torch.__version__ if torchvision is not None else None, 'python': sys.version.split()[0]}
    with open(os.path.join(OUT, 'synthetic.json'), 'w') as f:
        json.dump({**meta, **synthetic()}, f, separators=(',', ':'))
        f.write('\n')
    shared = shared_images()
    if shared is not None:
        with open(os.path.join(OUT, 'images.json'), 'w') as f:
            json.dump({**meta, **shared}, f, indent=None, separators=(',', ':'))
            f.write('\n')
    print('wrote', OUT, 'torchvision' if torchvision is not None else 'emulated torchvision')


if __name__ == '__main__':
    main()
