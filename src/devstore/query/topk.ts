// Bounded top-k selection: keeps the k smallest items under `cmp` in a binary max-heap, so
// ORDER BY ... with TOP k or OFFSET/LIMIT costs O(n log k) time and O(k) memory instead of a full sort.

export class TopK<T> {
  private readonly heap: T[] = [];

  constructor(
    private readonly k: number,
    private readonly cmp: (a: T, b: T) => number,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** True when push(item) would keep the item (cheap pre-check before copying it). */
  wouldAccept(item: T): boolean {
    if (this.k <= 0) return false;
    return this.heap.length < this.k || this.cmp(item, this.heap[0]) < 0;
  }

  push(item: T): void {
    const h = this.heap;
    if (this.k <= 0) return;
    if (h.length < this.k) {
      h.push(item);
      this.up(h.length - 1);
    } else if (this.cmp(item, h[0]) < 0) {
      h[0] = item;
      this.down(0);
    }
  }

  /** The kept items, smallest first. */
  sorted(): T[] {
    return [...this.heap].sort(this.cmp);
  }

  private up(i: number): void {
    const h = this.heap;
    const x = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.cmp(h[p], x) >= 0) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = x;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const x = h[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.cmp(h[r], h[l]) > 0 ? r : l;
      if (this.cmp(h[c], x) <= 0) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = x;
  }
}
