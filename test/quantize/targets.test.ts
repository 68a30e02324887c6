// Canonical linear names and the --include / --exclude scope over them.
import { describe, expect, it } from 'vitest';
import { matchesPattern, selectTargets, linearTargets, type QuantTarget } from '../../src/quantize/targets.js';
import { buildSyntheticVit } from '../../src/vit/synth.js';
import { locateVit } from '../../src/vit/locate.js';

describe('matchesPattern', () => {
  it('matches kinds, dotted prefixes and * within one part', () => {
    expect(matchesPattern('blocks.3.mlp.fc2', 'fc2')).toBe(true);
    expect(matchesPattern('blocks.3.mlp.fc2', 'mlp')).toBe(true);
    expect(matchesPattern('blocks.3.mlp.fc2', 'blocks.3')).toBe(true);
    expect(matchesPattern('blocks.13.mlp.fc2', 'blocks.1')).toBe(false);
    expect(matchesPattern('blocks.3.attn.q', 'blocks.*.attn.q')).toBe(true);
    expect(matchesPattern('blocks.3.attn.qkv', 'blocks.*.attn.q')).toBe(false);
    expect(matchesPattern('head', 'head')).toBe(true);
    expect(matchesPattern('blocks.0.attn.proj', 'fc1')).toBe(false);
  });
});

describe('linearTargets + selectTargets', () => {
  const synth = buildSyntheticVit({ depth: 3, seed: 2 });
  const model = synth.model;
  const layout = locateVit(model);
  const all = linearTargets(layout);
  const names = (ts: QuantTarget[]) => ts.map((t) => t.name);

  it('names q, k, v, proj, fc1, fc2 per block and the head (the layout\'s named linears, checked against the generator\'s weights)', () => {
    expect(all.length).toBe(3 * 6 + 1);
    expect(names(all).slice(0, 6)).toEqual(['blocks.0.attn.q', 'blocks.0.attn.k', 'blocks.0.attn.v', 'blocks.0.attn.proj', 'blocks.0.mlp.fc1', 'blocks.0.mlp.fc2']);
    expect(all[all.length - 1]!.name).toBe('head');
    for (const t of all.filter((x) => x.block !== null)) {
      const part = t.kind === 'fc1' || t.kind === 'fc2' ? t.kind : `attn.${t.kind}`;
      expect(t.linear.weight).toBe(synth.names[`block.${t.block}.${part}.weight`]);
    }
    expect(all[4]!.linear).toEqual(layout.blocks[0]!.fc1);
    expect(all[all.length - 1]!.linear.weight).toBe(synth.names['head.weight']);
  });

  it('defaults to every block linear (head left in float), then applies include and exclude', () => {
    expect(selectTargets(all).length).toBe(18);
    expect(names(selectTargets(all, undefined, ['blocks.2', 'fc2']))).toEqual(['blocks.0.attn.q', 'blocks.0.attn.k', 'blocks.0.attn.v', 'blocks.0.attn.proj', 'blocks.0.mlp.fc1', 'blocks.1.attn.q', 'blocks.1.attn.k', 'blocks.1.attn.v', 'blocks.1.attn.proj', 'blocks.1.mlp.fc1']);
    expect(names(selectTargets(all, ['mlp', 'head'], ['blocks.0']))).toEqual(['blocks.1.mlp.fc1', 'blocks.1.mlp.fc2', 'blocks.2.mlp.fc1', 'blocks.2.mlp.fc2', 'head']);
  });

  it('refuses a pattern that matches nothing (exit 1)', () => {
    expect(() => selectTargets(all, ['blocks.9'])).toThrow(expect.objectContaining({ exitCode: 1, message: expect.stringContaining('--include blocks.9 matches no linear layer') }));
  });
});
