import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { decodeModel, FLOAT, metadata, type Model, type ValueInfo } from './onnx.js';

/** A model that cannot score the job's features: wrong inputs, names or outputs. */
export class ModelMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelMismatchError';
  }
}

/** Output names tried first; otherwise the model's first output. */
/**
 * onnxruntime starts a telemetry uploader with its first session and, in an image
 * without a CA bundle, prints a coloured non-JSON warning about it into the
 * worker's JSON log. The variable is read when the runtime's environment is
 * created, so it is set before the first session (a user's own value wins).
 */
function disableOnnxTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
}

const PROBABILITY_OUTPUTS = ['probability', 'probabilities', 'output_probability'];

/**
 * An ONNX model checked against a job's feature definition, scoring batches
 * with one session.run each. The model must take one float32 input of shape
 * [batch, F] and carry `feature_names` (a JSON array, or comma-separated) in
 * its metadata equal to the job's features, in order; it must output
 * P(positive) as [batch], [batch, 1] or [batch, 2] (column 1 is taken).
 */
/** Rows per block of the padded batches (see score). */
const ROW_BLOCK = 64;

export class Scorer {
  private pad = new Float32Array(0);

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    private readonly outputColumns: number,
    readonly featureNames: readonly string[],
    readonly version: string,
    readonly path: string,
    /** The model's metadata_props (feature_names, model_version, metrics, training...). */
    readonly metadata: ReadonlyMap<string, string>,
  ) {}

  static async load(path: string, expectedFeatures: readonly string[]): Promise<Scorer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new Error(`model ${path}: cannot read the file: ${(err as Error).message}`);
    }
    let model: Model;
    try {
      model = decodeModel(bytes);
    } catch (err) {
      throw new ModelMismatchError(`model ${path}: not an ONNX model (${(err as Error).message})`);
    }
    const graph = model.graph;
    if (!graph) throw new ModelMismatchError(`model ${path}: not an ONNX model (no graph)`);
    const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
    const inputs = graph.input.filter((i) => !initializers.has(i.name));
    const meta = metadata(model);
    const input = checkInput(path, inputs, expectedFeatures.length);
    checkFeatureNames(path, meta.get('feature_names'), expectedFeatures);
    const { name: outputName, columns } = pickOutput(path, graph.output);
    let session: ort.InferenceSession;
    disableOnnxTelemetry();
    try {
      // Workers scale by processes (one per partition set), not threads.
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    } catch (err) {
      throw new ModelMismatchError(`model ${path}: onnxruntime cannot load it: ${(err as Error).message}`);
    }
    const version = meta.get('model_version') ?? `sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
    return new Scorer(session, input, outputName, columns, [...expectedFeatures], version, path, meta);
  }

  /**
   * Scores `rows` feature vectors laid out row after row in `features` (at
   * least rows × F values); returns P(positive) per row.
   */
  async score(features: Float32Array, rows: number): Promise<Float32Array> {
    const width = this.featureNames.length;
    if (rows === 0) return new Float32Array(0);
    if (features.length < rows * width) {
      throw new Error(`score: ${rows} rows need ${rows * width} values (${width} features each), got ${features.length}`);
    }
    // onnxruntime's matrix kernels work on blocks of rows, and a row in a partial
    // block can come out a few ULPs apart from the same row in a full one: a
    // user's score would then depend on which other users shared the poll (a
    // rebalance, or a restart, would change the last printed digit). Padding to
    // whole blocks of ROW_BLOCK rows computes every row the same way.
    const padded = Math.ceil(rows / ROW_BLOCK) * ROW_BLOCK;
    let data: Float32Array;
    if (padded === rows) {
      data = features.length === rows * width ? features : features.subarray(0, rows * width);
    } else {
      if (this.pad.length < padded * width) this.pad = new Float32Array(padded * width);
      data = this.pad.subarray(0, padded * width);
      data.set(features.subarray(0, rows * width));
      data.fill(0, rows * width);
    }
    const out = await this.session.run({ [this.inputName]: new ort.Tensor('float32', data, [padded, width]) });
    const values = out[this.outputName].data as Float32Array;
    if (this.outputColumns === 1) return values.length === rows ? values : values.slice(0, rows);
    const p = new Float32Array(rows);
    for (let r = 0; r < rows; r++) p[r] = values[r * this.outputColumns + 1];
    return p;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function checkInput(path: string, inputs: ValueInfo[], width: number): string {
  if (inputs.length !== 1) {
    throw new ModelMismatchError(`model ${path}: expected exactly one input (a float32 [batch, ${width}] feature matrix), found ${inputs.length}: ${inputs.map((i) => i.name).join(', ') || 'none'}`);
  }
  const input = inputs[0];
  const tensor = input.type?.tensor_type;
  if (!tensor) throw new ModelMismatchError(`model ${path}: input '${input.name}' is not a tensor; expected float32 [batch, ${width}]`);
  if (tensor.elem_type !== FLOAT) {
    throw new ModelMismatchError(`model ${path}: input '${input.name}' has element type ${tensor.elem_type} (ONNX TensorProto.DataType); expected 1 (float32)`);
  }
  const dims = tensor.shape?.dim ?? [];
  const shown = `[${dims.map((d) => d.dim_param || (d.dim_value ?? '?')).join(', ')}]`;
  if (dims.length !== 2) {
    throw new ModelMismatchError(`model ${path}: input '${input.name}' has shape ${shown}; expected [batch, ${width}]`);
  }
  if (dims[1].dim_value !== width) {
    throw new ModelMismatchError(`model ${path}: input '${input.name}' has shape ${shown}: ${dims[1].dim_value ?? dims[1].dim_param ?? 'unknown'} features, but this job computes ${width}`);
  }
  return input.name;
}

function parseNames(raw: string): string[] | undefined {
  const trimmed = raw.trim();
  if (trimmed.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(trimmed);
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
    } catch {
      return undefined;
    }
  }
  return trimmed.split(',').map((s) => s.trim());
}

function checkFeatureNames(path: string, raw: string | undefined, expected: readonly string[]): void {
  if (raw === undefined) {
    throw new ModelMismatchError(`model ${path}: metadata_props has no 'feature_names'; add it (a JSON array of the ${expected.length} feature names in input order: ${expected.join(', ')}) so Sluice can check the model reads the features it computes`);
  }
  const names = parseNames(raw);
  if (!names) throw new ModelMismatchError(`model ${path}: metadata 'feature_names' is neither a JSON array of strings nor a comma-separated list: ${raw.slice(0, 80)}`);
  const missing = expected.filter((n) => !names.includes(n));
  const unknown = names.filter((n) => !expected.includes(n));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing ${missing.join(', ')}`);
  if (unknown.length > 0) problems.push(`unknown ${unknown.join(', ')}`);
  if (problems.length === 0) {
    const firstMoved = expected.findIndex((n, i) => names[i] !== n);
    if (firstMoved < 0) return;
    problems.push(`order differs at position ${firstMoved}: model has '${names[firstMoved]}', job computes '${expected[firstMoved]}'`);
  }
  throw new ModelMismatchError(`model ${path}: feature_names do not match the job's features (${problems.join('; ')}); expected, in order: ${expected.join(', ')}`);
}

