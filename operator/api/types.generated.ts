// Generated from crds/processingjobs.sluice.dev.yaml by operator/api/generate-types.ts. Do not edit.
// Regenerate: npx tsx operator/api/generate-types.ts

/** For demos and tests: makes every worker as slow as a worker that can process only this many events per second (a 2-core machine can then show a job that needs four workers). The waiting counts as busy time, so the autoscaler measures exactly this rate. Absent: no limit. */
export interface ProcessingJobSpecThrottle {
  /** Events per second one worker processes at most. */
  eventsPerSecondPerWorker: number;
}

/** Built-in autoscaling (docs/autoscaling.md): the operator sizes the job from the topic's input rate, the lag and each worker's true processing rate (events per second of busy time), within [minParallelism, maxParallelism] and never above the topic's partitions, and explains every decision in status.autoscaling and in Events. While enabled in mode Scale the operator owns the number of workers and spec.parallelism (kubectl scale) is only the value used when autoscaling is off. If a HorizontalPodAutoscaler or a KEDA ScaledObject also scales this job, Sluice stops acting and says so in the Autoscaling condition. */
export interface ProcessingJobSpecAutoscaling {
  /** Turn the autoscaler on; off, spec.parallelism decides. Defaults to false. */
  enabled: boolean;
  /** 'Scale': the operator sets the number of workers. 'Recommend': it only reports what it would do (status.autoscaling, Events, metrics) and keeps running spec.parallelism workers. Defaults to Scale. */
  mode: "Scale" | "Recommend";
  /** Fewest workers; at least 1 unless spec.suspend is true (then no worker runs at all). Defaults to 1. */
  minParallelism: number;
  /** Most workers. Default, and always capped at, the topic's partition count (a worker beyond it would own no partition). */
  maxParallelism?: number;
  /** The longest acceptable time to work off the lag: the job is sized for the input rate plus lag / catchUpSeconds. Defaults to 300. */
  catchUpSeconds: number;
  /** Share of a worker's true processing rate the sizing plans for; the rest is headroom for bursts; a scale-up starts once the load passes halfway between this and 1. Defaults to 0.8. */
  targetUtilization: number;
  /** Rates (input, true processing rate) are averaged over this many seconds of observations. Longer is smoother, shorter reacts faster. Defaults to 30. */
  metricsWindowSeconds: number;
  /** A scale-up happens only when every recommendation of the last this-many seconds asked for more workers (and the load passed the scale-up threshold); it goes straight to the latest recommendation. Defaults to 30. */
  scaleUpStabilizationSeconds: number;
  /** A scale-down happens only after this many seconds without any scale, when every recommendation of that time asked for fewer workers (to the largest of them); two changes of direction (up then down, or down then up) are always at least this far apart. Defaults to 300. */
  scaleDownStabilizationSeconds: number;
}

/** TLS to the brokers. */
export interface ProcessingJobSpecKafkaTls {
  /** Connect with TLS. Defaults to true. */
  enabled: boolean;
  /** A Secret in the job's namespace with 'ca.crt' and optionally 'tls.crt' and 'tls.key' (client certificate), mounted into the workers. */
  secretName?: string;
  /** Do not verify the brokers' certificates (tests only). Defaults to false. */
  insecureSkipVerify: boolean;
}

/** SASL authentication; the credentials come from a Secret, never from the spec. */
export interface ProcessingJobSpecKafkaSasl {
  /** The SASL mechanism. Defaults to scram-sha-512. */
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  /** A Secret in the job's namespace holding the username and password. */
  secretName: string;
  /** The key of the username in the Secret. Defaults to username. */
  usernameKey: string;
  /** The key of the password in the Secret. Defaults to password. */
  passwordKey: string;
}

