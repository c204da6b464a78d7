/**
 * Errors of the Kafka client with a stable code, decided from what Kafka and
 * kafkajs report (protocol error codes, error classes), never from message
 * text: callers branch on `code`.
 */

export const KafkaErrorCodes = {
  /** The broker answered UNKNOWN_TOPIC_OR_PARTITION (protocol error 3), or the topic is not in its metadata. */
  TOPIC_NOT_FOUND: 'SLUICE_KAFKA_TOPIC_NOT_FOUND',
  /** Authentication (SASL) or authorisation (ACLs) refused. */
  NOT_AUTHORIZED: 'SLUICE_KAFKA_NOT_AUTHORIZED',
  /** No broker could be reached or none answered in time. */
  UNREACHABLE: 'SLUICE_KAFKA_UNREACHABLE',
} as const;

export type KafkaErrorCode = (typeof KafkaErrorCodes)[keyof typeof KafkaErrorCodes];

export class KafkaError extends Error {
  override readonly name = 'KafkaError';

  constructor(
    readonly code: KafkaErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Kafka protocol error codes (see the protocol guide's error table) that the codes above stand for. */
const PROTOCOL = { UNKNOWN_TOPIC_OR_PARTITION: 3, TOPIC_AUTHORIZATION_FAILED: 29, GROUP_AUTHORIZATION_FAILED: 30, CLUSTER_AUTHORIZATION_FAILED: 31, SASL_AUTHENTICATION_FAILED: 58 } as const;
const NOT_AUTHORIZED: readonly number[] = [PROTOCOL.TOPIC_AUTHORIZATION_FAILED, PROTOCOL.GROUP_AUTHORIZATION_FAILED, PROTOCOL.CLUSTER_AUTHORIZATION_FAILED, PROTOCOL.SASL_AUTHENTICATION_FAILED];

interface ErrorLike {
  name?: string;
  code?: unknown;
  cause?: unknown;
}

/** The error and its causes (kafkajs wraps the broker's answer in a retries-exceeded error). */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let e = err; e && typeof e === 'object' && out.length < 10; e = (e as ErrorLike).cause) out.push(e as ErrorLike);
  return out;
}

/** The code of any error the client saw (already a KafkaError: its own code). */
export function kafkaErrorCode(err: unknown): KafkaErrorCode {
  const errors = chain(err);
  const own = errors.find((e): e is KafkaError => e instanceof KafkaError);
  if (own) return own.code;
  const protocol = errors.filter((e) => e.name === 'KafkaJSProtocolError' || typeof e.code === 'number').map((e) => e.code);
  if (protocol.includes(PROTOCOL.UNKNOWN_TOPIC_OR_PARTITION)) return KafkaErrorCodes.TOPIC_NOT_FOUND;
  if (protocol.some((c) => NOT_AUTHORIZED.includes(c as number)) || errors.some((e) => e.name === 'KafkaJSSASLAuthenticationError')) {
    return KafkaErrorCodes.NOT_AUTHORIZED;
  }
  return KafkaErrorCodes.UNREACHABLE;
}

/** Wraps `err` as a KafkaError with its code, and `context` (if any) before the client's message. */
export function toKafkaError(err: unknown, context?: string): KafkaError {
  if (err instanceof KafkaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KafkaError(kafkaErrorCode(err), context ? `${context}: ${message}` : message, { cause: err });
}
