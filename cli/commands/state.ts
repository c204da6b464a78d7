/**
 * Local mode's state operations on the same YAML `sluice run` runs:
 *   sluice snapshot take -f job.yaml --name before-model-v2
 *   sluice snapshot list -f job.yaml
 *   sluice snapshot delete -f job.yaml --name before-model-v2
 *   sluice restore -f job.yaml --snapshot before-model-v2          (the job stopped)
 *   sluice restore -f job.yaml --offsets 2024-05-01T00:00:00Z --state drop
 * They run the tasks the operator runs in a cluster (workers/stateops) on
 * `<checkpoint-dir>/<job>/`.
 */
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { kafkaConnection } from '../../lib/kafka/client.js';
import { credentialsFromEnv } from '../../lib/worker-config/config.js';
import { resolveWorkerConfig } from '../../workers/config.js';
import { snapshotDir } from '../../workers/runtime/control.js';
import { runStateTask, type StateTask } from '../../workers/stateops/command.js';
import type { SnapshotListing, SnapshotManifest } from '../../workers/stateops/snapshot.js';
import type { RestoreResult, StateChoice } from '../../workers/stateops/restore.js';
import { CliError } from '../errors.js';
import { localWorkerConfigs } from '../local/job-config.js';
import { readJobFile } from '../local/job-file.js';
import { brokerList } from '../options.js';

interface LocalJobOptions {
  file: string;
  name?: string;
  job?: string;
  bootstrapServers?: string[];
  consumerGroup?: string;
  checkpointDir: string;
}

function withJobOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-f, --file <job.yaml>', 'ProcessingJob YAML file (the one `sluice run` runs)')
    .option('--job <name>', 'which ProcessingJob, when the file holds several')
    .option('--bootstrap-servers <host:port,...>', 'Kafka brokers to use instead of spec.kafka.bootstrapServers', brokerList('--bootstrap-servers'))
    .option('--consumer-group <group>', 'the consumer group `sluice run --consumer-group` used, if it was given one')
    .option('--checkpoint-dir <dir>', 'where `sluice run` keeps checkpoints (one sub-directory per job)', 'checkpoints');
}

/** The configuration `sluice run`'s first worker of the job resolves (the same document, the same defaults). */
function localConfig(o: LocalJobOptions): WorkerConfig {
  const doc = readJobFile(o.file, o.job);
  const [first] = localWorkerConfigs(doc, {
    parallelism: 1,
    bootstrapServers: o.bootstrapServers,
    ...(o.consumerGroup ? { consumerGroup: o.consumerGroup } : {}),
    checkpointRoot: resolve(o.checkpointDir),
    metricsPortBase: 0,
  });
  return resolveWorkerConfig(first, {}, { source: `${o.file} (as sluice run renders it)` });
}

