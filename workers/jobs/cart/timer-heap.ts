/** A binary min-heap of (due, key): the cart job's abandonment timers, keyed by user slot. Stale entries are skipped by the caller. */
export class TimerHeap {
  private dues: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.dues.length;
  }

  push(due: number, key: number): void {
    this.dues.push(due);
    this.keys.push(key);
    let i = this.dues.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.dues[parent] <= due) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peek(): { due: number; key: number } | undefined {
    return this.dues.length ? { due: this.dues[0], key: this.keys[0] } : undefined;
  }

  pop(): { due: number; key: number } | undefined {
    const top = this.peek();
    if (!top) return undefined;
    const lastDue = this.dues.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.dues.length) {
      this.dues[0] = lastDue;
      this.keys[0] = lastKey;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(i: number): void {
    const n = this.dues.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.dues[l] < this.dues[m]) m = l;
      if (r < n && this.dues[r] < this.dues[m]) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    [this.dues[a], this.dues[b]] = [this.dues[b], this.dues[a]];
    [this.keys[a], this.keys[b]] = [this.keys[b], this.keys[a]];
  }
}
