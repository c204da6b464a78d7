/**
 * `sluice state ...`: the tasks on a job's state, run where the checkpoint
 * volume is mounted (the operator runs them as a pod with the job's worker
 * configuration; `sluice snapshot` and `sluice restore` run them locally).
 * Each prints its result as JSON and leaves it as the pod's termination
 * message, where the operator reads it; a failure leaves `Code: message`.
 */
import { Command, Option } from 'commander';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { kafkaConnection, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import { credentialsFromEnv, loadWorkerConfig } from '../config.js';
import { snapshotDir } from '../runtime/control.js';
import { writeTerminationMessage } from '../runtime/termination.js';
import { deleteSnapshot, listSnapshots, takeSnapshot, type SnapshotManifest } from './snapshot.js';
import { parseOffsetPoint, restoreState, type RestoreResult, type StateChoice } from './restore.js';

/** The result of a snapshot as the operator records it: small enough for a termination message (4 KiB). */
export function snapshotSummary(m: SnapshotManifest): Record<string, unknown> {
  const summary: Record<string, unknown> = {
    op: 'snapshot',
    name: m.name,
    takenAt: m.takenAt,
    sizeBytes: m.sizeBytes,
    partitions: m.partitions.length,
    source: m.source,
    format: { name: m.format.name, version: m.format.version, features: m.format.features.length },
    ...(m.modelVersion ? { modelVersion: m.modelVersion } : {}),
    offsets: m.partitions.map((p) => p.nextOffset ?? -1),
  };
  if (JSON.stringify(summary).length > 3_800) delete summary.offsets;
  return summary;
}

export function restoreSummary(r: RestoreResult): Record<string, unknown> {
  const summary: Record<string, unknown> = { op: 'restore', ...r, partitions: r.partitions.length, offsets: r.partitions.map((p) => p.nextOffset ?? -1) };
  if (JSON.stringify(summary).length > 3_800) delete summary.offsets;
  return summary;
}

export type StateTask =
  | { op: 'snapshot'; name: string; timeoutSeconds: number }
  | { op: 'restore'; id?: string; fromDir?: string; offsets?: string; state: StateChoice }
  | { op: 'delete'; name: string }
  | { op: 'list' };

/** Runs one task on the job `config` describes; returns what to print. */
export async function runStateTask(config: WorkerConfig, task: StateTask, connection: KafkaConnectionOptions, log: (m: string) => void): Promise<unknown> {
  const root = config.checkpoint.dir;
  switch (task.op) {
    case 'snapshot':
      return takeSnapshot(config, task.name, { connection, timeoutMs: task.timeoutSeconds * 1000, log });
    case 'restore':
      return restoreState(
        config,
        { id: task.id, fromDir: task.fromDir, offsets: task.offsets ? parseOffsetPoint(task.offsets) : undefined, state: task.state },
        { connection, log },
      );
    case 'delete':
      return { op: 'delete', name: task.name, deleted: deleteSnapshot(root, task.name) };
    case 'list':
      return listSnapshots(root);
  }
}

function summaryOf(task: StateTask, result: unknown): unknown {
  if (task.op === 'snapshot') return snapshotSummary(result as SnapshotManifest);
  if (task.op === 'restore') return restoreSummary(result as RestoreResult);
  return result;
}

async function runInPod(configFile: string, task: StateTask): Promise<void> {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  try {
    const config = loadWorkerConfig(configFile, process.env);
    const connection = kafkaConnection(config.kafka, credentialsFromEnv(process.env).kafka);
    const result = await runStateTask(config, task, connection, log);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    writeTerminationMessage(JSON.stringify(summaryOf(task, result)));
  } catch (err) {
    const message = (err as Error).message;
    writeTerminationMessage(/^[A-Z][A-Za-z]+: /.test(message) ? message : `StateTaskFailed: ${message}`);
    throw err;
  }
}

export function stateCommand(): Command {
  const state = new Command('state').description("Tasks on a job's checkpoint volume (what the operator runs as a pod): snapshot, restore, delete, list");
  const config = (c: Command): Command => c.requiredOption('-c, --config <file>', 'the worker config of the job (its checkpoint.dir is the volume)');
  state.addCommand(
    config(new Command('snapshot'))
      .description('Take a snapshot of every partition (state and offsets); with workers running, they write it between two batches')
      .requiredOption('--name <name>', 'snapshot name')
      .option('--timeout <seconds>', 'how long running workers have to write their partitions', (v) => Number(v), 120)
      .action(async (o: { config: string; name: string; timeout: number }) => runInPod(o.config, { op: 'snapshot', name: o.name, timeoutSeconds: o.timeout })),
  );
  state.addCommand(
    config(new Command('restore'))
      .description('Rewrite the checkpoints of a stopped job: from a snapshot, and/or at other offsets with state kept or dropped')
      .option('--id <id>', 'one-shot key: a restore with this id already done is not done again')
      .option('--from <dir>', 'a snapshot directory')
      .option('--snapshot <name>', "a snapshot on this job's own volume")
      .option('--offsets <where>', 'earliest, latest or an ISO time (the first event at or after it)')
      .addOption(new Option('--state <choice>', 'keep or drop the state').choices(['keep', 'drop']).default('keep'))
      .action(async (o: { config: string; id?: string; from?: string; snapshot?: string; offsets?: string; state: StateChoice }) => {
        const cfg = loadWorkerConfig(o.config, process.env);
        const fromDir = o.from ?? (o.snapshot ? snapshotDir(cfg.checkpoint.dir, o.snapshot) : undefined);
        await runInPod(o.config, { op: 'restore', id: o.id, fromDir, offsets: o.offsets, state: o.state });
      }),
  );
  state.addCommand(
    config(new Command('delete'))
      .description("Delete a snapshot's files")
      .requiredOption('--name <name>', 'snapshot name')
      .action(async (o: { config: string; name: string }) => runInPod(o.config, { op: 'delete', name: o.name })),
  );
  state.addCommand(
    config(new Command('list'))
      .description('List the snapshots on the volume')
      .action(async (o: { config: string }) => runInPod(o.config, { op: 'list' })),
  );
  return state;
}
