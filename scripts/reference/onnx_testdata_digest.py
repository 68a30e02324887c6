#!/usr/bin/python3
"""Reference digests of the ONNX backend test tensors, decoded by ONNX's own Python code.

For every test model of libonnx-testdata whose input_*.pb / output_*.pb tensors all have an element
type vitpath reads (float32/float16/float64, int8/uint8/int32/int64, bool), onnx.numpy_helper
decodes them and this script records one SHA-256 (first 16 hex digits) per test over, in order,
each tensor's "<ONNX data type>:<dims joined by x>:" header followed by its values as little-endian
bytes (bool as one byte 0/1, float16 as its bits). scripts/conformance/io.ts hashes vitpath's own
decoding the same way, so the I/O check knows vitpath read every value right independently of
ONNX Runtime. Writes test/conformance/decoded-sha256.json.

Run from the repository root:  /usr/bin/python3 scripts/reference/onnx_testdata_digest.py
Setup: apt-get install python3-onnx python3-numpy libonnx-testdata
"""
import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.environ.get('VITPATH_ONNX_TESTDATA', '/usr/share/libonnx-testdata/data')
SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple']
# TensorProto.DataType numbers vitpath's tensor code reads.
READ = {1, 2, 3, 6, 7, 9, 10, 11}
OUT = 'test/conformance/decoded-sha256.json'


def index(f):
    return int(os.path.basename(f).split('_')[1].split('.')[0])


def main():
    cases = {}
    for suite in SUITES:
        for d in sorted(glob.glob(os.path.join(ROOT, suite, '*'))):
            sets = sorted(glob.glob(os.path.join(d, 'test_data_set_*')))
            if not os.path.exists(os.path.join(d, 'model.onnx')) or not sets:
                continue
            files = sorted(glob.glob(os.path.join(sets[0], 'input_*.pb')), key=index)
            files += sorted(glob.glob(os.path.join(sets[0], 'output_*.pb')), key=index)
            g = onnx.load(os.path.join(d, 'model.onnx')).graph
            inits = {t.name for t in g.initializer}
            values = [v for v in g.input if v.name not in inits] + list(g.output)
            # Sequence and optional values (not tensors): vitpath refuses these by name.
            ok = all(v.type.WhichOneof('value') == 'tensor_type' for v in values)
            h = hashlib.sha256()
            for f in files if ok else []:
                t = onnx.TensorProto()
                with open(f, 'rb') as fh:
                    t.ParseFromString(fh.read())
                if t.data_type not in READ:
                    ok = False
                    break
                a = numpy_helper.to_array(t)
                if a.dtype == np.bool_:
                    a = a.astype(np.uint8)
                a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder('<')))
                h.update(f"{t.data_type}:{'x'.join(str(int(x)) for x in t.dims)}:".encode())
                h.update(a.tobytes())
            if ok:
                cases[f'{suite}/{os.path.basename(d)}'] = h.hexdigest()[:16]
    try:
        version = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'libonnx-testdata'], capture_output=True, text=True).stdout.strip()
    except OSError:
        version = ''
    out = {
        'source': f'libonnx-testdata {version}'.strip(),
        'decoder': f'onnx {onnx.__version__} numpy_helper.to_array, numpy {np.__version__}',
        'cases': cases,
    }
    with open(OUT, 'w') as fh:
        json.dump(out, fh, indent=0, sort_keys=True)
        fh.write('\n')
    print(f'{OUT}: {len(cases)} tests', file=sys.stderr)


if __name__ == '__main__':
    main()
