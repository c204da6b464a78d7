/**
 * The worker configuration document. The operator renders it from a
 * ProcessingJob into the worker ConfigMap (key `worker.yaml`), `sluice run`
 * renders it for local processes, and the worker validates it at start.
 * Secrets never appear here: credentials reach the worker as environment
 * variables (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, REDIS_PASSWORD,
 * SMTP_USERNAME, SMTP_PASSWORD) from secretKeyRefs.
 */
export type JobType = 'churn' | 'cart';

export type AlertDelivery = 'at-most-once' | 'at-least-once';

export interface WorkerConfig {
  job: {
    name: string;
    namespace?: string;
    type: JobType;
  };
  kafka: {
    bootstrapServers: string[];
    topic: string;
    consumerGroup: string;
    /** Where a consumer group with no committed offset and no checkpoint starts. */
    startFrom: 'earliest' | 'latest';
    deadLetterTopic: string;
    clientId?: string;
    tls?: { enabled: boolean; caFile?: string; certFile?: string; keyFile?: string; insecureSkipVerify?: boolean };
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512' };
    /**
     * How long the group waits for a silent member before moving its
     * partitions (default 30). Lower means faster recovery after a crash;
     * the broker's group.min.session.timeout.ms (6 s by default) is the floor.
     */
    sessionTimeoutSeconds?: number;
  };
  redis: {
    host: string;
    port: number;
    db?: number;
    /** Prepended to every key the worker writes (`<prefix>user:<id>`). */
    keyPrefix: string;
    /** Expiry of written keys; absent or 0 means no expiry. */
    ttlSeconds?: number;
    tls?: boolean;
  };
  model: {
    /** Path of an ONNX file; absent means the model bundled for the job type. */
    path?: string;
    /** Churn: score at or above which a user's risk_level is `high` (default 0.7). */
    threshold?: number;
  };
  checkpoint: {
    dir: string;
    intervalSeconds: number;
  };
  /** Where users' state lives between checkpoints; absent means in memory. */
  state?: {
    backend: 'memory' | 'disk';
    /** The disk backend's local directory (emptied at start: it is rebuilt from the checkpoints). */
    dir: string;
    /** Memory for cached users per partition with the disk backend. */
    cacheMiB: number;
  };
  /** How far ahead of this worker's clock an event may be dated (default 300 s); later ones are dead-lettered. */
  eventTime?: {
    maxFutureSkewSeconds: number;
  };
  /** Only for type `cart`. */
  cart?: {
    abandonWindowMinutes: number;
    abandonThreshold: number;
  };
  /** Only for type `cart`; absent means no email is sent (alerts still land in Redis). */
  alerts?: {
    smtp: { host: string; port: number; secure: boolean };
    from: string;
    to: string[];
    /**
     * at-most-once (default): an alert whose sender died mid-send is never
     * sent again (it may be lost); at-least-once: it is sent again with the
     * same Message-ID (it may arrive twice).
     */
    delivery?: AlertDelivery;
  };
  metrics: {
    port: number;
  };
}
