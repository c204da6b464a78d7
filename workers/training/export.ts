import { createHash } from 'node:crypto';
import { ATTR_INT, encodeModel, floatTensor, tensorInput } from '../models/onnx.js';
import type { LogisticModel } from './logistic.js';

export interface ExportInfo {
  /** Graph name and model-version prefix: `churn` or `cart`. */
  name: string;
  featureNames: readonly string[];
  /** What P(positive) means, for people reading the model. */
  positive: string;
  /** Anything worth keeping with the model (metrics, training config): stored as JSON. */
  metrics: unknown;
  training: unknown;
}

/**
 * Writes the logistic model as ONNX (opset 17, IR 8) with standard operators:
 * probability = Sigmoid(Concat(x, Log(Relu(x) + 1)) · W + b). The bytes are a
 * pure function of the weights and the info, so the same seed gives the same file.
 */
export function logisticToOnnx(m: LogisticModel, info: ExportInfo): { bytes: Uint8Array; version: string } {
  const f = m.features;
  if (info.featureNames.length !== f) throw new Error(`export: ${info.featureNames.length} feature names for a model of ${f} features`);
  const weightBytes = floatTensor('W', [2 * f, 1], m.weights).raw_data!;
  const digest = createHash('sha256').update(weightBytes).update(String(m.bias)).digest('hex').slice(0, 10);
  const version = `${info.name}-logreg-${digest}`;
  const bytes = encodeModel({
    ir_version: 8,
    producer_name: 'sluice-train',
    producer_version: '1',
    domain: 'io.sluice',
    model_version: 1,
    doc_string: `Sluice ${info.name} model: P(${info.positive}). Logistic regression on the features and their log1p.`,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: info.name,
      node: [
        { input: ['features'], output: ['nonneg'], name: 'clip_negative', op_type: 'Relu' },
        { input: ['nonneg', 'one'], output: ['shifted'], name: 'plus_one', op_type: 'Add' },
        { input: ['shifted'], output: ['log1p'], name: 'log1p', op_type: 'Log' },
        { input: ['features', 'log1p'], output: ['expanded'], name: 'expand', op_type: 'Concat', attribute: [{ name: 'axis', type: ATTR_INT, i: 1 }] },
        { input: ['expanded', 'W'], output: ['linear'], name: 'weights', op_type: 'MatMul' },
        { input: ['linear', 'b'], output: ['logit'], name: 'bias', op_type: 'Add' },
        { input: ['logit'], output: ['probability'], name: 'sigmoid', op_type: 'Sigmoid' },
      ],
      initializer: [floatTensor('one', [1], [1]), floatTensor('W', [2 * f, 1], m.weights), floatTensor('b', [1], [m.bias])],
      input: [tensorInput('features', ['batch', f])],
      output: [tensorInput('probability', ['batch', 1])],
    },
    metadata_props: [
      { key: 'feature_names', value: JSON.stringify(info.featureNames) },
      { key: 'model_version', value: version },
      { key: 'positive_class', value: info.positive },
      { key: 'metrics', value: JSON.stringify(info.metrics) },
      { key: 'training', value: JSON.stringify(info.training) },
    ],
  });
  return { bytes, version };
}