/** Where the events come from. */
export interface ProcessingJobSpecKafka {
  /** Kafka brokers as host:port (KAFKA_BOOTSTRAP_SERVERS in the system Sluice replaces). */
  bootstrapServers: string[];
  /** The topic of user events (KAFKA_TOPIC). Defaults to user_events. */
  topic: string;
  /** The consumer group of the workers. Defaults to 'sluice-<namespace>-<name>'. */
  consumerGroup?: string;
  /** Where a consumer group with no committed offset and no checkpoint starts reading. Defaults to latest. */
  startFrom: "earliest" | "latest";
  /** Where malformed events go, with the reason. Defaults to '<topic>.dlq'. */
  deadLetterTopic?: string;
  /** TLS to the brokers. */
  tls?: ProcessingJobSpecKafkaTls;
  /** SASL authentication; the credentials come from a Secret, never from the spec. */
  sasl?: ProcessingJobSpecKafkaSasl;
}

/** The Redis password, from a Secret in the job's namespace. */
export interface ProcessingJobSpecRedisPasswordSecret {
  /** The Secret's name. */
  name: string;
  /** The key of the password in the Secret. Defaults to password. */
  key: string;
}

/** Where the scores are written. */
export interface ProcessingJobSpecRedis {
  /** Redis host name or IP address, without scheme or port (REDIS_HOST), for example redis.shop.svc. */
  host: string;
  /** Redis port (REDIS_PORT). Defaults to 6379. */
  port: number;
  /** Redis database number. Defaults to 0. */
  db: number;
  /** Prepended to every key the workers write ('<prefix>user:<id>'). Defaults to '' (no prefix). */
  keyPrefix: string;
  /** Expiry of the written keys in seconds; 0 means no expiry. Defaults to 0. */
  ttlSeconds: number;
  /** Connect to Redis with TLS. Defaults to false. */
  tls: boolean;
  /** The Redis password, from a Secret in the job's namespace. */
  passwordSecret?: ProcessingJobSpecRedisPasswordSecret;
}

/** A model stored in a ConfigMap (binaryData) in the job's namespace. */
export interface ProcessingJobSpecModelConfigMap {
  /** The ConfigMap's name. */
  name: string;
  /** The key of the ONNX file in the ConfigMap. */
  key: string;
}

/** A model stored on a PersistentVolumeClaim in the job's namespace (mounted read-only). */
export interface ProcessingJobSpecModelPvc {
  /** The PVC's name. */
  claimName: string;
  /** Path of the ONNX file inside the volume, relative to its root. */
  path: string;
}

/** A model file inside a container image; an init container copies it (with 'cp') into the pod before the worker starts. */
export interface ProcessingJobSpecModelImage {
  /** The image reference (registry/repository:tag or @digest). */
  reference: string;
  /** Absolute path of the ONNX file inside that image. */
  path: string;
}

/** The ONNX model that scores the features. Defaults to the model bundled for the job type. */
export interface ProcessingJobSpecModel {
  /** Where the model file comes from: 'bundled' (the model shipped in the worker image for the job type), 'configMap', 'pvc' or 'image' (a file inside another container image). Defaults to bundled. */
  source: "bundled" | "configMap" | "pvc" | "image";
  /** A model stored in a ConfigMap (binaryData) in the job's namespace. */
  configMap?: ProcessingJobSpecModelConfigMap;
  /** A model stored on a PersistentVolumeClaim in the job's namespace (mounted read-only). */
  pvc?: ProcessingJobSpecModelPvc;
  /** A model file inside a container image; an init container copies it (with 'cp') into the pod before the worker starts. */
  image?: ProcessingJobSpecModelImage;
  /** Score at or above which a churn job reports a user as high risk (risk_level=high; default 0.7, medium from 0.4 or the threshold if lower). Cart jobs use spec.cart.abandonThreshold. */
  threshold?: number;
}

/** Checkpoints of worker state and Kafka offsets, on a volume shared by the workers. */
export interface ProcessingJobSpecCheckpoint {
  /** Seconds between checkpoints. Defaults to 60. */
  intervalSeconds: number;
  /** Size of the checkpoint volume (a Kubernetes quantity, for example 1Gi). Defaults to 1Gi. */
  size: string;
  /** Storage class of the checkpoint volume. Defaults to the cluster's default class. Immutable once the volume exists. */
  storageClassName?: string;
  /** Access mode of the checkpoint volume. ReadWriteMany, because any worker may take over any partition and must read its checkpoint. Immutable. Defaults to ReadWriteMany. */
  accessMode: "ReadWriteMany" | "ReadWriteOnce" | "ReadWriteOncePod";
  /** Keep the checkpoint volume when the job is deleted (a new job of the same name reuses it). Defaults to false. */
  retainOnDelete: boolean;
}

