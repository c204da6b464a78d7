/** Figures as people read them in reasons and Events: 38k/s, 1.2M, 90 s. */

/** 950, 3.8k, 38k, 1.2M. */
export function amount(n: number): string {
  const a = Math.abs(Math.round(n));
  if (a < 1_000) return String(Math.round(n));
  if (a < 10_000) return `${trim((n / 1_000).toFixed(1))}k`;
  if (a < 1_000_000) return `${Math.round(n / 1_000)}k`;
  if (a < 10_000_000) return `${trim((n / 1_000_000).toFixed(1))}M`;
  return `${Math.round(n / 1_000_000)}M`;
}

const trim = (s: string): string => s.replace(/\.0$/, '');

export const rate = (perSecond: number): string => `${amount(perSecond)}/s`;

export const seconds = (s: number): string => `${s < 10 ? trim(s.toFixed(1)) : Math.round(s)} s`;

export const workers = (n: number): string => `${n} worker${n === 1 ? '' : 's'}`;

/** Two significant digits, for status fields that should not change on every look. */
export function rounded(n: number): number {
  if (!Number.isFinite(n) || n === 0) return 0;
  const digits = Math.floor(Math.log10(Math.abs(n))) + 1;
  const scale = 10 ** Math.max(0, digits - 2);
  return Math.round(n / scale) * scale;
}
