export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Day number since the epoch (UTC), the key of a sliding-window bucket. */
export function dayOf(t: number): number {
  return Math.floor(t / DAY_MS);
}
