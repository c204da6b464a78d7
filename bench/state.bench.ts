/**
 * Worker state at scale: heap and RSS, bytes per user, checkpoint time and
 * size (full, and incremental with 1% of users changed), restore time, the
 * longest event-loop stall during a checkpoint, and a live stream over the
 * state (maximal events/s, then latency at half of it) while checkpoints run
 * every 10 s. Each case runs in its own process; medians of --repeat.
 *
 *   npx tsx bench/state.bench.ts [--users 100000,1000000] [--jobs churn,cart]
 *       [--backends baseline,memory,disk] [--repeat 3] [--live-seconds 30] [--json out.json]
 *
 * `baseline` is today's state from the source of an older commit (--rev),
 * run by the same measurements in the same run. With --container-memory 2g
 * each case runs in a container of the local Docker (hack/infra.sh up docker)
 * with that memory limit, as a pod would: page cache included.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const list = (name: string, fallback: string): string[] => arg(name, fallback).split(',').filter(Boolean);
const USERS = list('--users', '100000,1000000').map(Number);
const JOBS = list('--jobs', 'churn,cart');
const BACKENDS = list('--backends', 'baseline,memory,disk');
const passThrough = [...['--trace-memory', '--trace-stalls', '--no-checkpoint-run'].filter((k) => process.argv.includes(k)), ...['--repeat', '--live-seconds', '--interval-seconds', '--partitions', '--rev', '--tmp', '--days-max'].flatMap((k) => (process.argv.includes(k) ? [k, arg(k, '')] : []))];
const repoRoot = join(import.meta.dirname, '..');

/** Heap ceiling per case: generous, so that the figure measured is the state's, not a failure. */
function heapLimitMiB(backend: string, users: number): number {
  if (backend === 'disk') return 2048;
  return Math.max(2048, Math.ceil((users * (backend === 'baseline' ? 4500 : 1200)) / 1048576));
}

const CONTAINER_MEMORY = arg('--container-memory', '');

/** The case's command: node here, or node in a container with a memory limit (the repository and /tmp mounted at the same paths). */
function command(args: string[]): [string, string[], NodeJS.ProcessEnv] {
  if (!CONTAINER_MEMORY) return [process.execPath, args, process.env];
  const env = JSON.parse(readFileSync(join(repoRoot, '.infra', 'env.json'), 'utf8')) as { docker?: { host: string } };
  if (!env.docker) throw new Error("--container-memory needs the local Docker: bash hack/infra.sh up docker");
  const image = arg('--image', 'local/node:20.20.2-bookworm');
  const docker = ['run', '--rm', '-m', CONTAINER_MEMORY, '--memory-swap', CONTAINER_MEMORY, '-v', `${repoRoot}:${repoRoot}`, '-v', '/tmp:/tmp', '-w', repoRoot, image, 'node', ...args];
  return ['docker', docker, { ...process.env, DOCKER_HOST: env.docker.host }];
}

function runCase(backend: string, job: string, users: number): Promise<Record<string, unknown>> {
  const heap = CONTAINER_MEMORY ? Math.min(heapLimitMiB(backend, users), 1536) : heapLimitMiB(backend, users);
  const [cmd, args, env] = command([`--max-old-space-size=${heap}`, '--expose-gc', '--import', 'tsx', join(repoRoot, 'bench', 'state', 'case.ts'), '--backend', backend, '--job', job, '--users', String(users), ...passThrough]);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (passThrough.includes('--trace-memory') || passThrough.includes('--trace-stalls')) process.stderr.write(d);
    });
    child.on('exit', (code, signal) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        const why = stderr.trim().split('\n').slice(-3).join(' / ') || `exit ${code ?? signal}`;
        resolve({ backend, job, users, failed: why });
      }
    });
  });
}

const f = (v: unknown, digits = 0): string => (typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');
const get = (r: Record<string, unknown>, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), r);

const results: Array<Record<string, unknown>> = [];
console.log(`state benchmark, node ${process.version}: users ${USERS.join(', ')}; jobs ${JOBS.join(', ')}; backends ${BACKENDS.join(', ')}${CONTAINER_MEMORY ? `; in a container limited to ${CONTAINER_MEMORY}` : ''}`);
console.log('Memory: JS heap + typed arrays of the state, after a full checkpoint (B/user: the same per user; + local disk of the disk backend).');
console.log('Stall: longest event-loop delay while checkpointing; idle: the same over 2 s with nothing to do (the machine\'s noise floor).');
console.log('Event-loop CPU: what a full checkpoint of every partition cost the main thread (beside it, the whole process: the encoder\'s thread, I/O).');
console.log('| job | users | backend | memory MiB | B/user | RSS MiB | full cp ms / MiB | full cp event-loop / process CPU ms | 1% cp ms / MiB | restore ms | longest stall ms (full / 1% / idle) | max events/s | half load p50 / p99 ms | peak RSS MiB |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const job of JOBS) {
  for (const users of USERS) {
    for (const backend of BACKENDS) {
      const r = await runCase(backend, job, users);
      results.push(r);
      if (r.failed) {
        console.log(`| ${job} | ${f(users)} | ${backend} | failed: ${String(r.failed)} |`);
        continue;
      }
      console.log(
        `| ${job} | ${f(users)} | ${String(r.backend)} | ${f(r.steadyHeapMiB)} | ${f(r.steadyBytesPerUser)}${r.localDiskBytesPerUser ? ` (+${f(r.localDiskBytesPerUser)} disk)` : ''} | ${f(r.rssMiB)} | ` +
          `${f(get(r, 'fullCheckpoint.ms'))} / ${f(get(r, 'fullCheckpoint.MiB'), 1)} | ${f(get(r, 'fullCheckpoint.loopCpuMs'))} / ${f(get(r, 'fullCheckpoint.cpuMs'))} | ${f(get(r, 'incrementalCheckpoint.ms'), 1)} / ${f(get(r, 'incrementalCheckpoint.MiB'), 2)} | ` +
          `${f(r.restoreMs)} | ${f(get(r, 'fullCheckpoint.stallMs'), 1)} / ${f(get(r, 'incrementalCheckpoint.maxStallMs'), 1)} / ${f(r.idleStallMs, 1)} | ${f(get(r, 'maxRate.eventsPerSecond'))} | ` +
          `${f(get(r, 'halfLoad.p50Ms'), 1)} / ${f(get(r, 'halfLoad.p99Ms'), 1)}${r.halfLoadNoCheckpoints ? ` (no checkpoints: ${f(get(r, 'halfLoadNoCheckpoints.p99Ms'), 1)})` : ''} | ${f(r.peakRssMiB)}${r.cgroupPeakMiB ? ` (cgroup ${f(r.cgroupPeakMiB)})` : ''} |`,
      );
    }
  }
}
const json = arg('--json', '');
if (json) writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
