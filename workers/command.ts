/** `sluice worker --config FILE [--type churn|cart]`: one worker process. */
import { Command, Option } from 'commander';
import pino from 'pino';
import type { JobType } from '../lib/worker-config/config.js';
import { jobTypes } from './jobs/registry.js';
import { KafkaErrorCodes, kafkaErrorCode } from '../lib/kafka/errors.js';
import { ModelMismatchError } from './models/scorer.js';
import { credentialsFromEnv, loadWorkerConfig, runWorker, WorkerConfigError } from './main.js';
import { StateIncompatibleError } from './state/format.js';
import { writeTerminationMessage } from './runtime/termination.js';
import { EXIT_CODES } from './exit-codes.js';

/** The exit code for an error that stopped the worker from starting. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof WorkerConfigError) return EXIT_CODES.config;
  if (err instanceof ModelMismatchError) return EXIT_CODES.model;
  if (err instanceof StateIncompatibleError) return EXIT_CODES.stateIncompatible;
  const code = kafkaErrorCode(err);
  if (code === KafkaErrorCodes.TOPIC_NOT_FOUND || code === KafkaErrorCodes.NOT_AUTHORIZED) return EXIT_CODES.topic;
  return EXIT_CODES.transient;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description(`Run one stream worker (${jobTypes.types().join(' or ')}) on Kafka and Redis: what a worker pod runs`)
    .option('-c, --config <file>', 'worker config YAML (the ConfigMap the operator renders); without it, everything comes from the environment')
    .addOption(new Option('-t, --type <type>', 'job type, overriding job.type of the config').choices(jobTypes.types()))
    .option('--metrics-host <host>', 'interface of /metrics, /healthz, /readyz', '0.0.0.0')
    .action(async (opts: { config?: string; type?: JobType; metricsHost: string }) => {
      const logger = pino({ name: 'sluice-worker' });
      let config;
      try {
        config = loadWorkerConfig(opts.config, process.env, { type: opts.type });
      } catch (err) {
        if (err instanceof WorkerConfigError) {
          logger.fatal(err.message);
          process.exitCode = EXIT_CODES.config;
          return;
        }
        throw err;
      }
      // Handlers first: a SIGTERM during start-up (model load, group join) must still end in a clean stop.
      let stopping: Promise<void> | undefined;
      const running: { worker?: Awaited<ReturnType<typeof runWorker>> } = {};
      const shutdown = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        logger.info({ signal }, 'stopping: finishing the batch, checkpointing, leaving the group');
        stopping = (running.worker ? running.worker.stop() : Promise.resolve())
          .then(() => process.exit(0))
          .catch((err: Error) => {
            logger.error({ err: err.message }, 'unclean stop');
            process.exit(1);
          });
      };
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
      // Started by `sluice run` (an IPC channel to it): a supervisor that dies, even by SIGKILL, takes its workers along.
      if (process.send) process.once('disconnect', () => shutdown('SIGHUP'));
      let worker: Awaited<ReturnType<typeof runWorker>>;
      try {
        worker = await runWorker(config, {
          credentials: credentialsFromEnv(process.env),
          logger,
          metricsHost: opts.metricsHost,
          onFatal: (err) => {
            writeTerminationMessage(err.message);
            process.exit(err instanceof StateIncompatibleError ? EXIT_CODES.stateIncompatible : EXIT_CODES.transient);
          },
        });
      } catch (err) {
        // A model that does not fit, an unreachable broker, a port in use: say which, and whether a restart can help.
        const code = exitCodeOf(err);
        const what = code === EXIT_CODES.transient ? 'exiting to be restarted' : `exit code ${code}: restarting cannot fix this`;
        logger.fatal({ err: (err as Error).message, exitCode: code }, `worker did not start (${what}): ${(err as Error).message}`);
        writeTerminationMessage(`worker did not start: ${(err as Error).message}`);
        process.exit(code);
      }
      running.worker = worker;
      if (stopping) {
        await worker.stop();
        process.exit(0);
      }
    });
}
