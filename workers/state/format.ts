/**
 * What a partition's saved state is: the record layout that wrote it (a name
 * and a version, bumped whenever the layout or its meaning changes) and the
 * features it was built for. Checkpoints and snapshots carry it; a worker only
 * restores state whose format it can read, and says what to do otherwise.
 * The model is not part of it: a new model over the same features keeps state.
 */
import { isDeepStrictEqual } from 'node:util';
import type { StateFormat } from './table.js';

export type { StateFormat } from './table.js';

/** Error codes a user (or the operator, through the pod's termination message) can branch on. */
export const STATE_INCOMPATIBLE = 'StateIncompatible';

export class StateIncompatibleError extends Error {
  override readonly name = 'StateIncompatibleError';
  readonly code = STATE_INCOMPATIBLE;
}

/** What to do about state that cannot be used: the same words in logs, /readyz, conditions and docs. */
export const INCOMPATIBLE_REMEDY =
  'restore a snapshot taken by a compatible version (spec.restore.fromSnapshot), ' +
  'or drop the state and replay the topic from its retention (spec.restore: {id: <new id>, offsets: {reset: earliest}, state: drop}); ' +
  'locally: sluice restore -f <job.yaml> --snapshot <name>, or --offsets earliest --state drop';

/** Undefined when `saved` state can be used by a job of format `current`; otherwise why not. */
export function incompatibility(saved: StateFormat, current: StateFormat): string | undefined {
  if (saved.name !== current.name) return `it is state of '${saved.name}', this job keeps '${current.name}'`;
  if (saved.version !== current.version) return `its state format is ${saved.name} v${saved.version}, this worker reads v${current.version}`;
  if (!isDeepStrictEqual([...saved.features], [...current.features])) {
    const gone = saved.features.filter((f) => !current.features.includes(f));
    const added = current.features.filter((f) => !saved.features.includes(f));
    const parts = [
      added.length ? `this job needs features the state lacks: ${added.join(', ')}` : '',
      gone.length ? `the state holds features this job does not have: ${gone.join(', ')}` : '',
    ].filter(Boolean);
    return `it was built for other features (${parts.join('; ') || 'the same names in another order'})`;
  }
  return undefined;
}

/** Throws StateIncompatibleError naming `what` (a checkpoint file, a snapshot) and what to do. */
export function assertCompatible(what: string, saved: StateFormat, current: StateFormat): void {
  const why = incompatibility(saved, current);
  if (why) throw new StateIncompatibleError(`${STATE_INCOMPATIBLE}: ${what} cannot be used: ${why}. Nothing was started from zero. To go on: ${INCOMPATIBLE_REMEDY}`);
}

export const describeFormat = (f: StateFormat): string => `${f.name} v${f.version} (${f.features.length} features)`;
