'use strict';
// A latency histogram in the buckets of loadtests/stats.py `Hist` (logarithmic, 1 % wide, values in ms at
// 0.01 ms resolution), with the exact count, sum, min and max: the driver loads `dump()` into a Hist and
// merges it with the other processes' by adding counts.

const LOG = Math.log(1.01);
const SCALE = 100;

class Hist {
  constructor() {
    this.buckets = new Map();
    this.n = 0;
    this.total = 0;
    this.lo = Infinity;
    this.hi = 0;
  }

  add(ms) {
    const v = ms > 0 ? ms : 0;
    const b = Math.floor(Math.log1p(v * SCALE) / LOG);
    this.buckets.set(b, (this.buckets.get(b) || 0) + 1);
    this.n++;
    this.total += ms;
    if (ms > this.hi) this.hi = ms;
    if (ms < this.lo) this.lo = ms;
  }

  // [{bucket: count}, n, total, lo (null when empty), hi]: Hist.load's tuple, as JSON
  dump() {
    return [Object.fromEntries(this.buckets), this.n, this.total, this.n ? this.lo : null, this.hi];
  }
}

module.exports = { Hist };
