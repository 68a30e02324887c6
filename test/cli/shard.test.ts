// --shard auto: K and N from a Slurm job array (ID with MIN/MAX, COUNT, STEP) or a Kubernetes
// Indexed Job (JOB_COMPLETION_INDEX with --shard-count), with the environment simulated; every
// inconsistent or missing setting is a usage error (exit 1) that says what to do.
import { describe, expect, it } from 'vitest';
import { parseShardSpec, resolveShard, shardFromEnv } from '../../src/cli/shard.js';
import { usageMessage } from '../helpers/errors.js';

describe('--shard auto under Slurm', () => {
  it('--array=0-7: task 3 is shard 3/8 (MIN/MAX, with or without COUNT)', () => {
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '7' })).toEqual({ index: 3, count: 8, source: 'slurm' });
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '7', SLURM_ARRAY_TASK_COUNT: '8' })).toEqual({ index: 3, count: 8, source: 'slurm' });
  });
  it('--array=1-4 starts at 1: task 1 is shard 0/4, task 4 is 3/4', () => {
    const env = { SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4' };
    expect(shardFromEnv({ ...env, SLURM_ARRAY_TASK_ID: '1' })).toMatchObject({ index: 0, count: 4 });
    expect(shardFromEnv({ ...env, SLURM_ARRAY_TASK_ID: '4' })).toMatchObject({ index: 3, count: 4 });
  });
  it('a stepped array --array=0-12:4 has 4 shards; COUNT alone (MIN 0) is enough', () => {
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '12', SLURM_ARRAY_TASK_STEP: '4' })).toMatchObject({ index: 2, count: 4 });
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '6' })).toMatchObject({ index: 5, count: 6 });
  });
  it('refuses a list that is not one range, an ID outside it, no size, and a disagreeing --shard-count', () => {
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '7', SLURM_ARRAY_TASK_COUNT: '3' }))).toMatch(/not one contiguous range.*--array=0-N-1/);
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '7' }))).toMatch(/SLURM_ARRAY_TASK_ID=9 is not in the array/);
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '2' }))).toMatch(/array size is unknown/);
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '3' }, 5))).toMatch(/--shard-count 5 disagrees with the Slurm array, which has 4 tasks/);
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: 'x3', SLURM_ARRAY_TASK_COUNT: '4' }))).toMatch(/SLURM_ARRAY_TASK_ID="x3" is not a non-negative integer/);
  });
});

describe('--shard auto under a Kubernetes Indexed Job', () => {
  it('JOB_COMPLETION_INDEX with --shard-count', () => {
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '2' }, 5)).toEqual({ index: 2, count: 5, source: 'kubernetes' });
  });
  it('needs --shard-count, and the index below it', () => {
    expect(usageMessage(() => shardFromEnv({ JOB_COMPLETION_INDEX: '2' }))).toMatch(/pass --shard-count N/);
    expect(usageMessage(() => shardFromEnv({ JOB_COMPLETION_INDEX: '5' }, 5))).toMatch(/not below --shard-count 5/);
  });
});

describe('--shard auto elsewhere, and --shard K/N', () => {
  it('neither scheduler: a clear failure naming both and the fix', () => {
    const m = usageMessage(() => shardFromEnv({ HOME: '/root' }));
    expect(m).toMatch(/SLURM_ARRAY_TASK_ID/);
    expect(m).toMatch(/JOB_COMPLETION_INDEX/);
    expect(m).toMatch(/--shard K\/N/);
  });
  it('both schedulers set: ambiguous, refused', () => {
    expect(usageMessage(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2', JOB_COMPLETION_INDEX: '1' }, 2))).toMatch(/ambiguous/);
  });
  it('parses K/N and auto; refuses the rest', () => {
    expect(parseShardSpec('3/8')).toEqual({ index: 3, count: 8 });
    expect(parseShardSpec(' auto ')).toBe('auto');
    for (const bad of ['8/8', '1/0', 'a/b', '3', '']) expect(usageMessage(() => parseShardSpec(bad))).toMatch(/K\/N/);
  });
  it('resolveShard: explicit shards ignore the environment; --shard-count needs --shard auto or agreement', () => {
    expect(resolveShard({ index: 1, count: 3 }, undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '9' })).toEqual({ index: 1, count: 3, source: 'explicit' });
    expect(resolveShard(undefined, undefined, {})).toBeUndefined();
    expect(usageMessage(() => resolveShard(undefined, 4, {}))).toMatch(/--shard-count only goes with --shard auto/);
    expect(usageMessage(() => resolveShard({ index: 0, count: 3 }, 4, {}))).toMatch(/disagrees/);
    expect(resolveShard('auto', 4, { JOB_COMPLETION_INDEX: '3' })).toMatchObject({ index: 3, count: 4 });
  });
});
