import type { JobType, WorkerConfig } from '../../lib/worker-config/config.js';
import { CART_FEATURES } from './cart/features.js';
import { CHURN_FEATURES } from './churn/features.js';
import { CartJob } from './cart/job.js';
import { ChurnJob } from './churn/job.js';
import type { ScoreModel, StreamJob } from '../runtime/job.js';
import type { StateStore } from '../state/table.js';
import { bundledModelPath } from '../models/bundled.js';
import { Scorer } from '../models/scorer.js';

export const DEFAULT_CART_SETTINGS = { abandonWindowMinutes: 60, abandonThreshold: 0.75 };

/** Loads the job's model (the bundled one unless a path is given); refuses a model whose inputs do not match the features. */
export async function loadModel(type: JobType, path: string | undefined): Promise<ScoreModel> {
  return Scorer.load(path ?? bundledModelPath(type), type === 'churn' ? CHURN_FEATURES : CART_FEATURES);
}

export function buildJob(
  type: JobType,
  model: ScoreModel,
  cart: WorkerConfig['cart'] = DEFAULT_CART_SETTINGS,
  highRiskThreshold?: number,
  store?: StateStore,
): StreamJob {
  const job = type === 'churn' ? new ChurnJob(model, highRiskThreshold, store) : new CartJob(model, cart ?? DEFAULT_CART_SETTINGS, store);
  return job as unknown as StreamJob;
}
