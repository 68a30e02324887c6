// Which shard of a job array this process is: --shard K/N as given, or --shard auto, which reads
// the scheduler's environment: a Slurm job array (SLURM_ARRAY_TASK_ID with _MIN/_MAX/_COUNT and
// _STEP) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with the completion count given as
// --shard-count because the pod's environment does not carry it).
import { usageError } from '../errors.js';

export interface Shard {
  index: number;
  count: number;
}

/** Where an automatic shard came from (for the notice line). */
export interface ResolvedShard extends Shard {
  source: 'slurm' | 'kubernetes' | 'explicit';
}

function intEnv(env: Record<string, string | undefined>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw usageError(`--shard auto: ${name}="${v}" is not a non-negative integer.`);
  return Number(v.trim());
}

/** Parse "K/N" (0 <= K < N) or "auto"; anything else is a usage error. */
export function parseShardSpec(v: string): Shard | 'auto' {
  const s = v.trim();
  if (s === 'auto') return 'auto';
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw usageError(`--shard takes K/N with 0 <= K < N (e.g. 0/4), or auto (got "${v}").`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/**
 * Resolve --shard auto from the environment. Slurm: K = (ID - MIN) / STEP, N = COUNT (or
 * (MAX - MIN) / STEP + 1), refused unless the array is one evenly stepped range. Kubernetes:
 * K = JOB_COMPLETION_INDEX, N = --shard-count. --shard-count, when given, must agree with Slurm.
 */
export function shardFromEnv(env: Record<string, string | undefined>, shardCount?: number): ResolvedShard {
  const slurmId = intEnv(env, 'SLURM_ARRAY_TASK_ID');
  const k8s = intEnv(env, 'JOB_COMPLETION_INDEX');
  if (slurmId !== undefined && k8s !== undefined) {
    throw usageError('--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set, so the job array is ambiguous; pass --shard K/N explicitly.');
  }
  if (slurmId !== undefined) {
    const min = intEnv(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const max = intEnv(env, 'SLURM_ARRAY_TASK_MAX');
    const step = intEnv(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    const given = intEnv(env, 'SLURM_ARRAY_TASK_COUNT');
    if (step < 1) throw usageError(`--shard auto: SLURM_ARRAY_TASK_STEP=${step} must be at least 1.`);
    if (max === undefined && given === undefined) {
      throw usageError('--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_MAX nor SLURM_ARRAY_TASK_COUNT is, so the array size is unknown; pass --shard K/N.');
    }
    const fromRange = max !== undefined ? (max - min) / step + 1 : undefined;
    if (fromRange !== undefined && (!Number.isInteger(fromRange) || fromRange < 1)) {
      throw usageError(`--shard auto: the Slurm array ${min}-${max}:${step} is not an evenly stepped range; submit it as --array=0-N-1 or pass --shard K/N.`);
    }
    if (fromRange !== undefined && given !== undefined && fromRange !== given) {
      throw usageError(`--shard auto: the Slurm array has ${given} tasks but spans ${min}-${max}:${step} (${fromRange} indices), so it is not one contiguous range; submit it as --array=0-N-1 or pass --shard K/N.`);
    }
    const count = given ?? fromRange!;
    const index = (slurmId - min) / step;
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw usageError(`--shard auto: SLURM_ARRAY_TASK_ID=${slurmId} is not in the array ${min}-${min + (count - 1) * step}:${step}; pass --shard K/N.`);
    }
    if (shardCount !== undefined && shardCount !== count) {
      throw usageError(`--shard-count ${shardCount} disagrees with the Slurm array, which has ${count} tasks; leave --shard-count out under Slurm.`);
    }
    return { index, count, source: 'slurm' };
  }
  if (k8s !== undefined) {
    if (shardCount === undefined) {
      throw usageError('--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but the number of shards is not; pass --shard-count N with N = the Job\'s completions.');
    }
    if (k8s >= shardCount) throw usageError(`--shard auto: JOB_COMPLETION_INDEX=${k8s} is not below --shard-count ${shardCount}; set --shard-count to the Job's completions.`);
    return { index: k8s, count: shardCount, source: 'kubernetes' };
  }
  throw usageError(
    '--shard auto found no job array: set by Slurm (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN/MAX or SLURM_ARRAY_TASK_COUNT, i.e. sbatch --array) or by a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shard-count N). Outside a job array pass --shard K/N.',
  );
}

/** --shard and --shard-count as given -> the shard to run (undefined: no sharding). */
export function resolveShard(spec: Shard | 'auto' | undefined, shardCount: number | undefined, env: Record<string, string | undefined> = process.env): ResolvedShard | undefined {
  if (spec === undefined) {
    if (shardCount !== undefined) throw usageError('--shard-count only goes with --shard auto (Kubernetes Indexed Jobs).');
    return undefined;
  }
  if (spec === 'auto') return shardFromEnv(env, shardCount);
  if (shardCount !== undefined && shardCount !== spec.count) throw usageError(`--shard-count ${shardCount} disagrees with --shard ${spec.index}/${spec.count}; leave --shard-count out.`);
  return { ...spec, source: 'explicit' };
}
