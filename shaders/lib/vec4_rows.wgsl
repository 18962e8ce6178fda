// Named vec4 accumulators for the vec4-row kernels (conv_direct.wgsl `conv_rows`, conv2d_wgrad.wgsl
// `wgrad_nhwc4`): 4 channels x up to 8 columns per Row. Its members are named, not an array, because
// SwiftShader keeps an array indexed inside a loop in memory (about 5x slower there).

struct Row { p0: vec4<f32>, p1: vec4<f32>, p2: vec4<f32>, p3: vec4<f32>, p4: vec4<f32>, p5: vec4<f32>, p6: vec4<f32>, p7: vec4<f32> }

// a += w (4 channels) x each of the 8 columns in lo, hi; with `wide` false only lo's 4 (the
// callers pass an override comparison, so the branch folds away).
fn rowMac(a: ptr<function, Row>, w: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>, wide: bool) {
  (*a).p0 = fma(w, vec4(lo.x), (*a).p0);
  (*a).p1 = fma(w, vec4(lo.y), (*a).p1);
  (*a).p2 = fma(w, vec4(lo.z), (*a).p2);
  (*a).p3 = fma(w, vec4(lo.w), (*a).p3);
  if (wide) {
    (*a).p4 = fma(w, vec4(hi.x), (*a).p4);
    (*a).p5 = fma(w, vec4(hi.y), (*a).p5);
    (*a).p6 = fma(w, vec4(hi.z), (*a).p6);
    (*a).p7 = fma(w, vec4(hi.w), (*a).p7);
  }
}

// The 8 columns of a Row, to index at the end (outside the loops).
fn rowColumns(a: Row) -> array<vec4<f32>, 8> {
  return array(a.p0, a.p1, a.p2, a.p3, a.p4, a.p5, a.p6, a.p7);
}
