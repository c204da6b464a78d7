/**
 * The checkpoint volume as the one channel between a job's workers and the
 * tasks that operate on its state (`sluice state ...`, run by the operator as
 * a pod on the same volume, or locally by `sluice snapshot` / `sluice restore`):
 *
 *   <checkpoint.dir>/.sluice/members/<id>.json          each running worker, refreshed every 2 s
 *   <checkpoint.dir>/.sluice/snapshot-requests/<n>.json  "write partition snapshots for <n>"
 *   <checkpoint.dir>/.sluice/restores/<id>.json          restores done (a one-shot is never repeated)
 *   <checkpoint.dir>/.sluice/snapshots/<n>/partitions/<p>.json, manifest.json
 *
 * Every file is written to a temporary name and renamed, so a reader sees all
 * of it or none of it.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '.sluice';
/** A member whose heartbeat is older than this is gone (SIGKILL leaves its file behind). */
export const MEMBER_STALE_MS = 10_000;
export const HEARTBEAT_MS = 2_000;

export interface ControlPaths {
  base: string;
  members: string;
  requests: string;
  restores: string;
  snapshots: string;
}

export const controlPaths = (checkpointRoot: string): ControlPaths => {
  const base = join(checkpointRoot, ROOT);
  return {
    base,
    members: join(base, 'members'),
    requests: join(base, 'snapshot-requests'),
    restores: join(base, 'restores'),
    snapshots: join(base, 'snapshots'),
  };
};

export const snapshotDir = (checkpointRoot: string, name: string): string => join(controlPaths(checkpointRoot).snapshots, name);
export const snapshotPartitionsDir = (dir: string): string => join(dir, 'partitions');
export const manifestFile = (dir: string): string => join(dir, 'manifest.json');

/** Snapshot names become directory names: the ones Kubernetes allows for object names. */
export function checkName(name: string, what = 'snapshot name'): string {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    throw new Error(`${what} '${name}' must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
  return name;
}

/** Atomic JSON write: temporary file, fsync, rename. */
export function writeJsonFile(file: string, value: unknown): number {
  const dir = file.slice(0, file.lastIndexOf('/'));
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const body = Buffer.from(JSON.stringify(value, null, 1));
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return body.length;
}

export function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}

function jsonFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface MemberInfo {
  id: string;
  pid: number;
  host: string;
  /** epoch ms of the last heartbeat */
  at: number;
  partitions: number[];
}

export function heartbeat(checkpointRoot: string, info: MemberInfo): void {
  writeJsonFile(join(controlPaths(checkpointRoot).members, `${info.id}.json`), info);
}

export function leave(checkpointRoot: string, id: string): void {
  rmSync(join(controlPaths(checkpointRoot).members, `${id}.json`), { force: true });
}

/** Workers whose heartbeat is fresh: the job is running on this volume. */
export function liveMembers(checkpointRoot: string, now = Date.now()): MemberInfo[] {
  const dir = controlPaths(checkpointRoot).members;
  const out: MemberInfo[] = [];
  for (const f of jsonFiles(dir)) {
    const m = readJsonFile<MemberInfo>(join(dir, f));
    if (m && now - m.at < MEMBER_STALE_MS) out.push(m);
  }
  return out;
}

export interface SnapshotRequest {
  name: string;
  /** epoch ms */
  requestedAt: number;
}

export function requestSnapshot(checkpointRoot: string, name: string, now = Date.now()): SnapshotRequest {
  const request = { name: checkName(name), requestedAt: now };
  writeJsonFile(join(controlPaths(checkpointRoot).requests, `${name}.json`), request);
  return request;
}

export function snapshotRequests(checkpointRoot: string): SnapshotRequest[] {
  const dir = controlPaths(checkpointRoot).requests;
  return jsonFiles(dir)
    .map((f) => readJsonFile<SnapshotRequest>(join(dir, f)))
    .filter((r): r is SnapshotRequest => r !== undefined);
}

export function endSnapshotRequest(checkpointRoot: string, name: string): void {
  rmSync(join(controlPaths(checkpointRoot).requests, `${name}.json`), { force: true });
}

/** Bytes of every file below `dir`. */
export function treeSize(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e);
    const st = statSync(p);
    total += st.isDirectory() ? treeSize(p) : st.size;
  }
  return total;
}