function pickOutput(path: string, outputs: ValueInfo[]): { name: string; columns: number } {
  const out = PROBABILITY_OUTPUTS.map((n) => outputs.find((o) => o.name === n)).find((o) => o !== undefined) ?? outputs[0];
  if (!out) throw new ModelMismatchError(`model ${path}: the model has no output`);
  const tensor = out.type?.tensor_type;
  if (!tensor) {
    throw new ModelMismatchError(`model ${path}: output '${out.name}' is not a tensor (a ZipMap? export classifiers with zipmap disabled); expected float32 [batch] or [batch, 1|2]`);
  }
  if (tensor.elem_type !== FLOAT) throw new ModelMismatchError(`model ${path}: output '${out.name}' has element type ${tensor.elem_type}; expected 1 (float32 probabilities)`);
  const dims = tensor.shape?.dim ?? [];
  if (dims.length === 1) return { name: out.name, columns: 1 };
  const cols = dims.length === 2 ? dims[1].dim_value : undefined;
  if (cols === 1 || cols === 2) return { name: out.name, columns: cols };
  throw new ModelMismatchError(`model ${path}: output '${out.name}' has ${dims.length} dimensions / ${cols ?? 'unknown'} columns; expected [batch], [batch, 1] or [batch, 2]`);
}
