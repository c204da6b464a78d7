/** Where things live inside a worker pod: one place, shared by the config and the pod spec. */
export const paths = {
  configDir: '/etc/sluice',
  configFile: '/etc/sluice/worker.yaml',
  checkpoints: '/var/lib/sluice/checkpoints',
  /** The disk state backend's local store (an emptyDir: rebuilt from the checkpoints on any pod). */
  state: '/var/lib/sluice/state',
  models: '/var/lib/sluice/models',
  kafkaTls: '/var/run/secrets/sluice/kafka-tls',
  tmp: '/tmp',
} as const;

/** Names of a job's children. */
export const childNames = (job: string) =>
  ({
    deployment: `${job}-worker`,
    configMap: `${job}-config`,
    pvc: `${job}-checkpoints`,
    service: `${job}-metrics`,
  }) as const;
