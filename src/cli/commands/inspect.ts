// `vitpath inspect <model>`: print the located ViT layout as tables (model facts, then one row per
// block), or the full layout with every tensor name as JSON on stdout with --json.
import type { Command } from 'commander';
import Table from 'cli-table3';
import { inspectModel, type InspectReport } from '../../services/inspect.js';
import { interactive, printJson, summary } from '../output.js';
import type { AttentionLayout, NormRef } from '../../vit/types.js';

interface InspectFlags {
  json?: boolean;
  layers?: boolean;
  output?: string;
  quiet?: boolean;
}

const HELP_AFTER = `
What it finds (from graph structure and weight shapes, never from node names):
  per block: the FFN's fc1 (MatMul+Add or Gemm), its activation (Erf/tanh GELU, Gelu node, ReLU),
  the neuron tensor (input of fc2), fc2, the residual adds, the attention Softmax and the norms;
  the attention's q/k/v linears (separate, or one fused qkv), its output projection, the head count
  and head dim, and the constants that encode the head count (Reshape/Split/Slice shape values);
  plus the patch embedding, class token, final norm, classifier head and logits output.
  Every linear layer has a name (--layers lists them): patch_embed, blocks.N.attn.qkv (or
  blocks.N.attn.q, .k, .v), blocks.N.attn.proj, blocks.N.mlp.fc1, blocks.N.mlp.fc2, head (head_dist).
  Also how vitpath reads the export: the batch (dynamic, stale stored shapes dropped, constants baked
  at batch 1 rewritten and checked, or one image at a time) and the shape arithmetic it folded.

Examples:
  vitpath inspect model.onnx                      summary tables on stdout
  vitpath inspect model.onnx --json | jq '.layout.blocks[0].neuron'
                                                  the neuron tensor of block 0
  vitpath inspect model.onnx --layers             also a table of the named linear layers
  vitpath inspect model.onnx --json | jq '.layout.blocks[0].attention.heads'
                                                  the head count of block 0
  vitpath inspect model.onnx --output logits      choose the logits output when a model has several

Exit codes: 0 ok, 1 usage (e.g. --output names no output), 2 unreadable model file,
            3 not a Vision Transformer (the message says what was looked for and found).`;

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('Show the transformer layout vitpath locates in an ONNX model: blocks, FFN, activation, norms, head, and model facts.')
    .argument('<model>', 'path to the .onnx model (external data is read from the same folder)')
    .option('--json', 'print the full layout, tensor names included, as JSON on stdout (the tables go to stderr)')
    .option('--output <name>', 'graph output holding the logits (default: the [batch, classes] output of the head)')
    .option('--layers', 'also list every linear layer by name (kind, features, weight and bias tensors)')
    .option('-q, --quiet', 'print nothing but the result')
    .addHelpText('after', HELP_AFTER)
    .action(async (model: string, flags: InspectFlags) => {
      const result = await inspectModel(model, { output: flags.output });
      const render = (colour: boolean) => renderInspect(result, colour) + (flags.layers ? `\n${renderLayers(result, colour)}` : '');
      if (flags.json) {
        printJson(result);
        if (!flags.quiet) summary(render(false), { json: true });
      } else summary(render(interactive(flags)));
    });
}

/** The batch row: the declared batch, or what vitpath found and did about it. */
function batchText(r: InspectReport): string {
  const f = r.model.layout.facts;
  const p = r.results.preparation;
  if (p.batch === 'fixed' || p.batch === 'one-at-a-time') return p.batch === 'fixed' ? `fixed ${f.batch}` : `${p.summary}${p.conflicts[0] ? ` (${p.conflicts[0]})` : ''}`;
  return p.summary;
}

function foldText(r: InspectReport): string {
  const p = r.results.preparation.fold;
  if (p.removed === 0 && p.refused.length === 0) return 'no shape arithmetic';
  const parts = [`${p.removed} node${p.removed === 1 ? '' : 's'} folded to constants`];
  if (p.batchShapes) parts.push(`${p.batchShapes} batch-dependent shape${p.batchShapes === 1 ? '' : 's'} kept symbolic`);
  if (p.refused.length) parts.push(`left computed: ${p.refused.slice(0, 3).map((x) => `${x.op} "${x.node}" (${x.reason})`).join('; ')}${p.refused.length > 3 ? `; +${p.refused.length - 3} more` : ''}`);
  return parts.join('; ');
}

function normLabel(n: NormRef | undefined): string {
  return n ? n.kind : 'none';
}

