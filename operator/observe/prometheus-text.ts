/**
 * Just enough of the Prometheus text exposition format to read a worker's
 * /metrics: the value of each series of a metric, with its labels.
 */

export interface Series {
  labels: Record<string, string>;
  value: number;
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every series of the metrics named, by name. Comments and other metrics are skipped. */
export function parseSeries(text: string, names: ReadonlySet<string>): Map<string, Series[]> {
  const out = new Map<string, Series[]>();
  for (const raw of text.split('\n')) {
    if (!raw || raw.startsWith('#')) continue;
    const m = line.exec(raw);
    if (!m || !names.has(m[1])) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value });
    out.set(m[1], list);
  }
  return out;
}

/** The sum over a metric's series, or undefined when the metric is absent. */
export const total = (series: Map<string, Series[]>, name: string): number | undefined =>
  series.get(name)?.reduce((sum, s) => sum + s.value, 0);
