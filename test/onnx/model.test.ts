// Model I/O: decode/encode round trip, external data (written, read back, and refused when its
// location is absolute or leaves the model folder), bad files as exit code 2, no silent overwrite.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { create, DataLocation, StringStringEntryProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { decodeModel, encodeModel, loadModel, resolveExternalLocation, saveModel, sha256Hex } from '../../src/onnx/model.js';
import { tensorToHost } from '../../src/onnx/tensor.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { buildSyntheticVit } from '../../src/vit/synth.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-model-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function small(): ModelProto {
  return buildSyntheticVit({ imageSize: 8, patch: 4, channels: 1, width: 8, depth: 1, heads: 2, ffn: 16, classes: 3, opset: 17, seed: 3 }).model;
}

function exitOf(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof VitpathError) return { code: e.exitCode, message: e.message };
    throw e;
  }
  throw new Error('expected a VitpathError');
}

function initializerValues(m: ModelProto): Record<string, number[]> {
  return Object.fromEntries(m.graph!.initializer.map((t) => [t.name, Array.from(tensorToHost(t).data as ArrayLike<number>, Number)]));
}

describe('decode / encode', () => {
  it('encode(decode(bytes)) reproduces our own encoding byte for byte', () => {
    const bytes = encodeModel(small());
    const again = encodeModel(decodeModel(bytes, 'mem'));
    expect(sha256Hex(again)).toBe(sha256Hex(bytes));
  });
  it('loadModel hashes the file it read', () => {
    const file = path.join(tmp, 'a.onnx');
    const bytes = encodeModel(small());
    fs.writeFileSync(file, bytes);
    const m = loadModel(file);
    expect(m.sha256).toBe(sha256Hex(bytes));
    expect(m.sizeBytes).toBe(bytes.length);
    expect(m.externalFiles).toEqual([]);
  });
});

describe('bad model files are exit code 2 naming the file', () => {
  it('missing path, a folder, text, truncated protobuf', () => {
    const missing = exitOf(() => loadModel(path.join(tmp, 'nope.onnx')));
    expect(missing.code).toBe(ExitCode.BAD_INPUT);
    expect(missing.message).toContain('nope.onnx');
    expect(exitOf(() => loadModel(tmp)).code).toBe(ExitCode.BAD_INPUT);
    const text = path.join(tmp, 'text.onnx');
    fs.writeFileSync(text, 'this is not a model\n');
    expect(exitOf(() => loadModel(text)).message).toContain('text.onnx');
    const bytes = encodeModel(small());
    const cut = path.join(tmp, 'cut.onnx');
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = exitOf(() => loadModel(cut));
    expect(r.code).toBe(ExitCode.BAD_INPUT);
    expect(r.message).toContain('cut.onnx');
  });
});

describe('external data', () => {
  it('saveModel writes a .data file that loadModel reads back to the same tensors', () => {
    const m = small();
    const before = initializerValues(m);
    const file = path.join(tmp, 'ext', 'model.onnx');
    const written = saveModel(m, file, { externalData: true, externalMinBytes: 16 });
    expect(written.map((f) => path.basename(f))).toEqual(['model.onnx', 'model.data']);
    // The in-memory model is left inline for its caller.
    expect(m.graph!.initializer.every((t) => t.dataLocation === DataLocation.DEFAULT)).toBe(true);
    const onDisk = decodeModel(fs.readFileSync(file), file);
    expect(onDisk.graph!.initializer.some((t) => t.dataLocation === DataLocation.EXTERNAL)).toBe(true);
    const loaded = loadModel(file);
    expect(loaded.externalFiles).toEqual(['model.data']);
    expect(initializerValues(loaded.proto)).toEqual(before);
  });

  it('small models are saved inline unless external data is asked for', () => {
    const file = path.join(tmp, 'inline.onnx');
    expect(saveModel(small(), file)).toEqual([file]);
    expect(fs.existsSync(path.join(tmp, 'inline.data'))).toBe(false);
  });

  it('refuses to overwrite without force (exit 1), overwrites with it', () => {
    const file = path.join(tmp, 'twice.onnx');
    saveModel(small(), file);
    const r = exitOf(() => saveModel(small(), file));
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.message).toMatch(/--force/);
    expect(saveModel(small(), file, { force: true })).toEqual([file]);
  });

  function withLocation(location: string, extra: Record<string, string> = {}): string {
    const m = small();
    const t = m.graph!.initializer[0]!;
    t.rawData = new Uint8Array(0);
    t.dataLocation = DataLocation.EXTERNAL;
    t.externalData = Object.entries({ location, ...extra }).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
    const dir = fs.mkdtempSync(path.join(tmp, 'loc-'));
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, encodeModel(m));
    fs.writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(8));
    return file;
  }

  it('refuses absolute locations and locations that leave the model folder', () => {
    for (const loc of ['/etc/passwd', '../weights.bin', 'sub/../../weights.bin', 'C:\\\\weights.bin']) {
      const r = exitOf(() => loadModel(withLocation(loc)));
      expect(r.code, loc).toBe(ExitCode.BAD_INPUT);
      expect(r.message, loc).toMatch(/absolute|escapes/);
    }
    expect(() => resolveExternalLocation(tmp, 'a/b.bin', 'm')).not.toThrow();
  });

  it('a missing data file, or an offset/length past its end, is exit 2', () => {
    expect(exitOf(() => loadModel(withLocation('absent.bin'))).code).toBe(ExitCode.BAD_INPUT);
    const r = exitOf(() => loadModel(withLocation('weights.bin', { offset: '4', length: '64' })));
    expect(r.code).toBe(ExitCode.BAD_INPUT);
    expect(r.message).toMatch(/outside/);
  });
});