function table(head: string[], colour: boolean): Table.Table {
  return new Table({
    head,
    style: colour ? {} : { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

/** How the head reads the tokens, and which extra tokens exist. */
export function poolingText(l: InspectReport['model']['layout']): string {
  const f = l.facts;
  const cls = l.classToken ? `class token at row ${l.classToken.row} (${l.classToken.initializer})` : undefined;
  if (f.pooling === 'cls') return `${cls ?? `class token (row ${l.classToken?.row ?? 0})`}${l.distillation ? ` and distillation token at row ${l.distillation.row}` : ''}`;
  const r = l.meanRows ?? { start: 0, end: f.tokens };
  const n = r.end - r.start;
  const which = n === f.tokens ? `all ${n} tokens${cls ? ', class token included' : ''}` : `tokens ${r.start}..${r.end - 1} (${n} of ${f.tokens})`;
  return `mean over ${which}; ${cls ? `${cls} also joined (--token cls reads it)` : 'no class token'}`;
}

/** The human summary: a facts table, then one row per block. */
export function renderInspect(r: InspectReport, colour: boolean): string {
  const l = r.model.layout;
  const f = l.facts;
  const facts = table(['fact', 'value'], colour);
  const poolText = poolingText(l);
  facts.push(
    ['model', r.model.path],
    ['sha256', r.model.sha256],
    ['producer', f.producer || '(none)'],
    ['opset / IR', `${f.opset} / ${f.irVersion}`],
    ['input', `${l.input} [${(l.declaredInputDims ?? l.inputDims).join(', ')}]${l.declaredInputDims ? ` (read as [${l.inputDims.join(', ')}]: the position embedding fixes the image size)` : ''}`],
    ['logits output', `${l.logits} [${f.batch === 'dynamic' ? 'batch' : f.batch}, ${f.numClasses}]${l.extraOutputs.length ? `; other outputs: ${l.extraOutputs.join(', ')}` : ''}`],
    ['image', `${f.imageSize[0]}x${f.imageSize[1]}, ${f.channels} channel${f.channels === 1 ? '' : 's'}`],
    ['batch', batchText(r)],
    ['shape folding', foldText(r)],
    ['patches', `${f.numPatches}${f.patchSize !== null ? ` (patch ${f.patchSize}x${f.patchSize})` : ''}`],
    ['tokens', String(f.tokens)],
    ['pooling', poolText],
    ...(l.distillation ? [['readout', `class head + distillation head (row ${l.distillation.row}${l.distillation.initializer ? `, ${l.distillation.initializer}` : ''}), averaged into ${l.distillation.averaged}; --head cls|dist reads one`]] : []),
    ...(l.precision ? [['precision', `${l.precision.stored} (analysed in ${l.precision.analysed}, weights converted exactly)`]] : []),
    ['blocks', String(f.numBlocks)],
    ['width', String(f.width)],
    ['FFN width', String(f.ffnWidth)],
    ['heads', f.heads === null ? 'unknown' : String(f.heads)],
    ['classes', String(f.numClasses)],
    ['final norm', normLabel(l.finalNorm)],
    ['head', `${l.head.kind} ${l.head.inFeatures}->${l.head.outFeatures}`],
  );
  const blocks = table(['block', 'fc1', 'activation', 'norm', 'neuron tensor', 'FFN width', 'attention', 'heads x dim', 'softmax'], colour);
  for (const b of l.blocks) {
    const norms = b.attnNorm?.kind === b.mlpNorm?.kind ? normLabel(b.mlpNorm) : `${normLabel(b.attnNorm)} / ${normLabel(b.mlpNorm)}`;
    blocks.push([
      String(b.index),
      `${b.fc1.kind}${b.fc1.transB ? ' (transB)' : ''} ${b.fc1.inFeatures}->${b.fc1.outFeatures}`,
      b.activation.kind,
      norms,
      `${b.neuron} [${b.neuronLayout === 'flat' ? 'batch*tokens, ffn' : 'batch, tokens, ffn'}]`,
      String(b.fc1.outFeatures),
      attentionText(b.attention),
      b.attention?.heads ? `${b.attention.heads} x ${b.attention.headDim}` : 'unknown',
      b.attnSoftmax,
    ]);
  }
  return `${facts.toString()}\n${blocks.toString()}`;
}

/** The attention's linears in a few words: fused qkv or separate q/k/v, and the projection. */
function attentionText(a: AttentionLayout | undefined): string {
  if (!a) return 'not located';
  const qkv = a.form === 'fused' ? `qkv ${a.qkv!.inFeatures}->${a.qkv!.outFeatures}` : `q/k/v ${a.q!.inFeatures}->${a.dim}`;
  return `${qkv}, proj ${a.proj.inFeatures}->${a.proj.outFeatures}`;
}

/** One row per named linear layer (inspect --layers). */
export function renderLayers(r: InspectReport, colour: boolean): string {
  const t = table(['layer', 'kind', 'in->out', 'weight', 'bias'], colour);
  for (const l of r.model.layout.linears) {
    t.push([l.name, `${l.kind}${l.transB ? ' (transB)' : ''}`, `${l.inFeatures}->${l.outFeatures}`, l.weight, l.bias ?? '(none)']);
  }
  return t.toString();
}
