// Channel segments of NCHW-like tensors (batchnorm.wgsl, prelu.wgsl): element j = n*P + p of
// channel c (of C) lives at seg.base + j where seg = segment(n, ...), so a range [j0, j1) of one
// channel is walked as a few contiguous plane segments without a division per element:
//
//   for (var n = j0 / P; ; n++) {
//     let seg = segment(n, c, j0, j1, C, P);
//     if (seg.lo >= seg.hi) { break; }
//     for (var j = seg.lo + lid; j < seg.hi; j += WG) { ... x[seg.base + j] ... }
//   }

struct Segment { base: u32, lo: u32, hi: u32 }

// Sample n's part [lo, hi) of [j0, j1) of channel c; empty (lo >= hi) once n is past j1.
fn segment(n: u32, c: u32, j0: u32, j1: u32, C: u32, P: u32) -> Segment {
  return Segment(n * (C - 1u) * P + c * P, max(j0, n * P), min(j1, n * P + P));
}
