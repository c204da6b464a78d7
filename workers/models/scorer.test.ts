import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CART_FEATURES } from '../jobs/cart/features.js';
import { CHURN_FEATURES } from '../jobs/churn/features.js';
import { predictLogistic } from '../training/logistic.js';
import { DEFAULT_TRAIN_CONFIG, trainAll, type JobResult } from '../training/pipeline.js';
import { bundledModelPath } from './bundled.js';
import { ATTR_INT, encodeModel, floatTensor, INT64, tensorInput, type Model, type ValueInfo } from './onnx.js';
import { ModelMismatchError, Scorer } from './scorer.js';

let dir: string;
let trained: { churn: JobResult; cart: JobResult };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-scorer-'));
  trained = trainAll({ ...DEFAULT_TRAIN_CONFIG, users: 800, days: 50, seed: 3 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A tiny valid model: P = Sigmoid(x · 1 + 0) over `width` inputs, with overridable parts. */
function model(o: { width?: number; names?: readonly string[] | null; inputs?: ValueInfo[]; output?: ValueInfo; twoColumns?: boolean }): Model {
  const width = o.width ?? 3;
  const names = o.names === undefined ? ['a', 'b', 'c'] : o.names;
  const nodes = [
    { input: ['features', 'W'], output: ['linear'], op_type: 'MatMul' },
    { input: ['linear'], output: o.twoColumns ? ['p'] : ['probability'], op_type: 'Sigmoid' },
  ];
  if (o.twoColumns) {
    nodes.push({ input: ['one', 'p'], output: ['q'], op_type: 'Sub' });
    nodes.push({ input: ['q', 'p'], output: ['probabilities'], op_type: 'Concat', attribute: [{ name: 'axis', type: ATTR_INT, i: 1 }] } as (typeof nodes)[number]);
  }
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'test',
      node: nodes,
      initializer: [floatTensor('W', [width, 1], new Array<number>(width).fill(1)), floatTensor('one', [1], [1])],
      input: o.inputs ?? [tensorInput('features', ['batch', width])],
      output: [o.output ?? tensorInput(o.twoColumns ? 'probabilities' : 'probability', ['batch', o.twoColumns ? 2 : 1])],
    },
    metadata_props: names === null ? [] : [{ key: 'feature_names', value: JSON.stringify(names) }],
  };
}

