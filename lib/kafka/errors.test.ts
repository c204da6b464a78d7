import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaError, KafkaErrorCodes, kafkaErrorCode, toKafkaError } from './errors.js';

const { KafkaJSProtocolError, KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError } = kafkajs as unknown as Record<string, new (...args: unknown[]) => Error>;

// What kafkajs throws for a broker's answer: the protocol error (type and code from the error table), wrapped once retries run out.
const protocol = (type: string, code: number): Error => new KafkaJSProtocolError({ message: 'broker said no', type, code, retriable: true });
const retried = (cause: Error): Error => new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 8, retryTime: 100 });

describe('Kafka error codes', () => {
  it('says topic-missing from the protocol code UNKNOWN_TOPIC_OR_PARTITION, however deep it is wrapped, whatever the text', () => {
    expect(kafkaErrorCode(protocol('UNKNOWN_TOPIC_OR_PARTITION', 3))).toBe(KafkaErrorCodes.TOPIC_NOT_FOUND);
    expect(kafkaErrorCode(retried(protocol('UNKNOWN_TOPIC_OR_PARTITION', 3)))).toBe(KafkaErrorCodes.TOPIC_NOT_FOUND);
    expect(kafkaErrorCode(new Error('topic not found (but from somewhere else)'))).toBe(KafkaErrorCodes.UNREACHABLE);
  });

  it('says not-authorized from the ACL and SASL codes, unreachable for connection failures', () => {
    expect(kafkaErrorCode(retried(protocol('TOPIC_AUTHORIZATION_FAILED', 29)))).toBe(KafkaErrorCodes.NOT_AUTHORIZED);
    expect(kafkaErrorCode(retried(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:1')))).toBe(KafkaErrorCodes.UNREACHABLE);
  });

  it('keeps the code of an error it already made and puts the context before the message', () => {
    const own = new KafkaError(KafkaErrorCodes.TOPIC_NOT_FOUND, 'topic t not found');
    expect(toKafkaError(own, 'ignored')).toBe(own);
    const wrapped = toKafkaError(protocol('UNKNOWN_TOPIC_OR_PARTITION', 3), "cannot read partitions of Kafka topic 't'");
    expect(wrapped).toMatchObject({ code: KafkaErrorCodes.TOPIC_NOT_FOUND, message: "cannot read partitions of Kafka topic 't': broker said no" });
  });
});
