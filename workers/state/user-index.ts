/**
 * The user ids of one partition, each mapped to a dense slot number (0, 1,
 * 2... in order of first appearance) without a JavaScript string or Map entry
 * per user: ids live as UTF-8 bytes in an append-only arena, and an
 * open-addressing hash table over typed arrays maps an id to its slot. About
 * 12 bytes per user plus the id's bytes, where a Map<string, ...> and the id
 * strings cost about 80. Slots are never reused: users are not deleted.
 *
 * The table grows by 1.5 and 4/3 in turn (1024, 1536, 2048, 3072...), not by
 * doubling, so it is 50% to 75% full rather than 37% to 75%; a cell is chosen
 * from the hash's high bits (h × size / 2^32), its tag from the low byte.
 */

/** Arena chunks of 256 KiB (a ref is chunk << 18 | offset: 4 GiB of ids at most). */
const CHUNK_SHIFT = 18;
const CHUNK = 1 << CHUNK_SHIFT;
const REF_SHIFT = 14;
const REF_PAGE = 1 << REF_SHIFT;
const REF_MASK = REF_PAGE - 1;
const EMPTY = 0;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-8 bytes of an id (computed from char codes for ASCII). */
function hashBytes(src: Uint8Array, off: number, len: number): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ src[off + i], FNV_PRIME);
  return mix(h);
}

/** Murmur3's finaliser: FNV's low bits alone cluster for ids that differ in their last characters. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The ids of an index as another thread reads them (the checkpoint encoder's):
 * the slot refs and the arena, on shared memory. Ids are written once and
 * never change, so a slot that existed when this was taken reads the same
 * there as here without any copy.
 */
export interface IdSource {
  refs: Uint32Array[];
  chunks: Uint8Array[];
}

const sharedU8 = (n: number): Uint8Array => new Uint8Array(new SharedArrayBuffer(n));
const sharedU32 = (n: number): Uint32Array => new Uint32Array(new SharedArrayBuffer(n * 4));

/** Bytes of a slot's id. */
export function idLengthAt(src: IdSource, slot: number): number {
  const ref = src.refs[slot >>> REF_SHIFT][slot & REF_MASK];
  const chunk = src.chunks[ref >>> CHUNK_SHIFT];
  const at = ref & (CHUNK - 1);
  const n = chunk[at];
  return n & 0x80 ? (n & 0x7f) | (chunk[at + 1] << 7) : n;
}

/** Writes a slot's id as a u16 length and its bytes at out[at...] (no allocation: checkpoints do this per user); returns the bytes written. */
export function writeIdAt(src: IdSource, slot: number, out: Uint8Array, at: number): number {
  const ref = src.refs[slot >>> REF_SHIFT][slot & REF_MASK];
  const chunk = src.chunks[ref >>> CHUNK_SHIFT];
  let from = ref & (CHUNK - 1);
  let n = chunk[from++];
  if (n & 0x80) n = (n & 0x7f) | (chunk[from++] << 7);
  out[at] = n & 0xff;
  out[at + 1] = n >>> 8;
  if (n <= 32) for (let i = 0; i < n; i++) out[at + 2 + i] = chunk[from + i];
  else out.set(chunk.subarray(from, from + n), at + 2);
  return n + 2;
}

export class UserIndex {
  /** Slot + 1 per table cell, EMPTY for a free cell; beside it the low byte of the id's hash, to skip most comparisons. */
  private table = new Int32Array(1 << 10);
  private tags = new Uint8Array(1 << 10);
  /**
   * Per slot, in pages of REF_PAGE: where its id starts in the arena (chunk << CHUNK_SHIFT | offset): a length byte
   * (two if 128 or more), then UTF-8. Pages, not one growing array: no copy, no unused half.
   * Refs and arena are shared memory, so that the checkpoint encoder's thread reads ids where they are.
   */
  private readonly refs: Uint32Array[] = [sharedU32(256)];
  /** Arena chunks: the first ones small (a partition with few users stays small), then CHUNK each. */
  private readonly chunks: Uint8Array[] = [sharedU8(4096)];
  /** The two above, as the checkpoint encoder's thread is given them. */
  private readonly ids: IdSource = { refs: this.refs, chunks: this.chunks };
  private used = 0;
  private count = 0;
  /** Scratch for the UTF-8 bytes of a non-ASCII id. */
  private scratch = new Uint8Array(1024);