/** Where each worker keeps its users' state between checkpoints. */
export interface ProcessingJobSpecState {
  /** memory (default): every user of the worker's partitions in its memory, about 240 bytes per churn user and 60 per cart user. disk: in a file of fixed-size records on the pod's local disk, an emptyDir, with the users in use cached in memory, for more users per worker than its memory holds. Either way the checkpoint volume holds what rebuilds the state on any pod: the local store is never put on the shared volume. Defaults to memory. */
  backend: "memory" | "disk";
  /** Memory in MiB for the users cached per partition with the disk backend. Defaults to 256. */
  cacheMiB: number;
  /** Size limit of the emptyDir for the disk backend's files (a Kubernetes quantity): about 300 bytes per churn user and 100 per cart user of the worker's partitions, plus room. Defaults to 10Gi. */
  localDiskSize: string;
}

/** Snapshots taken on a schedule (ProcessingJobSnapshot resources named '<job>-<time>'); without it, snapshots are taken on demand only (kubectl apply a ProcessingJobSnapshot). */
export interface ProcessingJobSpecSnapshots {
  /** Minutes between two scheduled snapshots. */
  intervalMinutes: number;
  /** How many snapshots the operator took (scheduled and before upgrades) are kept; older ones are deleted with their files. Snapshots made by users are never deleted by the operator. Defaults to 3. */
  keep: number;
}

/** Where every partition starts reading. */
export interface ProcessingJobSpecRestoreOffsets {
  /** 'earliest' (replay the topic's retention), 'latest' (skip to now), or 'timestamp'. */
  reset: "earliest" | "latest" | "timestamp";
  /** The first event at or after this time (RFC 3339, for example 2024-05-01T00:00:00Z). */
  timestamp?: string;
}

/** A one-shot change of where the workers start: from a snapshot (of this job, or of another job of the same type reading the same topic), and/or from other offsets with the state kept or dropped (reprocessing). The workers are stopped, the checkpoints rewritten, the workers started again; it is done once per id and recorded in status.restore, so applying the same YAML again does not repeat it. Change the id to do it again. */
export interface ProcessingJobSpecRestore {
  /** Names this restore; a new id asks for a new one (for example 'reprocess-2024-05-01'). */
  id: string;
  /** A Completed ProcessingJobSnapshot in this namespace. Of another job: the same type and topic, and its checkpoint volume must be mountable by this job's pods too (ReadWriteMany, or one node). */
  fromSnapshot?: string;
  /** Where every partition starts reading. */
  offsets?: ProcessingJobSpecRestoreOffsets;
  /** With offsets: keep the state (the snapshot's, or the current checkpoints') or drop it (start with no state, as a fresh job from that point would). Default keep with fromSnapshot. */
  state?: "keep" | "drop";
}

/** How changes of the workers (model, image, settings) are rolled out. */
export interface ProcessingJobSpecUpgrade {
  /** Take a ProcessingJobSnapshot before each change of the workers (not for scaling); the change waits for it. Defaults to false. */
  snapshotBeforeChange: boolean;
  /** Roll back a change whose workers are not Ready, or make no progress, within timeoutSeconds: the last stable spec (status.upgrade) is applied again and the state restored from the snapshot taken before the change, so no event is lost or counted twice. spec keeps the failed change; apply a new one to try again. Defaults to false. */
  rollback: boolean;
  /** How long a change has to become Ready and to move the committed offsets (when there is lag). Defaults to 300. */
  timeoutSeconds: number;
}

/** How the workers treat event times (event_time of each event), which drive the churn job's midnight rescoring and the cart job's abandonment timers. */
export interface ProcessingJobSpecEventTime {
  /** How far ahead of the worker's clock an event may be dated. An event dated later (a producer with a wrong clock) is sent to the dead-letter topic with the reason instead of moving its partition's event time, which would rescore every user of the partition and fire cart timers early. Events that come late are always applied (see docs/workers.md). Defaults to 300. */
  maxFutureSkewSeconds: number;
}

