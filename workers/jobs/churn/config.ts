/** The churn job's part of the worker configuration: no section of its own; `model.threshold` moves its high-risk band. */
import type { JobConfigFragment } from '../../../lib/worker-config/config.js';

export const churnConfig: JobConfigFragment = { type: 'churn', modelPathEnv: 'CHURN_MODEL_PATH' };
