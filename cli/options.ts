import { InvalidArgumentError } from 'commander';

/** Commander argument parsers that name the flag and the problem. */
export function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number >= 1, got '${value}'`);
    return n;
  };
}

export function nonNegativeNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a number >= 0, got '${value}'`);
    return n;
  };
}

export function port(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${flag} must be a TCP port (0-65535), got '${value}'`);
    return n;
  };
}

/** `host:port,host:port` → a non-empty list of broker addresses. */
export function brokerList(flag: string): (value: string) => string[] {
  return (value) => {
    const brokers = value.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = brokers.find((b) => !/^[^:\s]+:\d+$/.test(b));
    if (brokers.length === 0 || bad !== undefined) {
      throw new InvalidArgumentError(`${flag} must be host:port[,host:port...], got '${value}'`);
    }
    return brokers;
  };
}

/** `host:port` → its parts. */
export function hostPort(flag: string): (value: string) => { host: string; port: number } {
  return (value) => {
    const m = /^([^:\s]+):(\d+)$/.exec(value.trim());
    const p = m ? Number(m[2]) : NaN;
    if (!m || p < 1 || p > 65535) throw new InvalidArgumentError(`${flag} must be host:port, got '${value}'`);
    return { host: m[1]!, port: p };
  };
}

/** `30s`, `5m`, `1h` or plain seconds → seconds. */
export function duration(flag: string): (value: string) => number {
  return (value) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
    if (!m) throw new InvalidArgumentError(`${flag} must be a duration like 30s, 5m or 1h, got '${value}'`);
    const n = Number(m[1]);
    const unit = m[2] ?? 's';
    const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[unit]!;
    return n * factor;
  };
}
