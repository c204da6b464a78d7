/** The churn job type: per-user features, the churn model, `churn_score` and risk band in `user:<id>`. */
import type { JobDefinition } from '../../runtime/job.js';
import type { MemoryStore } from '../../runtime/memory-store.js';
import { bundledModelPath } from '../../models/bundled.js';
import { Scorer } from '../../models/scorer.js';
import { churnConfig } from './config.js';
import { CHURN_FEATURES } from './features.js';
import { ChurnJob, type ChurnPartitionState } from './job.js';

export const churn: JobDefinition<ChurnPartitionState> = {
  config: churnConfig,
  loadModel: (path) => Scorer.load(path ?? bundledModelPath('churn'), CHURN_FEATURES),
  job: ({ config, model, state }) => new ChurnJob(model, config.model.threshold, state),
  results: { score: 'churn_score', detail: 'risk_level', label: (v) => `${v} risk`, scoreName: 'churn', topHeading: 'riskiest users', alerts: false },
};

/** The users with the highest churn score in a MemoryStore (what `sluice demo` shows), highest first. */
export function riskiestUsers(store: MemoryStore, n: number): Array<{ userId: string; score: number; riskLevel: string; updatedAt: string }> {
  const rows: Array<{ userId: string; score: number; riskLevel: string; updatedAt: string }> = [];
  for (const [userId, h] of store.users) {
    if (h.churn_score === undefined) continue;
    rows.push({ userId, score: Number(h.churn_score), riskLevel: h.risk_level ?? '', updatedAt: h.updated_at ?? '' });
  }
  rows.sort((a, b) => b.score - a.score || a.userId.localeCompare(b.userId));
  return rows.slice(0, n);
}