/** Cart abandonment settings (type 'cart' only). */
export interface ProcessingJobSpecCart {
  /** Minutes after the last cart activity without a purchase before a cart counts as abandoned (ABANDON_WINDOW_MIN). Defaults to 60. */
  abandonWindowMinutes: number;
  /** Abandonment probability above which an alert is sent (CART_ABANDON_THRESHOLD). Defaults to 0.75. */
  abandonThreshold: number;
}

/** The SMTP server. */
export interface ProcessingJobSpecAlertsSmtp {
  /** SMTP host name or IP address, without scheme or port, for example smtp.shop.example. */
  host: string;
  /** SMTP port. Defaults to 587. */
  port: number;
  /** Implicit TLS (usually port 465); otherwise STARTTLS when offered. Defaults to false. */
  secure: boolean;
  /** A Secret in the job's namespace with the SMTP 'username' and 'password'. */
  secretName?: string;
}

/** Email alerts for abandoned carts (type 'cart' only). Without it alerts land in Redis only. */
export interface ProcessingJobSpecAlerts {
  /** The SMTP server. */
  smtp: ProcessingJobSpecAlertsSmtp;
  /** Sender address, for example sluice@shop.example. */
  from: string;
  /** What a crash while an email is being sent may cost. at-most-once: that alert is not sent again (it may be lost, never doubled). at-least-once: it is sent again with the same Message-ID (never lost, may arrive twice; a mail system deduplicating by Message-ID drops the copy). Defaults to at-most-once. */
  delivery: "at-most-once" | "at-least-once";
  /** Recipient addresses. */
  to: string[];
}

/** CPU and memory of each worker container. */
export interface ProcessingJobSpecResources {
  /** Minimum resources, for example {cpu 500m, memory 512Mi}. */
  requests?: Record<string, number | string>;
  /** Maximum resources. */
  limits?: Record<string, number | string>;
}

/** Overrides for the worker pods. */
export interface ProcessingJobSpecTemplate {
  /** Extra labels of the worker pods (the operator's own labels win). */
  labels?: Record<string, string>;
  /** Extra annotations of the worker pods. */
  annotations?: Record<string, string>;
  /** Node labels the worker pods must run on. */
  nodeSelector?: Record<string, string>;
  /** Tolerations of the worker pods (core/v1 Toleration). */
  tolerations?: Record<string, unknown>[];
  /** Affinity of the worker pods (core/v1 Affinity). */
  affinity?: Record<string, unknown>;
  /** Service account of the worker pods. Defaults to the namespace's 'default'. */
  serviceAccountName?: string;
  /** Priority class of the worker pods. */
  priorityClassName?: string;
  /** Names of Secrets used to pull the worker image. */
  imagePullSecrets?: string[];
}