async function run(config: WorkerConfig, task: StateTask): Promise<unknown> {
  const connection = kafkaConnection(config.kafka, credentialsFromEnv(process.env).kafka);
  try {
    return await runStateTask(config, task, connection, (m) => void process.stderr.write(`${m}\n`));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
const offsets = (parts: { nextOffset: number | null }[]): string => parts.map((p) => p.nextOffset ?? '-').join(',');

function printManifest(m: SnapshotManifest): void {
  process.stdout.write(
    `snapshot ${m.name} of ${m.job.type} job '${m.job.name}': ${m.partitions.length} partitions, ${mib(m.sizeBytes)}, taken ${m.takenAt} ` +
      `(${m.source === 'workers' ? 'by the running workers' : 'from the latest checkpoints'}), state ${m.format.name} v${m.format.version}` +
      `${m.modelVersion ? `, model ${m.modelVersion}` : ''}\n  next offsets: ${offsets(m.partitions)}\n`,
  );
}

function printListing(list: SnapshotListing[]): void {
  if (list.length === 0) {
    process.stdout.write('no snapshots\n');
    return;
  }
  const rows = [['NAME', 'TAKEN', 'PARTITIONS', 'SIZE', 'MODEL', 'NEXT OFFSETS']];
  for (const s of list) {
    const m = s.manifest;
    rows.push(m ? [s.name, m.takenAt, String(m.partitions.length), mib(s.sizeBytes), m.modelVersion ?? '', offsets(m.partitions)] : [s.name, '(incomplete)', '', mib(s.sizeBytes), '', '']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

export function snapshotCommand(): Command {
  const snapshot = new Command('snapshot').summary("Take, list and delete snapshots of a local job's state").description(
    "Snapshots of a job run by `sluice run`: every partition's state and next offset at one point, kept under <checkpoint-dir>/<job>/.sluice/snapshots/.\n" +
      'With the job running, its workers write the snapshot between two batches; with it stopped, the latest checkpoints are copied.',
  );
  snapshot.addCommand(
    withJobOptions(new Command('take'))
      .description('Take a snapshot')
      .requiredOption('--name <name>', 'snapshot name (lowercase letters, digits, - and .)')
      .option('--timeout <seconds>', 'how long running workers have to write their partitions', (v) => Number(v), 120)
      .action(async (o: LocalJobOptions & { name: string; timeout: number }) => {
        printManifest((await run(localConfig(o), { op: 'snapshot', name: o.name, timeoutSeconds: o.timeout })) as SnapshotManifest);
      }),
  );
  snapshot.addCommand(
    withJobOptions(new Command('list'))
      .description('List the snapshots of a job')
      .action(async (o: LocalJobOptions) => printListing((await run(localConfig(o), { op: 'list' })) as SnapshotListing[])),
  );
  snapshot.addCommand(
    withJobOptions(new Command('delete'))
      .description("Delete a snapshot's files")
      .requiredOption('--name <name>', 'snapshot name')
      .action(async (o: LocalJobOptions & { name: string }) => {
        const r = (await run(localConfig(o), { op: 'delete', name: o.name })) as { deleted: boolean };
        process.stdout.write(r.deleted ? `deleted snapshot ${o.name}\n` : `no snapshot ${o.name}\n`);
      }),
  );
  return snapshot;
}

export function restoreCommand(): Command {
  return withJobOptions(new Command('restore'))
    .summary("Start a stopped local job from a snapshot, or from other offsets (reprocess)")
    .description(
      "Rewrites the checkpoints of a job that is not running, so that the next `sluice run` starts from there:\n" +
        '  --snapshot NAME              state and offsets of a snapshot of this job\n' +
        '  --from-job JOB --snapshot N  a snapshot of another job of the same type on the same topic (blue/green, moving a job)\n' +
        '  --offsets earliest|latest|TIME --state keep|drop   reprocess from there, with the state kept or dropped',
    )
    .option('--snapshot <name>', 'the snapshot to restore')
    .option('--from-job <job>', 'the job that took the snapshot (default: this job)')
    .option('--offsets <where>', 'earliest, latest, or an ISO time such as 2024-05-01T00:00:00Z')
    .addOption(new Option('--state <choice>', 'keep or drop the state (required with --offsets)').choices(['keep', 'drop']))
    .action(async (o: LocalJobOptions & { snapshot?: string; fromJob?: string; offsets?: string; state?: StateChoice }) => {
      if (!o.snapshot && !o.offsets) throw new CliError('give --snapshot NAME, --offsets WHERE --state keep|drop, or both');
      if (o.offsets && !o.state && !o.snapshot) throw new CliError('--offsets needs an explicit --state keep or --state drop: what should happen to the state?');
      if (o.fromJob && !o.snapshot) throw new CliError('--from-job needs --snapshot NAME');
      const config = localConfig(o);
      const fromDir = o.snapshot ? snapshotDir(o.fromJob ? resolve(o.checkpointDir, o.fromJob) : config.checkpoint.dir, o.snapshot) : undefined;
      const r = (await run(config, { op: 'restore', fromDir, offsets: o.offsets, state: o.state ?? 'keep' })) as RestoreResult;
      const from = r.fromSnapshot ? `snapshot ${r.fromSnapshot}` : `offsets ${r.offsets}`;
      process.stdout.write(
        `restored job '${config.job.name}' from ${from}${r.fromSnapshot && r.offsets ? ` at offsets ${r.offsets}` : ''}, state ${r.state === 'drop' ? 'dropped' : 'kept'}\n` +
          `  next offsets: ${offsets(r.partitions)}\n  start it with: sluice run -f ${o.file}\n`,
      );
    });
}
