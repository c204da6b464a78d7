/**
 * Checkpoint segment files: a base (every user of a partition) or a delta
 * (the users changed since the previous segment), each a self-checking file.
 * The format is documented in docs/checkpoints.md:
 *
 *   "SLUICESG"  u32 header length  header (JSON, UTF-8)
 *   entries:    u16 id length, id (UTF-8), u32 value length, value (the job's record encoding)
 *   trailer:    u32 entry count, u32 CRC-32 of every byte before the trailer, "SLUICEND"
 *
 * All integers little-endian. A file that is short, lacks either magic, or
 * whose CRC or entry count does not match is torn and is never applied.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { StateFormat, UserTable } from './table.js';

export const SEGMENT_MAGIC = Buffer.from('SLUICESG', 'latin1');
export const SEGMENT_END = Buffer.from('SLUICEND', 'latin1');
export const TRAILER_BYTES = 16;

/** What a segment's header and a manifest both say of the point of the partition's history they stand for. */
export interface CheckpointPoint {
  /** Position in the partition's checkpoint history: a segment's is one more than the previous one's, a manifest's its last segment's. */
  seq: number;
  jobType: string;
  topic: string;
  partition: number;
  state: { name: string; version: number; features: readonly string[] };
  /** The first offset not reflected in the state (a manifest: as of its chain's last segment). */
  nextOffset: number;
  savedAt: number;
}

export interface SegmentHeader extends CheckpointPoint {
  kind: 'base' | 'delta';
  /** The partition's scalars (event time...) as of this segment. */
  meta: Record<string, number>;
}

export class TornSegmentError extends Error {
  override readonly name = 'TornSegmentError';
}

/** The bytes of a segment before its entries: the magic, the header's length and the header. */
export function segmentHead(header: SegmentHeader): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = new Uint8Array(12 + json.length);
  head.set(SEGMENT_MAGIC, 0);
  new DataView(head.buffer).setUint32(8, json.length, true);
  head.set(json, 12);
  return head;
}

/** Builds a segment in chunks: the header, then entries (in any order), then the trailer. */
export class SegmentEncoder {
  private chunk: Uint8Array;
  private pos = 0;
  private crc = 0;
  private count = 0;
  /** Chunks ready to be written, in order. */
  readonly ready: Uint8Array[] = [];
  bytes = 0;

  constructor(
    private readonly table: UserTable,
    header: SegmentHeader,
    private readonly chunkBytes = 1 << 20,
  ) {
    this.chunk = new Uint8Array(chunkBytes);
    this.emit(segmentHead(header));
  }

  get entries(): number {
    return this.count;
  }

  /** Appends a user's id and current value (allocating nothing: this runs once per user). */
  add(slot: number): void {
    const value = this.table.valueBytes(slot);
    const need = 6 + this.table.index.idLength(slot) + value;
    if (this.pos + need > this.chunk.length) this.flush(need);
    const c = this.chunk;
    const p = this.pos + this.table.index.writeId(slot, c, this.pos);
    c[p] = value & 0xff;
    c[p + 1] = (value >>> 8) & 0xff;
    c[p + 2] = (value >>> 16) & 0xff;
    c[p + 3] = value >>> 24;
    this.table.writeValue(slot, c, p + 4);
    this.pos = p + 4 + value;
    this.count++;
  }

  /** Appends a user's id and a value copied earlier (`len` bytes of writeValue's output at src[at...]). */
  addCopied(slot: number, src: Uint8Array, at: number, len: number): void {
    const need = 6 + this.table.index.idLength(slot) + len;
    if (this.pos + need > this.chunk.length) this.flush(need);
    const c = this.chunk;
    const p = this.pos + this.table.index.writeId(slot, c, this.pos);
    new DataView(c.buffer, c.byteOffset).setUint32(p, len, true);
    c.set(src.subarray(at, at + len), p + 4);
    this.pos = p + 4 + len;
    this.count++;
  }

