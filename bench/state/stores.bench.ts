/**
 * The embedded stores a disk-backed worker state could live in, measured on
 * the access pattern it has: fixed-size records (churn's 208 bytes) keyed by
 * a dense user slot, loaded once, then random reads and batched writes.
 *   npx tsx bench/state/stores.bench.ts [--records 2000000] [--dir /tmp]
 * better-sqlite3 is measured when installed (npm install --no-save better-sqlite3@12).
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { open } from 'lmdb';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const N = Number(arg('--records', '2000000'));
const ROOT = arg('--dir', '/tmp');
const VALUE = 208;
const READS = 500_000;
const BATCH = 1_000;

interface Store {
  name: string;
  putBatch(keys: Uint32Array, values: Uint8Array[]): void;
  get(key: number): Uint8Array | undefined;
  close(): void;
}

function lmdbStore(dir: string): Store {
  const db = open({ path: join(dir, 'lmdb'), keyEncoding: 'uint32', encoding: 'binary', noSync: true, compression: false });
  return {
    name: 'lmdb (lmdb-js 3)',
    putBatch(keys, values) {
      db.transactionSync(() => {
        for (let i = 0; i < keys.length; i++) db.putSync(keys[i], values[i]);
      });
    },
    get: (key) => db.getBinaryFast(key),
    close: () => void db.close(),
  };
}

/** No store at all: a file of fixed-size records at slot × size, read and written in place (pread / pwrite). */
function fileStore(dir: string): Store {
  const fd = openSync(join(dir, 'records'), 'w+');
  const out = new Uint8Array(VALUE);
  return {
    name: 'flat file (pread/pwrite)',
    putBatch(keys, values) {
      for (let i = 0; i < keys.length; i++) writeSync(fd, values[i], 0, VALUE, keys[i] * VALUE);
    },
    get: (key) => (readSync(fd, out, 0, VALUE, key * VALUE) === VALUE ? out : undefined),
    close: () => closeSync(fd),
  };
}

function sqliteStore(dir: string): Store | undefined {
  let Database: new (path: string) => { pragma(s: string): unknown; exec(s: string): void; prepare(s: string): { run(...a: unknown[]): void; get(...a: unknown[]): { v: Uint8Array } | undefined; raw(): unknown }; transaction(f: () => void): () => void; close(): void };
  try {
    Database = createRequire(import.meta.url)('better-sqlite3');
  } catch {
    return undefined;
  }
  const db = new Database(join(dir, 'state.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.exec('CREATE TABLE IF NOT EXISTS s (k INTEGER PRIMARY KEY, v BLOB NOT NULL)');
  const put = db.prepare('INSERT OR REPLACE INTO s (k, v) VALUES (?, ?)');
  const get = db.prepare('SELECT v FROM s WHERE k = ?');
  return {
    name: 'sqlite (better-sqlite3 12)',
    putBatch(keys, values) {
      db.transaction(() => {
        for (let i = 0; i < keys.length; i++) put.run(keys[i], values[i]);
      })();
    },
    get: (key) => get.get(key)?.v,
    close: () => db.close(),
  };
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const s = statSync(join(dir, f));
    if (s.isFile()) n += s.size;
  }
  return n;
}

function measure(make: (dir: string) => Store | undefined): void {
  const dir = mkdtempSync(join(ROOT, 'sluice-stores-'));
  const store = make(dir);
  if (!store) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const value = new Uint8Array(VALUE).fill(7);
  const keys = new Uint32Array(BATCH);
  const values = new Array<Uint8Array>(BATCH).fill(value);
  let t = performance.now();
  for (let k = 0; k < N; k += BATCH) {
    for (let i = 0; i < BATCH; i++) keys[i] = k + i;
    store.putBatch(keys, values);
  }
  const loadS = (performance.now() - t) / 1000;
  let x = 12345;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % N;
  t = performance.now();
  let bytes = 0;
  for (let i = 0; i < READS; i++) bytes += store.get(next())?.length ?? 0;
  const readUs = ((performance.now() - t) * 1000) / READS;
  if (bytes !== READS * VALUE) throw new Error(`${store.name}: read ${bytes} bytes`);
  t = performance.now();
  for (let r = 0; r < READS; r += BATCH) {
    for (let i = 0; i < BATCH; i++) {
      keys[i] = next();
      store.get(keys[i]);
    }
    store.putBatch(keys, values);
  }
  const rmwUs = ((performance.now() - t) * 1000) / READS;
  store.close();
  console.log(`${store.name.padEnd(28)} load ${Math.round(N / loadS).toLocaleString('en-US')} records/s; random get ${readUs.toFixed(2)} us; get + batched put ${rmwUs.toFixed(2)} us; ${(dirBytes(dir) / N).toFixed(0)} B/record on disk`);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`embedded stores, ${N.toLocaleString('en-US')} records of ${VALUE} bytes keyed by a 32-bit slot, node ${process.version}`);
const only = arg('--stores', 'lmdb,sqlite,file').split(',');
if (only.includes('lmdb')) measure(lmdbStore);
if (only.includes('sqlite')) measure(sqliteStore);
if (only.includes('file')) measure(fileStore);
