import { describe, expect, it } from 'vitest';
import { flagsToOptions } from './command.js';
import { parseBindAddress } from '../lib/http/server.js';
import { resolveOptions } from './options.js';

describe('operator options', () => {
  it('defaults to all namespaces, leader election, :8080 and :8081', () => {
    const o = resolveOptions({});
    expect(o).toMatchObject({ namespaces: [], leaderElect: true, metricsBindAddress: ':8080', healthProbeBindAddress: ':8081', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it('parses the comma list of namespaces and refuses an invalid one, naming the flag', () => {
    const flags = { namespaces: 'shop, ads', leaderElect: true, leaderElectionId: 'l', leaderElectionNamespace: 'sluice-system', metricsBindAddress: ':8080', healthProbeBindAddress: ':8081', workerImage: 'x', logLevel: 'info' as const, concurrency: '4', lagCheckInterval: '60', autoscaleInterval: '5' };
    expect(resolveOptions(flagsToOptions(flags)).namespaces).toEqual(['shop', 'ads']);
    expect(resolveOptions(flagsToOptions(flags)).autoscaleIntervalMs).toBe(5_000);
    expect(() => resolveOptions({ autoscaleIntervalMs: 100 })).toThrow('--autoscale-interval');
    expect(() => resolveOptions({ namespaces: ['Shop_1'] })).toThrow("--namespaces: 'Shop_1' is not a valid namespace name");
    expect(() => resolveOptions({ concurrency: 0 })).toThrow('--concurrency');
    expect(() => resolveOptions({ renewDeadlineMs: 20_000 })).toThrow('lease timings');
  });

  it('reads bind addresses as [host]:port', () => {
    expect(parseBindAddress(':8080')).toEqual({ host: undefined, port: 8080 });
    expect(parseBindAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseBindAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => parseBindAddress('8080')).toThrow('must be [host]:port');
  });
});
