/** Latency samples (ms) for percentile reports; bounded so a busy process does not grow it. */
export class LatencyStats {
  private samples: number[] = []
  constructor(private readonly max = 100_000) {}
  add(ms: number) {
    if (this.samples.length < this.max) this.samples.push(ms)
  }
  count() {
    return this.samples.length
  }
  p(q: number): number {
    if (this.samples.length === 0) return 0
    const s = [...this.samples].sort((a, b) => a - b)
    return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 1000) / 1000
  }
  reset() {
    this.samples = []
  }
}
