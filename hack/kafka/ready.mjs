// Readiness probe for hack/kafka.sh: exits 0 once the broker answers a metadata
// request (an open port alone is not enough: KRaft accepts connections before
// the broker has registered with its controller).
//
//   node hack/kafka/ready.mjs 127.0.0.1:39092
import process from 'node:process';
import { Kafka, logLevel } from 'kafkajs';

const broker = process.argv[2];
if (!broker) throw new Error('usage: node hack/kafka/ready.mjs HOST:PORT');

const admin = new Kafka({
  clientId: 'sluice-infra-ready',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 2000,
  requestTimeout: 5000,
  retry: { retries: 0 },
}).admin();

try {
  await admin.connect();
  const cluster = await admin.describeCluster();
  if (cluster.brokers.length === 0) throw new Error('no broker registered yet');
  await admin.listTopics();
  process.exitCode = 0;
} catch (err) {
  process.stderr.write(`kafka not ready at ${broker}: ${err.message}\n`);
  process.exitCode = 1;
} finally {
  await admin.disconnect().catch(() => {});
}
