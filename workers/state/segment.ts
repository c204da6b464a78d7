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
import { crc32 } from 'node:zlib';
import type { StateFormat, UserTable } from './table.js';

export const SEGMENT_MAGIC = Buffer.from('SLUICESG', 'latin1');
export const SEGMENT_END = Buffer.from('SLUICEND', 'latin1');
export const TRAILER_BYTES = 16;

export interface SegmentHeader {
  kind: 'base' | 'delta';
  /** Position of the segment in the partition's checkpoint history (one more than the previous). */
  seq: number;
  jobType: string;
  topic: string;
  partition: number;
  state: { name: string; version: number; features: readonly string[] };
  /** The first offset not reflected in the state as of this segment. */
  nextOffset: number;
  /** The partition's scalars (event time...) as of this segment. */
  meta: Record<string, number>;
  savedAt: number;
}

export class TornSegmentError extends Error {
  override readonly name = 'TornSegmentError';
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
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const head = new Uint8Array(12 + json.length);
    head.set(SEGMENT_MAGIC, 0);
    new DataView(head.buffer).setUint32(8, json.length, true);
    head.set(json, 12);
    this.emit(head);
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

/** Checks a whole segment file and returns its header and the byte range of its entries. */
export function verifySegment(file: Uint8Array, name: string): { header: SegmentHeader; entriesAt: number; entriesEnd: number; count: number } {
  if (file.length < 12 + TRAILER_BYTES) throw new TornSegmentError(`${name}: ${file.length} bytes, too short to be a checkpoint segment`);
  if (!Buffer.from(file.buffer, file.byteOffset, 8).equals(SEGMENT_MAGIC)) throw new TornSegmentError(`${name}: not a checkpoint segment (no SLUICESG magic)`);
  const end = file.length - TRAILER_BYTES;
  if (!Buffer.from(file.buffer, file.byteOffset + end + 8, 8).equals(SEGMENT_END)) throw new TornSegmentError(`${name}: torn (no end marker: the file was cut short)`);
  const v = new DataView(file.buffer, file.byteOffset, file.length);
  const want = v.getUint32(end + 4, true);
  const got = crc32(file.subarray(0, end)) >>> 0;
  if (want !== got) throw new TornSegmentError(`${name}: checksum mismatch (CRC-32 ${got.toString(16)}, recorded ${want.toString(16)}): the file is damaged`);
  const headerLength = v.getUint32(8, true);
  if (12 + headerLength > end) throw new TornSegmentError(`${name}: header runs past the end of the file`);
  const header = JSON.parse(Buffer.from(file.buffer, file.byteOffset + 12, headerLength).toString('utf8')) as SegmentHeader;
  return { header, entriesAt: 12 + headerLength, entriesEnd: end, count: v.getUint32(end, true) };
}

/** Applies a verified segment's entries to a table (a user's value replaces what the table held). */
export function applySegment(table: UserTable, file: Uint8Array, at: number, end: number, count: number, name: string): void {
  let p = at;
  let n = 0;
  while (p < end) {
    if (p + 2 > end) throw new TornSegmentError(`${name}: entry ${n} is cut short`);
    const idLength = file[p] | (file[p + 1] << 8);
    const valueAt = p + 2 + idLength + 4;
    if (valueAt > end) throw new TornSegmentError(`${name}: entry ${n} is cut short`);
    const q = p + 2 + idLength;
    const valueLength = (file[q] | (file[q + 1] << 8) | (file[q + 2] << 16) | (file[q + 3] << 24)) >>> 0;
    if (valueAt + valueLength > end) throw new TornSegmentError(`${name}: entry ${n} is cut short`);
    const slot = table.slotOfBytes(file, p + 2, idLength);
    table.readValue(slot, file, valueAt, valueLength);
    p = valueAt + valueLength;
    n++;
  }
  if (n !== count) throw new TornSegmentError(`${name}: ${n} entries, the trailer says ${count}`);
}

export function sameFormat(a: StateFormat, b: SegmentHeader['state']): boolean {
  return a.name === b.name && a.version === b.version && a.features.length === b.features.length && a.features.every((f, i) => f === b.features[i]);
}