/** What the user wants to run. */
export interface ProcessingJobSpec {
  /** The job type: 'churn' scores per-user churn risk; 'cart' detects abandoned carts and alerts. Immutable. */
  type: "churn" | "cart";
  /** Number of worker pods, at least 1 unless spec.suspend is true. More workers than the topic has partitions would sit idle, so the operator refuses a value above the partition count: it applies nothing of that spec (the workers keep running as before) and reports ConfigValid=False and Degraded=True with reason ParallelismAboveTopicPartitions until the topic has enough partitions or the value is lowered. Changed by 'kubectl scale'. Defaults to 1. */
  parallelism: number;
  /** When true, the workers are scaled to zero; checkpoints are kept. Defaults to false. */
  suspend: boolean;
  /** Changing this value rolls the workers without any other spec change (for example the date of the restart). */
  restartNonce?: string;
  /** A worker pod Pending for longer than this makes the job Degraded (reason PodPendingTooLong). Defaults to 300. */
  podPendingTimeoutSeconds: number;
  /** For demos and tests: makes every worker as slow as a worker that can process only this many events per second (a 2-core machine can then show a job that needs four workers). The waiting counts as busy time, so the autoscaler measures exactly this rate. Absent: no limit. */
  throttle?: ProcessingJobSpecThrottle;
  /** Built-in autoscaling (docs/autoscaling.md): the operator sizes the job from the topic's input rate, the lag and each worker's true processing rate (events per second of busy time), within [minParallelism, maxParallelism] and never above the topic's partitions, and explains every decision in status.autoscaling and in Events. While enabled in mode Scale the operator owns the number of workers and spec.parallelism (kubectl scale) is only the value used when autoscaling is off. If a HorizontalPodAutoscaler or a KEDA ScaledObject also scales this job, Sluice stops acting and says so in the Autoscaling condition. */
  autoscaling?: ProcessingJobSpecAutoscaling;
  /** Where the events come from. */
  kafka: ProcessingJobSpecKafka;
  /** Where the scores are written. */
  redis: ProcessingJobSpecRedis;
  /** The ONNX model that scores the features. Defaults to the model bundled for the job type. */
  model?: ProcessingJobSpecModel;
  /** Checkpoints of worker state and Kafka offsets, on a volume shared by the workers. */
  checkpoint: ProcessingJobSpecCheckpoint;
  /** Where each worker keeps its users' state between checkpoints. */
  state: ProcessingJobSpecState;
  /** Snapshots taken on a schedule (ProcessingJobSnapshot resources named '<job>-<time>'); without it, snapshots are taken on demand only (kubectl apply a ProcessingJobSnapshot). */
  snapshots?: ProcessingJobSpecSnapshots;
  /** A one-shot change of where the workers start: from a snapshot (of this job, or of another job of the same type reading the same topic), and/or from other offsets with the state kept or dropped (reprocessing). The workers are stopped, the checkpoints rewritten, the workers started again; it is done once per id and recorded in status.restore, so applying the same YAML again does not repeat it. Change the id to do it again. */
  restore?: ProcessingJobSpecRestore;
  /** How changes of the workers (model, image, settings) are rolled out. */
  upgrade: ProcessingJobSpecUpgrade;
  /** How the workers treat event times (event_time of each event), which drive the churn job's midnight rescoring and the cart job's abandonment timers. */
  eventTime: ProcessingJobSpecEventTime;
  /** Cart abandonment settings (type 'cart' only). */
  cart?: ProcessingJobSpecCart;
  /** Email alerts for abandoned carts (type 'cart' only). Without it alerts land in Redis only. */
  alerts?: ProcessingJobSpecAlerts;
  /** Worker image, for example registry.example.com/shop/sluice:0.1.0. Defaults to the image the operator was started with (--worker-image). */
  image?: string;
  /** Pull policy of the worker image. */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** CPU and memory of each worker container. */
  resources?: ProcessingJobSpecResources;
  /** Overrides for the worker pods. */
  template?: ProcessingJobSpecTemplate;
}

/** What the autoscaler measured and decided (spec.autoscaling); absent when it is off. */
export interface ProcessingJobStatusAutoscaling {
  /** The mode the decision was made in. */
  mode?: "Scale" | "Recommend";
  /** Workers the worker Deployment runs now. */
  currentParallelism?: number;
  /** Workers the latest figures call for, within the bounds (in mode Recommend, what it would run). */
  recommendedParallelism?: number;
  /** Events per second arriving on the topic (growth of its end offsets), 2 significant digits. */
  inputRate?: number;
  /** Events one worker processes per second of busy time (its true rate, not what it happens to process), 2 significant digits. */
  processingRatePerWorker?: number;
  /** Events between the end of the topic and the workers' positions, 2 significant digits. */
  lag?: number;
  /** Seconds of input the lag holds (lag / input rate). */
  lagSeconds?: number;
  /** Partitions of the topic, the hard cap on workers. */
  partitions?: number;
  /** ScaleUp, ScaleDown, Steady (the workers fit the load) or Hold (not deciding: a rollout, a worker not ready, missing metrics, another autoscaler...; see reason). */
  lastDecision?: "ScaleUp" | "ScaleDown" | "Steady" | "Hold";
  /** The last decision in words, with its figures. */
  reason?: string;
  /** When the autoscaler last changed the number of workers. */
  lastScaleTime?: string;
  /** The direction of that change. */
  lastScaleDirection?: "Up" | "Down";
  /** When a change went the other way from the change before it (at most one per scale-down window). */
  lastReversalTime?: string;
}

