// Op type -> gradient rule. Each rule family registers itself from its own module in rules/.
import type { GradRule } from './types.js';

const rules = new Map<string, GradRule>();

export function registerRule(opTypes: string | string[], rule: GradRule): void {
  for (const op of Array.isArray(opTypes) ? opTypes : [opTypes]) rules.set(op, rule);
}

export function ruleFor(opType: string): GradRule | undefined {
  return rules.get(opType);
}

export function supportedOps(): string[] {
  return [...rules.keys()].sort();
}
