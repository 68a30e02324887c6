// I/O conformance of one test model: the model decodes and re-encodes byte for byte through
// src/onnx, every input/output .pb decodes through vitpath's tensor code (and re-encodes byte for
// byte), and ONNX Runtime, fed the decoded inputs, reproduces the decoded expected outputs.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { decodeModel, encodeModel } from '../../src/onnx/model.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { createSession, firstLine, type Feed } from '../../src/runtime/session.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import type { HostTensor } from '../../src/onnx/tensor.js';
import type { TestCase } from './suite.js';
import { oneLine, outcomeOfError, type CaseResult } from './outcome.js';
import { assertTensorValue, compareTensor, feedOf, readPbTensor, realInputs, type PbTensor } from './tensors.js';

/** Ops whose outputs are random draws (Dropout in training mode included). */
export const RANDOM_OPS = new Set(['RandomUniformLike', 'RandomNormalLike', 'RandomUniform', 'RandomNormal', 'Bernoulli', 'Multinomial', 'Dropout']);

export interface LoadedCase {
  proto: ModelProto;
  bytes: Buffer;
}

export function loadCase(c: TestCase): LoadedCase {
  const bytes = fs.readFileSync(c.model);
  return { bytes, proto: decodeModel(bytes, c.model) };
}

/** The test's inputs by graph-input name (a .pb's own name when it carries one, else by position). */
export function readInputs(c: TestCase, proto: ModelProto): Map<string, PbTensor> {
  const names = realInputs(proto);
  const out = new Map<string, PbTensor>();
  c.inputs.forEach((file, i) => {
    const name = names[i];
    if (name === undefined) throw new Error(`${file}: the model has only ${names.length} inputs to feed`);
    assertTensorValue(proto, name, 'input');
    out.set(name, readPbTensor(file));
  });
  return out;
}

/** The expected outputs, in graph-output order. */
export function readOutputs(c: TestCase, proto: ModelProto): { name: string; t: PbTensor }[] {
  const names = proto.graph!.output.map((o) => o.name);
  return c.outputs.map((file, i) => {
    const name = names[i];
    if (name === undefined) throw new Error(`${file}: the model has only ${names.length} outputs`);
    assertTensorValue(proto, name, 'output');
    return { name, t: readPbTensor(file) };
  });
}

/**
 * The digest scripts/reference/onnx_testdata_digest.py computes from onnx.numpy_helper's decoding:
 * SHA-256 (16 hex digits) over each tensor's "<data type>:<dims joined by x>:" and its values as
 * little-endian bytes, inputs then outputs.
 */
export function decodedDigest(tensors: HostTensor[]): string {
  const h = createHash('sha256');
  for (const t of tensors) {
    h.update(`${t.dataType}:${t.dims.join('x')}:`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex').slice(0, 16);
}

/** Reference digests by "suite/name" (test/conformance/decoded-sha256.json). */
export interface Digests {
  source: string;
  cases: Map<string, string>;
}

export function readDigests(file: string): Digests | undefined {
  if (!fs.existsSync(file)) return undefined;
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { source: string; cases: Record<string, string> };
  return { source: j.source, cases: new Map(Object.entries(j.cases)) };
}

export async function checkIo(c: TestCase, op: string, digests?: Digests): Promise<CaseResult> {
  const base = { suite: c.suite, name: c.name, op };
  let loaded: LoadedCase;
  try {
    loaded = loadCase(c);
  } catch (e) {
    return { ...base, ...outcomeOfError(e) };
  }
  const again = encodeModel(loaded.proto);
  if (Buffer.compare(Buffer.from(again), loaded.bytes) !== 0) {
    return { ...base, outcome: 'fail', detail: `model.onnx re-encodes to ${again.length} bytes that differ from the file's ${loaded.bytes.length}` };
  }
  let inputs: Map<string, PbTensor>;
  let outputs: { name: string; t: PbTensor }[];
  try {
    inputs = readInputs(c, loaded.proto);
    outputs = readOutputs(c, loaded.proto);
  } catch (e) {
    return { ...base, ...outcomeOfError(e) };
  }
  const notRound = [...inputs.values(), ...outputs.map((o) => o.t)].filter((t) => !t.bytesRoundTrip);
  if (notRound.length) return { ...base, outcome: 'fail', detail: `${notRound.length} .pb tensor(s) do not re-encode byte for byte (first: ${notRound[0]!.proto.name || '(unnamed)'})` };

  // Independent check of the values: the digest of onnx.numpy_helper's decoding, when recorded.
  const want = digests?.cases.get(`${c.suite}/${c.name}`);
  const got = decodedDigest([...[...inputs.values()].map((t) => t.host), ...outputs.map((o) => o.t.host)]);
  if (want !== undefined && want !== got) {
    return { ...base, outcome: 'fail', detail: `vitpath decodes the .pb tensors to values whose digest ${got} differs from onnx.numpy_helper's ${want}` };
  }
  const verified = want !== undefined ? 'decoded values = onnx.numpy_helper' : 'no reference digest for this test';

  const feeds: Record<string, Feed> = {};
  for (const [name, t] of inputs) feeds[name] = feedOf(t.host);
  let res;
  try {
    const s = await createSession(loaded.bytes, { provider: 'cpu', threads: 1 });
    try {
      res = await s.run(feeds, outputs.map((o) => o.name));
    } finally {
      await s.release();
    }
  } catch (e) {
    if (e instanceof VitpathError && e.exitCode === ExitCode.RUNTIME) {
      return { ...base, outcome: 'oracle', detail: `ONNX Runtime cannot run it: ${oneLine(firstLine(e.cause ?? e))} (${verified})` };
    }
    return { ...base, ...outcomeOfError(e) };
  }
  for (const o of outputs) {
    const g = res[o.name];
    if (!g) return { ...base, outcome: 'fail', detail: `ONNX Runtime returned no output "${o.name}"` };
    const bad = compareTensor(g, o.t.host, `output "${o.name}"`);
    if (!bad) continue;
    // ONNX Runtime disagreeing with the expected outputs is its own deviation only when vitpath's
    // reading of the expected values is known to be right. Random ops draw differently on every run
    // (and from ONNX's reference), so their disagreement is reported without the varying values.
    const random = [...new Set(loaded.proto.graph!.node.filter((n) => RANDOM_OPS.has(n.opType)).map((n) => n.opType))];
    const what = random.length ? `its random draws (${random.join(', ')}) differ from those of ONNX's reference, another generator` : bad;
    return { ...base, outcome: want !== undefined ? 'oracle' : 'fail', detail: `ONNX Runtime disagrees with the test: ${what} (${verified})` };
  }
  return { ...base, outcome: 'pass', detail: `${inputs.size} in, ${outputs.length} out; ${verified}` };
}