/** The last spec.restore the operator carried out (or is carrying out). */
export interface ProcessingJobStatusRestore {
  /** spec.restore.id it was. */
  id?: string;
  /** Pending (stopping the workers), Running (rewriting the checkpoints), Completed, Failed (see message). */
  phase?: "Pending" | "Running" | "Completed" | "Failed";
  /** What happened. */
  message?: string;
  /** When it started. */
  startedAt?: string;
  /** When the checkpoints were rewritten. */
  completedAt?: string;
  /** The next offset of each partition after the restore (-1 where the partition starts from spec.kafka.startFrom). */
  offsets?: number[];
}

/** What the operator keeps to roll a failed change back (the last stable spec) and how the last change went. */
export interface ProcessingJobStatusUpgrade {
  /** Stable (the applied spec is the stable one), Snapshotting (taking the snapshot before a change), Upgrading (a change is being watched), RollingBack, RolledBack (the change failed; the stable spec runs until spec changes again). */
  state?: "Stable" | "Snapshotting" | "Upgrading" | "RollingBack" | "RolledBack";
  /** metadata.generation of the last stable spec. */
  stableGeneration?: number;
  /** The last spec whose workers were Ready and made progress (what a rollback applies). */
  stableSpec?: Record<string, unknown>;
  /** When that spec became stable. */
  stableSince?: string;
  /** The generation of the change being rolled out or rolled back. */
  changeGeneration?: number;
  /** When its workers were applied. */
  changeStartedAt?: string;
  /** When its workers were all Ready (from then on the committed offsets must move). */
  changeReadyAt?: string;
  /** The ProcessingJobSnapshot taken before the change. */
  snapshot?: string;
  /** Why the change was rolled back (WorkersNotReady, NoProgress, ...). */
  reason?: string;
  /** What happened, in a sentence. */
  message?: string;
}

export interface ProcessingJobStatusConditionsItem {
  /** Condition type (Ready, Progressing, Degraded, ConfigValid, Autoscaling). */
  type: string;
  /** True, False or Unknown. */
  status: "True" | "False" | "Unknown";
  /** The spec generation the condition was set for. */
  observedGeneration?: number;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** CamelCase reason. */
  reason: string;
  /** A human-readable explanation. */
  message: string;
}

/** What the operator observed. */
export interface ProcessingJobStatus {
  /** The spec generation this status describes. */
  observedGeneration?: number;
  /** Worker pods that exist. */
  replicas?: number;
  /** Worker pods ready. */
  readyReplicas?: number;
  /** Label selector of the worker pods (for the scale subresource and HPAs). */
  selector?: string;
  /** A one-word summary: Pending (starting), Running (all workers ready), Suspended, Degraded (see the Degraded condition), Paused (reconciliation paused by annotation). */
  phase?: "Pending" | "Running" | "Suspended" | "Degraded" | "Paused";
  /** Hash of the worker configuration last applied (also on the pod template). */
  configHash?: string;
  /** The worker image last applied. */
  workerImage?: string;
  /** Messages behind the end of the topic, summed over partitions, as last reported by the workers. */
  consumerLag?: number;
  /** When the workers last completed a checkpoint, as last reported by them. */
  lastCheckpointTime?: string;
  /** What the autoscaler measured and decided (spec.autoscaling); absent when it is off. */
  autoscaling?: ProcessingJobStatusAutoscaling;
  /** The last spec.restore the operator carried out (or is carrying out). */
  restore?: ProcessingJobStatusRestore;
  /** What the operator keeps to roll a failed change back (the last stable spec) and how the last change went. */
  upgrade?: ProcessingJobStatusUpgrade;
  /** The last ProcessingJobSnapshot of this job that Completed. */
  lastSnapshot?: string;
  /** When it was taken. */
  lastSnapshotTime?: string;
  /** Ready, Progressing, Degraded, ConfigValid and, with spec.autoscaling, Autoscaling (metav1.Condition). */
  conditions?: ProcessingJobStatusConditionsItem[];
}
