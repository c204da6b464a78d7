/**
 * The job types a worker can run: the one place that lists them. A new type
 * is a folder beside churn/ and cart/ (its job, features, model binding,
 * configuration fragment) and one line here; a test registers its own with
 * `jobTypes.register`.
 */
import type { JobConfigFragment } from '../../lib/worker-config/config.js';
import type { JobDefinition, PartitionState } from '../runtime/job.js';
import { cart } from './cart/index.js';
import { churn } from './churn/index.js';

export class JobRegistry {
  private readonly byType = new Map<string, JobDefinition>();

  constructor(definitions: readonly JobDefinition[]) {
    for (const d of definitions) this.register(d);
  }

  register<S extends PartitionState, E>(definition: JobDefinition<S, E>): void {
    this.byType.set(definition.config.type, definition as JobDefinition);
  }

  /** Removes a type (a test's, after the test). */
  unregister(type: string): void {
    this.byType.delete(type);
  }

  get(type: string): JobDefinition {
    const found = this.byType.get(type);
    if (!found) throw new Error(`unknown job type '${type}': one of ${this.types().join(', ')}`);
    return found;
  }

  /** The type's definition, or undefined for a name no worker knows. */
  find(type: string): JobDefinition | undefined {
    return this.byType.get(type);
  }

  types(): string[] {
    return [...this.byType.keys()];
  }

  configs(): JobConfigFragment[] {
    return [...this.byType.values()].map((d) => d.config);
  }
}

export const jobTypes = new JobRegistry([churn as JobDefinition, cart as JobDefinition]);