  /** Closes the segment: the last chunk and the trailer go to `ready`. */
  finish(): void {
    this.flush(0);
    const trailer = new Uint8Array(TRAILER_BYTES);
    const v = new DataView(trailer.buffer);
    v.setUint32(0, this.count, true);
    // The CRC covers everything before the trailer; the count is checked by parsing.
    v.setUint32(4, this.crc >>> 0, true);
    trailer.set(SEGMENT_END, 8);
    this.ready.push(trailer);
    this.bytes += trailer.length;
  }

  /** Hands out the chunks ready so far. */
  take(): Uint8Array[] {
    return this.ready.splice(0);
  }

  /** Chunks written out: their memory is reused for the next ones (fewer garbage collections during a base). */
  recycle(chunks: Uint8Array[]): void {
    for (const c of chunks) if (c.byteOffset === 0 && c.buffer.byteLength === this.chunkBytes && this.spare.length < 4) this.spare.push(new Uint8Array(c.buffer));
  }

  private readonly spare: Uint8Array[] = [];

  private flush(need: number): void {
    if (this.pos > 0) this.emit(this.chunk.subarray(0, this.pos));
    this.chunk = need <= this.chunkBytes ? (this.spare.pop() ?? new Uint8Array(this.chunkBytes)) : new Uint8Array(need);
    this.pos = 0;
  }

  private emit(bytes: Uint8Array): void {
    this.crc = crc32(bytes, this.crc);
    this.ready.push(bytes);
    this.bytes += bytes.length;
  }
}

/** Bytes read at a time when a segment file is restored: a base of millions of users is never held whole in memory. */
const READ_CHUNK = 4 << 20;
/** No entry is larger (a 32 KiB id and a value well below this): a length past it is damage. */
const MAX_ENTRY = 1 << 24;

/**
 * Reads a segment file and applies its entries to `table` as they are read,
 * in chunks (memory stays a few MiB whatever the file's size), computing the
 * CRC-32 on the way. `accept` sees the header before any entry is applied and
 * throws to refuse the file. A file that is short, lacks either magic, or
 * whose checksum or entry count does not match throws TornSegmentError: the
 * table may then hold part of it and must be discarded.
 */
export function readSegmentFile(path: string, name: string, table: UserTable, accept?: (h: SegmentHeader) => void, chunkBytes = READ_CHUNK): { header: SegmentHeader; count: number } {
  const fd = openSync(path, 'r');
  try {
    const frame = readFrame(fd, name);
    let crc = crc32(frame.json, crc32(frame.head));
    let header: SegmentHeader | undefined;
    let failure: unknown;
    try {
      header = JSON.parse(frame.json.toString('utf8')) as SegmentHeader;
      accept?.(header);
    } catch (err) {
      failure = err;
    }
    const entries = new EntryReader(Math.min(chunkBytes, frame.end - frame.entriesAt), name);
    // After a failure the rest is still read: a checksum mismatch names the cause better than a garbled entry.
    for (let pos = frame.entriesAt; pos < frame.end; ) {
      const into = entries.space(frame.end - pos);
      readAt(fd, into, into.length, pos);
      crc = crc32(into, crc);
      pos += into.length;
      entries.added(into.length);
      if (failure !== undefined) entries.discard();
      else {
        try {
          entries.apply(table, pos >= frame.end);
        } catch (err) {
          failure = err;
          entries.discard();
        }
      }
    }
    if (crc >>> 0 !== frame.want) throw new TornSegmentError(`${name}: checksum mismatch (CRC-32 ${(crc >>> 0).toString(16)}, recorded ${frame.want.toString(16)}): the file is damaged`);
    if (failure !== undefined) throw failure;
    if (entries.count !== frame.count) throw new TornSegmentError(`${name}: ${entries.count} entries, the trailer says ${frame.count}`);
    return { header: header!, count: frame.count };
  } finally {
    closeSync(fd);
  }
}

