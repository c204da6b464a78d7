import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_TRAIN_CONFIG, formatCalibration, formatTable, trainAll, type TrainConfig } from './pipeline.js';

function int(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

const program = new Command('train')
  .description('Generate events, train the churn and cart models, compare them with rule-based baselines on held-out users, write ONNX files')
  .option('--seed <n>', 'generator seed', int('seed'), DEFAULT_TRAIN_CONFIG.seed)
  .option('--users <n>', 'simulated users', int('users'), DEFAULT_TRAIN_CONFIG.users)
  .option('--days <n>', 'simulated days', int('days'), DEFAULT_TRAIN_CONFIG.days)
  .option('--out <dir>', 'where churn.onnx and cart.onnx go', resolve(import.meta.dirname, '..', 'models', 'bundled'))
  .parse();

const opts = program.opts<{ seed: number; users: number; days: number; out: string }>();
const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, seed: opts.seed, users: opts.users, days: opts.days };
const started = performance.now();
const result = trainAll(config);
console.log(`${result.events} events, ${config.users} users, ${config.days} days, seed ${config.seed}; held out: 1 user in ${config.heldOutEvery}`);
console.log(formatTable([result.churn, result.cart]));
console.log(formatCalibration(result.churn, [0.5]));
// 0.75: the cart job's default CART_ABANDON_THRESHOLD.
console.log(formatCalibration(result.cart, [0.75]));
mkdirSync(opts.out, { recursive: true });
for (const r of [result.churn, result.cart]) {
  const path = join(opts.out, `${r.job}.onnx`);
  writeFileSync(path, r.onnx);
  console.log(`wrote ${path} (${r.onnx.length} bytes, ${r.version}, trained on ${r.trainRows} rows)`);
}
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
