// Load and save ONNX models: decode with onnx-buf, resolve external data safely, hash, encode.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  create,
  fromBinary,
  toBinary,
  DataLocation,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  type ModelProto,
  type TensorProto,
} from './proto.js';
import { badInput, VitpathError, ExitCode } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';

/** A decoded model plus where it came from. All external data is loaded inline. */
export interface LoadedModel {
  proto: ModelProto;
  path: string;
  sha256: string;
  sizeBytes: number;
  /** Files of external data that were read, relative to the model folder. */
  externalFiles: string[];
  /**
   * Set when `proto` is no longer the file as read but vitpath's prepared form of it (shape folding,
   * batch generalization; services/prepareModel.ts): says which, so caches keyed by sha256 tell them apart.
   */
  prepared?: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Decode ONNX bytes; `label` names the file in error messages. */
export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw badInput(
      `${label}: not a readable ONNX model (${(e as Error).message}). The file may be truncated or not ONNX; re-export it with torch.onnx.export or optimum.`,
      e,
    );
  }
  if (!proto.graph || (proto.graph.node.length === 0 && proto.graph.output.length === 0)) {
    throw badInput(`${label}: decodes as protobuf but holds no ONNX graph; pass a .onnx model file.`);
  }
  if (proto.irVersion === 0n || proto.opsetImport.length === 0) {
    throw badInput(`${label}: not an ONNX model (no IR version or opset); pass a .onnx model file.`);
  }
  return proto;
}

function externalField(t: TensorProto, key: string): string | undefined {
  return t.externalData.find((e) => e.key === key)?.value;
}

/**
 * Resolve an external-data location against the model folder, refusing absolute
 * locations and any that escape the folder (path traversal).
 */
export function resolveExternalLocation(modelDir: string, location: string, modelLabel: string): string {
  if (path.isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location)) {
    throw badInput(
      `${modelLabel}: external data location "${location}" is an absolute path; vitpath only reads external data inside the model's folder. Re-save the model with a relative location.`,
    );
  }
  const root = path.resolve(modelDir);
  const resolved = path.resolve(root, location);
  const rel = path.relative(root, resolved);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw badInput(
      `${modelLabel}: external data location "${location}" escapes the model folder ${root}; vitpath refuses it. Move the data file next to the model and re-save with a relative location.`,
    );
  }
  return resolved;
}

/** Load every external tensor of `proto` into raw_data. */
export function loadExternalData(proto: ModelProto, modelDir: string, modelLabel: string): string[] {
  const files = new Map<string, Buffer>();
  const tensors: TensorProto[] = [...(proto.graph?.initializer ?? [])];
  for (const n of proto.graph?.node ?? []) {
    for (const a of n.attribute) if (a.t) tensors.push(a.t);
  }
  for (const t of tensors) {
    if (t.dataLocation !== DataLocation.EXTERNAL) continue;
    const location = externalField(t, 'location');
    if (!location) throw badInput(`${modelLabel}: tensor ${t.name} is marked external but names no location.`);
    const file = resolveExternalLocation(modelDir, location, modelLabel);
    let buf = files.get(file);
    if (!buf) {
      try {
        buf = fs.readFileSync(file);
      } catch {
        throw badInput(`${modelLabel}: external data file ${file} (tensor ${t.name}) cannot be read; keep it next to the model.`);
      }
      files.set(file, buf);
    }
    const offset = Number(externalField(t, 'offset') ?? '0');
    const lengthStr = externalField(t, 'length');
    const length = lengthStr !== undefined ? Number(lengthStr) : buf.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) {
      throw badInput(`${modelLabel}: external data for tensor ${t.name} (offset ${offset}, length ${length}) lies outside ${file} (${buf.length} bytes); the data file is truncated or does not belong to this model.`);
    }
    t.rawData = new Uint8Array(buf.buffer, buf.byteOffset + offset, length).slice();
    t.dataLocation = DataLocation.DEFAULT;
    t.externalData = [];
  }
  return [...files.keys()].map((f) => path.relative(modelDir, f));
}

/** Read, decode and hash a model file; external data is loaded inline. */
export function loadModel(file: string): LoadedModel {
  const abs = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    throw badInput(`${file}: no such file. Check the path to the .onnx model.`);
  }
  if (stat.isDirectory()) throw badInput(`${file}: is a folder, not an ONNX model file. Pass the .onnx file inside it.`);
  const bytes = fs.readFileSync(abs);
  const proto = decodeModel(bytes, file);
  const externalFiles = loadExternalData(proto, path.dirname(abs), file);
  return { proto, path: abs, sha256: sha256Hex(bytes), sizeBytes: bytes.length, externalFiles };
}

/** Threshold above which `saveModel` writes weights to an external data file (protobuf caps at 2 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 1.5 * 1024 ** 3;

export function encodeModel(proto: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, proto);
}

function initializerBytes(proto: ModelProto): number {
  let n = 0;
  for (const t of proto.graph?.initializer ?? []) n += t.rawData.length;
  return n;
}

export interface SaveOptions {
  /** Force external data (true), forbid it (false), or decide by size (undefined). */
  externalData?: boolean;
  /** Minimum tensor size in bytes to move out when writing external data. */
  externalMinBytes?: number;
  force?: boolean;
}

/**
 * Write a model atomically. Large models (> 1.5 GiB of weights) or `externalData: true`
 * put tensor bytes into `<basename>.data` next to the model. Returns the files written.
 */
export function saveModel(proto: ModelProto, file: string, opts: SaveOptions = {}): string[] {
  const abs = path.resolve(file);
  if (!opts.force && fs.existsSync(abs)) {
    throw new VitpathError(ExitCode.USAGE, `${file} already exists; pass --force to overwrite it or choose another path.`);
  }
  const useExternal = opts.externalData ?? initializerBytes(proto) > EXTERNAL_DATA_THRESHOLD;
  if (!useExternal) {
    writeFileAtomic(abs, encodeModel(proto));
    return [abs];
  }
  const dataName = path.basename(abs).replace(/\.onnx$/i, '') + '.data';
  const dataPath = path.join(path.dirname(abs), dataName);
  if (!opts.force && fs.existsSync(dataPath)) {
    throw new VitpathError(ExitCode.USAGE, `${dataPath} already exists; pass --force to overwrite it or choose another path.`);
  }
  const minBytes = opts.externalMinBytes ?? 1024;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const saved: { t: TensorProto; raw: TensorProto["rawData"] }[] = [];
  for (const t of proto.graph?.initializer ?? []) {
    if (t.rawData.length < minBytes) continue;
    // Align each tensor to 4 KiB as onnx.save does, so readers can mmap it.
    const pad = (4096 - (offset % 4096)) % 4096;
    if (pad) {
      chunks.push(new Uint8Array(pad));
      offset += pad;
    }
    chunks.push(t.rawData);
    saved.push({ t, raw: t.rawData });
    t.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(t.rawData.length) }),
    ];
    t.dataLocation = DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += chunks[chunks.length - 1]!.length;
  }
  try {
    writeFileAtomic(dataPath, Buffer.concat(chunks));
    writeFileAtomic(abs, encodeModel(proto));
  } finally {
    // Restore the in-memory model so callers can keep using it.
    for (const { t, raw } of saved) {
      t.rawData = raw;
      t.dataLocation = DataLocation.DEFAULT;
      t.externalData = [];
    }
  }
  return [abs, dataPath];
}
