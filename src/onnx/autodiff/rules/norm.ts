// Gradients of LayerNormalization (any axis, several trailing axes) and inference-mode
// BatchNormalization (running mean/var as inputs, spatial forms of opsets 7/8), written with
// plain ONNX ops: statistics are recomputed in the backward rather than read from extra outputs.
import { attrFloat, attrInt } from '../../attributes.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis, scalarLike, unbroadcast } from '../util.js';
import type { GradContext } from '../types.js';

function nodeLabel(ctx: GradContext): string {
  return `${ctx.node.opType} node "${ctx.node.name || ctx.node.output[0]}"`;
}

/** Refuse when an auxiliary output (saved statistics) carries a gradient. */
function onlyFirstOutput(ctx: GradContext, what: string): void {
  const k = ctx.gy.findIndex((g, i) => i > 0 && g !== undefined);
  if (k > 0) {
    throw unsupported(
      `${nodeLabel(ctx)}: its output ${k} ("${ctx.node.output[k]}", ${what}) lies on the gradient path; vitpath differentiates only the normalized output Y. Differentiate a tensor computed from Y instead.`,
    );
  }
}

/**
 * LayerNormalization: xhat = (X - mean) r, r = 1/sqrt(var + eps), Y = xhat Scale + B, with mean
 * and var over axes [axis, rank) of n elements. With gh = g Scale:
 *   dX = r (gh - mean(gh) - xhat mean(gh xhat)),  dScale = sum(g xhat),  dB = sum(g)
 * where the parameter sums run over the axes Scale/B are broadcast along. The optional outputs
 * Mean and InvStdDev (= r, both shaped like X with the normalized axes kept as 1, in the stash
 * type) add gMean / n and -gR r^3 (X - mean) / n to dX (d var / dX = 2 (X - mean) / n).
 */
registerRule('LayerNormalization', (ctx) => {
  const { b, node } = ctx;
  const [x, scale, bias] = [node.input[0]!, node.input[1]!, node.input[2]];
  const y = node.output[0]!;
  const [g, gMean, gInv] = ctx.gy;
  const rank = ctx.facts(x).dims.length;
  const axis = normAxis(attrInt(node, 'axis', -1), rank);
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const dt = ctx.facts(x).dataType;
  const mean = (t: string) => b.reduce18('ReduceMean', t, axes, true);
  const mx = mean(x);
  const xc = b.op('Sub', [x, mx]);
  const variance = mean(b.op('Mul', [xc, xc]));
  const r = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, scalarLike(ctx, x, eps)])])]);
  const xhat = b.op('Mul', [xc, r]);
  const out: (string | undefined)[] = node.input.map(() => undefined);
  if (ctx.needs[0]) {
    const terms: string[] = [];
    if (g) {
      const gh = b.op('Mul', [g, scale]);
      const inner = b.op('Sub', [b.op('Sub', [gh, mean(gh)]), b.op('Mul', [xhat, mean(b.op('Mul', [gh, xhat]))])]);
      terms.push(b.op('Mul', [r, inner]));
    }
    if (gMean || gInv) {
      // Statistics outputs are in the stash type (float32 by default): bring their gradients to X's type.
      const inX = (t: string, k: number) => (ctx.facts(node.output[k]!).dataType === dt ? t : b.op('Cast', [t], { to: dt }));
      const n = b.op('Cast', [b.op('Div', [b.op('Size', [x]), b.op('Size', [mx])])], { to: dt });
      let stat: string | undefined;
      if (gMean) stat = b.op('Expand', [inX(gMean, 1), b.op('Shape', [x])]);
      if (gInv) {
        const r3 = b.op('Mul', [r, b.op('Mul', [r, r])]);
        const t = b.op('Neg', [b.op('Mul', [b.op('Mul', [inX(gInv, 2), r3]), xc])]);
        stat = stat ? b.op('Add', [stat, t]) : t;
      }
      terms.push(b.op('Div', [stat!, n]));
    }
    out[0] = terms.length === 1 ? terms[0] : b.op('Add', terms);
  }
  if (g && ctx.needs[1]) out[1] = unbroadcast(ctx, b.op('Mul', [g, xhat]), scale, y);
  if (g && bias && ctx.needs[2]) out[2] = unbroadcast(ctx, g, bias, y);
  return out;
});

/**
 * BatchNormalization in inference mode: Y = (X - mean) r scale + B per channel (axis 1),
 * r = 1/sqrt(var + eps). Parameters are [C] (or [C, D1..Dn] with spatial=0 at opsets 7/8).
 *   dX = g scale r,  dscale = sum(g (X - mean)) r,  dB = sum(g),
 *   dmean = -sum(g) scale r,  dvar = -sum(g (X - mean)) scale r^3 / 2.
 */
registerRule('BatchNormalization', (ctx) => {
  const { b, node } = ctx;
  if (attrInt(node, 'training_mode', 0) === 1) {
    throw unsupported(`${nodeLabel(ctx)} runs in training mode (batch statistics); vitpath differentiates inference-mode BatchNormalization only. Re-export the model in eval mode.`);
  }
  onlyFirstOutput(ctx, 'a running or saved statistic');
  const [x, scale, bias, mean, variance] = node.input as [string, string, string, string, string];
  const g = ctx.gy[0]!;
  const rank = ctx.facts(x).dims.length;
  const spatial = ctx.opset < 9 ? attrInt(node, 'spatial', 1) : 1;
  // Parameter shape -> broadcastable against X, and the axes summed to get back to it.
  const perChannel = spatial === 1;
  const expand = (p: string) => (perChannel && rank > 2 ? b.unsqueeze(p, Array.from({ length: rank - 2 }, (_, i) => i + 1)) : p);
  const sumAxes = perChannel ? Array.from({ length: rank }, (_, i) => i).filter((i) => i !== 1) : [0];
  const sum = (t: string) => b.reduceSum(t, sumAxes, false);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const r = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, scalarLike(ctx, variance, eps)])])]);
  const s = b.op('Mul', [scale, r]);
  const out: (string | undefined)[] = node.input.map(() => undefined);
  if (ctx.needs[0]) out[0] = b.op('Mul', [g, expand(s)]);
  const sumG = ctx.needs[2] || ctx.needs[3] ? sum(g) : undefined;
  const sumGxc = ctx.needs[1] || ctx.needs[4] ? sum(b.op('Mul', [g, b.op('Sub', [x, expand(mean)])])) : undefined;
  if (ctx.needs[1]) out[1] = b.op('Mul', [sumGxc!, r]);
  if (ctx.needs[2]) out[2] = sumG;
  if (ctx.needs[3]) out[3] = b.op('Neg', [b.op('Mul', [sumG!, s])]);
  if (ctx.needs[4]) {
    const r3 = b.op('Mul', [r, b.op('Mul', [r, r])]);
    out[4] = b.op('Mul', [b.op('Mul', [sumGxc!, b.op('Mul', [scale, r3])]), scalarLike(ctx, variance, -0.5)]);
  }
  return out;
});
