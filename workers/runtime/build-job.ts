import type { JobType, WorkerConfig } from '../config.js';
import { CART_FEATURES } from '../features/cart.js';
import { CHURN_FEATURES } from '../features/churn.js';
import { CartJob } from '../jobs/cart.js';
import { ChurnJob } from '../jobs/churn.js';
import type { ScoreModel, StreamJob } from '../jobs/job.js';
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
): StreamJob<unknown> {
  const job = type === 'churn' ? new ChurnJob(model, highRiskThreshold) : new CartJob(model, cart);
  return job as StreamJob<unknown>;
}