describe('Scorer', () => {
  it.each(['churn', 'cart'] as const)('the exported %s model scores held-out rows as the TypeScript model does', async (job) => {
    const r = trained[job];
    const scorer = await Scorer.load(write(`${job}.onnx`, r.onnx), job === 'churn' ? CHURN_FEATURES : CART_FEATURES);
    const rows = r.heldOut.y.length;
    expect(rows).toBeGreaterThan(300);
    const onnx = await scorer.score(r.heldOut.x, rows);
    const ts = predictLogistic(r.model, r.heldOut.x, rows);
    let worst = 0;
    for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs(onnx[i] - ts[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(scorer.version).toBe(r.version);
    await scorer.close();
  });

  it('gives each row the same score whether batched by 1, 64 or all at once', async () => {
    const r = trained.cart;
    const scorer = await Scorer.load(write('cart-b.onnx', r.onnx), CART_FEATURES);
    const F = CART_FEATURES.length;
    const all = await scorer.score(r.heldOut.x, 200);
    for (const size of [1, 64]) {
      for (let start = 0; start + size <= 200; start += size * 7) {
        const part = await scorer.score(r.heldOut.x.slice(start * F, (start + size) * F), size);
        for (let i = 0; i < size; i++) expect(part[i]).toBeCloseTo(all[start + i], 6);
      }
    }
    expect(await scorer.score(new Float32Array(0), 0)).toHaveLength(0);
    await expect(scorer.score(new Float32Array(F), 2)).rejects.toThrow(`2 rows need ${2 * F} values (${F} features each), got ${F}`);
    await scorer.close();
  });

  it('gives a row exactly the same score whatever batch it is in (the other rows, their number, its place)', async () => {
    // What the bundled churn model printed differently, in the last digit, before
    // batches were padded to whole blocks of rows.
    const scorer = await Scorer.load(bundledModelPath('churn'), CHURN_FEATURES);
    const F = CHURN_FEATURES.length;
    let seed = 3;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let t = 0; t < 200; t++) {
      const row = Float32Array.from({ length: F }, () => random() * 10);
      const alone = (await scorer.score(row, 1))[0];
      const rows = 1 + Math.floor(random() * 300);
      const at = Math.floor(random() * rows);
      const batch = Float32Array.from({ length: rows * F }, () => random() * 10);
      batch.set(row, at * F);
      expect((await scorer.score(batch, rows))[at], `row ${t} at ${at} of ${rows}`).toBe(alone);
    }
    await scorer.close();
  });

  it('reads a batch from the middle of a larger buffer', async () => {
    const r = trained.churn;
    const F = CHURN_FEATURES.length;
    const scorer = await Scorer.load(write('churn-off.onnx', r.onnx), CHURN_FEATURES);
    const all = await scorer.score(r.heldOut.x, 100);
    const part = await scorer.score(r.heldOut.x.subarray(37 * F, 100 * F), 10);
    for (let i = 0; i < 10; i++) expect(part[i]).toBeCloseTo(all[37 + i], 6);
    await scorer.close();
  });

  it('loads the bundled models for both job types', async () => {
    for (const [job, names] of [['churn', CHURN_FEATURES], ['cart', CART_FEATURES]] as const) {
      const scorer = await Scorer.load(bundledModelPath(job), names);
      expect(scorer.version).toMatch(new RegExp(`^${job}-logreg-[0-9a-f]{10}$`));
      const metrics = JSON.parse(scorer.metadata.get('metrics')!) as { heldOut: { model: { rocAuc: number } } };
      expect(metrics.heldOut.model.rocAuc).toBeGreaterThan(0.65);
      const p = await scorer.score(new Float32Array(names.length * 2), 2);
      expect(p[0]).toBeGreaterThan(0);
      expect(p[0]).toBeLessThan(1);
      await scorer.close();
    }
  });

  it('takes column 1 of a [batch, 2] probability output', async () => {
    const scorer = await Scorer.load(write('two.onnx', encodeModel(model({ twoColumns: true }))), ['a', 'b', 'c']);
    const p = await scorer.score(new Float32Array([1, 1, 0, 0, 0, 0]), 2);
    expect(p[0]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    expect(p[1]).toBeCloseTo(0.5, 6);
    await scorer.close();
  });

  const refusals: [string, Model | string, RegExp][] = [
    ['has fewer inputs than features', model({ width: 2, names: ['a', 'b'] }), /input 'features' has shape \[batch, 2\]: 2 features, but this job computes 3/],
    ['has no feature_names metadata', model({ names: null }), /metadata_props has no 'feature_names'; add it .* a, b, c/],
    ['names a feature the job does not compute', model({ names: ['a', 'b', 'd'] }), /feature_names do not match the job's features \(missing c; unknown d\)/],
    ['has the features in another order', model({ names: ['b', 'a', 'c'] }), /order differs at position 0: model has 'b', job computes 'a'/],
    ['takes int64 input', model({ inputs: [{ ...tensorInput('features', ['batch', 3]), type: { tensor_type: { elem_type: INT64, shape: { dim: [{ dim_param: 'batch' }, { dim_value: 3 }] } } } }] }), /element type 7 .* expected 1 \(float32\)/],
    ['takes two inputs', model({ inputs: [tensorInput('features', ['batch', 3]), tensorInput('extra', ['batch', 1])] }), /expected exactly one input .* found 2: features, extra/],
    ['takes a 1-D input', model({ inputs: [tensorInput('features', [3])] }), /has shape \[3\]; expected \[batch, 3\]/],
    ['outputs a map', model({ output: { name: 'probability', type: {} } }), /output 'probability' is not a tensor \(a ZipMap\?/],
    ['is not ONNX at all', 'this is not a model', /not an ONNX model/],
  ];

  it.each(refusals)('refuses a model that %s, saying what differs', async (_what, m, message) => {
    const path = write(`bad-${Math.random().toString(36).slice(2)}.onnx`, typeof m === 'string' ? m : encodeModel(m));
    const err = await Scorer.load(path, ['a', 'b', 'c']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelMismatchError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(path);
  });

  it('refuses the churn model for the cart job', async () => {
    await expect(Scorer.load(bundledModelPath('churn'), CART_FEATURES)).rejects.toThrow(/19 features, but this job computes 12/);
  });

  it('says when the file cannot be read', async () => {
    await expect(Scorer.load(join(dir, 'missing.onnx'), ['a'])).rejects.toThrow(/missing\.onnx: cannot read the file: ENOENT/);
  });
});