  get size(): number {
    return this.count;
  }

  /** Bytes held (for sizing and the benchmark). */
  get bytes(): number {
    return this.table.byteLength + this.tags.byteLength + this.refs.reduce((n, r) => n + r.byteLength, 0) + this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** The slot of `id`, or -1. */
  find(id: string): number {
    if (isAscii(id)) return this.lookup(hashAscii(id), id, null, 0, id.length);
    const n = this.utf8(id);
    return this.lookup(hashBytes(this.scratch, 0, n), id, this.scratch, 0, n);
  }

  /** The slot of `id`, added (as the next slot) when new. */
  slot(id: string): number {
    if (isAscii(id)) {
      const h = hashAscii(id);
      const found = this.lookup(h, id, null, 0, id.length);
      if (found >= 0) return found;
      const slot = this.append(h, id.length);
      const [chunk, at] = this.bytesAt(slot);
      for (let i = 0; i < id.length; i++) chunk[at + i] = id.charCodeAt(i);
      this.link(slot, h);
      return slot;
    }
    const n = this.utf8(id);
    return this.slotOfBytes(this.scratch, 0, n);
  }

  /** The slot of the id given as UTF-8 bytes (a checkpoint's), added when new. */
  slotOfBytes(src: Uint8Array, off: number, len: number): number {
    const h = hashBytes(src, off, len);
    const found = this.lookup(h, '', src, off, len);
    if (found >= 0) return found;
    const slot = this.append(h, len);
    const [chunk, at] = this.bytesAt(slot);
    chunk.set(src.subarray(off, off + len), at);
    this.link(slot, h);
    return slot;
  }

  /** The id of a slot, as a string. */
  id(slot: number): string {
    const [chunk, at, n] = this.bytesAt(slot);
    let ascii = true;
    for (let i = 0; i < n; i++) if (chunk[at + i] > 0x7f) ascii = false;
    if (!ascii) return decoder.decode(chunk.subarray(at, at + n));
    // Short ASCII ids: building the string from char codes beats the decoder's call overhead.
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(chunk[at + i]);
    return s;
  }

  /** The UTF-8 bytes of a slot's id (a view into the arena, valid as long as the index). */
  idBytes(slot: number): Uint8Array {
    const [chunk, at, n] = this.bytesAt(slot);
    return chunk.subarray(at, at + n);
  }

  /** Writes a slot's id as a u16 length and its bytes at out[at...]; returns the bytes written. */
  writeId(slot: number, out: Uint8Array, at: number): number {
    return writeIdAt(this.ids, slot, out, at);
  }

  /** Bytes of a slot's id. */
  idLength(slot: number): number {
    return idLengthAt(this.ids, slot);
  }

  /** The ids as of now, for another thread (valid there for every slot that exists now). */
  shared(): IdSource {
    return { refs: [...this.refs], chunks: [...this.chunks] };
  }

  /** The chunk, start and length of a slot's id bytes. */
  private bytesAt(slot: number): [Uint8Array, number, number] {
    const ref = this.refs[slot >>> REF_SHIFT][slot & REF_MASK];
    const chunk = this.chunks[ref >>> CHUNK_SHIFT];
    let at = ref & (CHUNK - 1);
    let n = chunk[at++];
    if (n & 0x80) n = (n & 0x7f) | (chunk[at++] << 7);
    return [chunk, at, n];
  }

  /** `bytes` null: compare with the ASCII string `id`. */
  private lookup(h: number, id: string, bytes: Uint8Array | null, off: number, len: number): number {
    const tag = h & 0xff;
    const size = this.table.length;
    for (let cell = cellOf(h, size); ; cell = cell + 1 === size ? 0 : cell + 1) {
      const v = this.table[cell];
      if (v === EMPTY) return -1;
      if (this.tags[cell] !== tag) continue;
      const s = v - 1;
      // Inline rather than bytesAt(): no tuple on the hottest path.
      const ref = this.refs[s >>> REF_SHIFT][s & REF_MASK];
      const chunk = this.chunks[ref >>> CHUNK_SHIFT];
      let at = ref & (CHUNK - 1);
      let n = chunk[at++];
      if (n & 0x80) n = (n & 0x7f) | (chunk[at++] << 7);
      if (n !== len) continue;
      if (bytes ? sameBytes(chunk, at, bytes, off, len) : sameAscii(chunk, at, id)) return s;
    }
  }

  private utf8(id: string): number {
    if (this.scratch.length < id.length * 3) this.scratch = new Uint8Array(id.length * 3);
    return encoder.encodeInto(id, this.scratch).written;
  }

  /** Takes the next slot for an id of `len` bytes: arena space (the length written) and a column entry; the caller writes the bytes, then links. */
  private append(_h: number, len: number): number {
    if (len > 0x7fff) throw new Error(`user id of ${len} bytes: ids are limited to 32767 bytes`);
    const need = len + (len < 0x80 ? 1 : 2);
    let last = this.chunks.length - 1;
    if (this.used + need > this.chunks[last].length) {
      this.chunks.push(sharedU8(Math.min(CHUNK, this.chunks[last].length * 4)));
      last++;
      this.used = 0;
    }
    const slot = this.count++;
    const page = slot >>> REF_SHIFT;
    if (page === this.refs.length) this.refs.push(sharedU32(REF_PAGE));
    else if ((slot & REF_MASK) === this.refs[page].length) {
      // The first page starts small (a partition with few users).
      const bigger = sharedU32(Math.min(REF_PAGE, this.refs[page].length * 4));
      bigger.set(this.refs[page]);
      this.refs[page] = bigger;
    }
    this.refs[page][slot & REF_MASK] = ((last << CHUNK_SHIFT) | this.used) >>> 0;
    const chunk = this.chunks[last];
    if (len < 0x80) chunk[this.used] = len;
    else {
      chunk[this.used] = (len & 0x7f) | 0x80;
      chunk[this.used + 1] = len >>> 7;
    }
    this.used += need;
    return slot;
  }

  /** Enters a slot whose id bytes are written into the table (growing it first when three quarters full). */
  private link(slot: number, h: number): void {
    if (this.count * 4 > this.table.length * 3) this.rehash();
    else this.place(slot, h);
  }

  private place(slot: number, h: number): void {
    const size = this.table.length;
    let cell = cellOf(h, size);
    while (this.table[cell] !== EMPTY) cell = cell + 1 === size ? 0 : cell + 1;
    this.table[cell] = slot + 1;
    this.tags[cell] = h & 0xff;
  }

  private rehash(): void {
    const size = this.table.length;
    // 2^k grows to 3 * 2^(k-1), which grows to 2^(k+1).
    this.table = new Int32Array((size & (size - 1)) === 0 ? size + size / 2 : (size / 3) * 4);
    this.tags = new Uint8Array(this.table.length);
    for (let s = 0; s < this.count; s++) {
      const [chunk, at, n] = this.bytesAt(s);
      this.place(s, hashBytes(chunk, at, n));
    }
  }
}

/** The table cell of a hash: its high bits scaled to the size (exact in doubles for tables under 2^21 cells, within the table beyond). */
function cellOf(h: number, size: number): number {
  return Math.floor((h / 4294967296) * size);
}

function sameAscii(chunk: Uint8Array, at: number, id: string): boolean {
  // From the end: ids of one shop tend to share their beginning.
  for (let i = id.length - 1; i >= 0; i--) if (chunk[at + i] !== id.charCodeAt(i)) return false;
  return true;
}

function sameBytes(chunk: Uint8Array, at: number, src: Uint8Array, off: number, len: number): boolean {
  for (let i = len - 1; i >= 0; i--) if (chunk[at + i] !== src[off + i]) return false;
  return true;
}

function isAscii(id: string): boolean {
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) > 0x7f) return false;
  return true;
}

function hashAscii(id: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), FNV_PRIME);
  return mix(h);
}

/** A 64-bit fingerprint of a string as two 32-bit halves (FNV-1a and a second, independent mix). */
export function fingerprint(s: string): [number, number] {
  let a = FNV_OFFSET;
  let b = 0x9e3779b9;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ s.length, 0x85ebca6b);
  b ^= b >>> 13;
  return [a >>> 0, b >>> 0];
}