/** A segment's magic, header and trailer, checked; where its entries are. */
function readFrame(fd: number, name: string): { head: Buffer; json: Buffer; entriesAt: number; end: number; count: number; want: number } {
  const size = fstatSync(fd).size;
  if (size < 12 + TRAILER_BYTES) throw new TornSegmentError(`${name}: ${size} bytes, too short to be a checkpoint segment`);
  const head = Buffer.alloc(12);
  readAt(fd, head, 12, 0);
  if (!head.subarray(0, 8).equals(SEGMENT_MAGIC)) throw new TornSegmentError(`${name}: not a checkpoint segment (no SLUICESG magic)`);
  const end = size - TRAILER_BYTES;
  const trailer = Buffer.alloc(TRAILER_BYTES);
  readAt(fd, trailer, TRAILER_BYTES, end);
  if (!trailer.subarray(8).equals(SEGMENT_END)) throw new TornSegmentError(`${name}: torn (no end marker: the file was cut short)`);
  const headerLength = head.readUInt32LE(8);
  if (12 + headerLength > end) throw new TornSegmentError(`${name}: header runs past the end of the file`);
  const json = Buffer.alloc(headerLength);
  readAt(fd, json, headerLength, 12);
  return { head, json, entriesAt: 12 + headerLength, end, count: trailer.readUInt32LE(0), want: trailer.readUInt32LE(4) };
}

/** The entries of a segment as its chunks arrive: applies each whole one, keeps a partial one for the next chunk. */
class EntryReader {
  private buf: Buffer;
  /** buf[at, filled) is read and not yet applied. */
  private at = 0;
  private filled = 0;
  count = 0;

  constructor(
    chunkBytes: number,
    private readonly name: string,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(1, chunkBytes));
  }

  /** Where the next bytes of the file go (what is kept moved to the front first), at most `max` of them. */
  space(max: number): Buffer {
    if (this.at > 0) {
      this.buf.copyWithin(0, this.at, this.filled);
      this.filled -= this.at;
      this.at = 0;
    }
    return this.buf.subarray(this.filled, Math.min(this.buf.length, this.filled + max));
  }

  added(n: number): void {
    this.filled += n;
  }

  discard(): void {
    this.at = this.filled;
  }

  /** Applies every whole entry read so far; `final`: the file has no more bytes. */
  apply(table: UserTable, final: boolean): void {
    const buf = this.buf;
    for (let left = this.filled - this.at; left > 0; left = this.filled - this.at) {
      const need = this.needed(left);
      if (need > MAX_ENTRY) throw new TornSegmentError(`${this.name}: entry ${this.count} of ${need} bytes`);
      if (left < need) {
        if (final) throw new TornSegmentError(`${this.name}: entry ${this.count} is cut short`);
        if (need > buf.length) this.grow(need);
        return;
      }
      const idLength = buf[this.at] | (buf[this.at + 1] << 8);
      table.readValue(table.slotOfBytes(buf, this.at + 2, idLength), buf, this.at + 6 + idLength, need - 6 - idLength);
      this.at += need;
      this.count++;
    }
  }

  /** Bytes of the entry at `at`, as far as known from the `left` bytes read: its lengths' first, then the whole. */
  private needed(left: number): number {
    if (left < 2) return 2;
    const b = this.buf;
    const idLength = b[this.at] | (b[this.at + 1] << 8);
    if (left < 6 + idLength) return 6 + idLength;
    const q = this.at + 2 + idLength;
    return 6 + idLength + ((b[q] | (b[q + 1] << 8) | (b[q + 2] << 16) | (b[q + 3] << 24)) >>> 0);
  }

  private grow(size: number): void {
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, this.at, this.filled);
    this.filled -= this.at;
    this.at = 0;
    this.buf = bigger;
  }
}

function readAt(fd: number, into: Uint8Array, n: number, position: number): void {
  let done = 0;
  while (done < n) {
    const got = readSync(fd, into, done, n - done, position + done);
    if (got === 0) throw new TornSegmentError(`file ends at ${position + done}, ${n - done} more bytes expected`);
    done += got;
  }
}

export function sameFormat(a: StateFormat, b: SegmentHeader['state']): boolean {
  return a.name === b.name && a.version === b.version && a.features.length === b.features.length && a.features.every((f, i) => f === b.features[i]);
}
