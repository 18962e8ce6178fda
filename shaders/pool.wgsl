// 2-D max/average pooling over NCHW (no padding, floor output size), their gradients as gathers
// (one invocation per input element, so no atomics), and the global-average-pool gradient.
//
// Kernel and stride are override constants: a network uses one or two pool shapes, and constant
// strides turn the per-element divisions into shifts and unroll the window loops (CPU adapters
// scalarise integer division). Grid: (column block, line block) with the line block folded over
// y and z; a line is one row of one plane, and a workgroup takes `lines` consecutive lines (many
// on CPU adapters, where each workgroup launch costs about a microsecond; one on GPUs).

override WG: u32 = 64u;
override KH: u32 = 2u;
override KW: u32 = 2u;
override SH: u32 = 2u;
override SW: u32 = 2u;

struct Params {
  planes: u32,
  h: u32, w: u32, ho: u32, wo: u32,
  scale: f32, // 1 / window size (average), 1 / (h*w) (global average)
  lines: u32, // lines per workgroup
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;  // x (forward) or dy (backward)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg_out: array<f32>;
// max_bwd: dy, then
@group(0) @binding(2) var<storage, read> arg_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Window maximum (the first one in row-major order on ties, like the reference) and its offset.
fn window_max(base: u32) -> vec2f {
  var best = src[base];
  var at = 0u;
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) {
      let v = src[base + ky * u.w + kx];
      if (v > best) {
        best = v;
        at = ky * KW + kx;
      }
    }
  }
  return vec2f(best, f32(at));
}

fn window_avg(base: u32) -> f32 {
  var acc = 0.0;
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) { acc += src[base + ky * u.w + kx]; }
  }
  return acc * u.scale;
}

#include "lib/grid.wgsl"

// This invocation's column (x) and its workgroup's lines [y, z) of planes of `rows` rows; the
// range is empty for a column past `cols`.
fn lines(wid: vec3u, lid: vec3u, nwg: vec3u, rows: u32, cols: u32) -> vec3u {
  let col = wid.x * WG + lid.x;
  let first = folded_yz(wid, nwg) * u.lines;
  return vec3u(col, first, select(first, min(first + u.lines, u.planes * rows), col < cols));
}

// Input offset of the window of output (line = plane * ho + oy, ox).
fn window_base(line: u32, ox: u32) -> u32 {
  return ((line / u.ho) * u.h + (line % u.ho) * SH) * u.w + ox * SW;
}

@compute @workgroup_size(WG)
fn max_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.ho, u.wo);
  for (var line = g.y; line < g.z; line++) { dst[line * u.wo + g.x] = window_max(window_base(line, g.x)).x; }
}

// As max_fwd, also saving the window offset of each maximum for the backward.
@compute @workgroup_size(WG)
fn max_fwd_arg(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.ho, u.wo);
  for (var line = g.y; line < g.z; line++) {
    let r = window_max(window_base(line, g.x));
    dst[line * u.wo + g.x] = r.x;
    arg_out[line * u.wo + g.x] = r.y;
  }
}

@compute @workgroup_size(WG)
fn avg_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.ho, u.wo);
  for (var line = g.y; line < g.z; line++) { dst[line * u.wo + g.x] = window_avg(window_base(line, g.x)); }
}

// Output rows (or columns) whose windows cover input coordinate v: [lo, hi).
fn covering(v: u32, k: u32, s: u32, n: u32) -> vec2u {
  let lo = select(0u, (v - k + s) / s, v >= k); // ceil((v - k + 1) / s)
  return vec2u(lo, min(n, v / s + 1u));
}

// Non-overlapping windows (stride >= kernel, fixed when the pipeline is built): the one window
// holding input (iy, ix) as (output index, offset in window), or offset KH*KW if none does.
fn only_window(plane: u32, iy: u32, ix: u32) -> vec2u {
  let oy = iy / SH;
  let ox = ix / SW;
  let ky = iy - oy * SH;
  let kx = ix - ox * SW;
  let inside = oy < u.ho && ox < u.wo && ky < KH && kx < KW;
  return select(vec2u(0u, KH * KW), vec2u((plane * u.ho + oy) * u.wo + ox, ky * KW + kx), inside);
}

// dy summed over the windows covering input (iy, ix) whose saved argmax is that input.
fn max_grad(plane: u32, iy: u32, ix: u32) -> f32 {
  if (SH >= KH && SW >= KW) {
    let w = only_window(plane, iy, ix);
    return select(0.0, src[w.x], u32(arg_in[w.x]) == w.y); // an argmax is never KH*KW
  }
  let ry = covering(iy, KH, SH, u.ho);
  let rx = covering(ix, KW, SW, u.wo);
  var acc = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
      let o = (plane * u.ho + oy) * u.wo + ox;
      if (u32(arg_in[o]) == (iy - oy * SH) * KW + (ix - ox * SW)) { acc += src[o]; }
    }
  }
  return acc;
}

fn avg_grad(plane: u32, iy: u32, ix: u32) -> f32 {
  if (SH >= KH && SW >= KW) {
    let w = only_window(plane, iy, ix);
    return select(src[w.x] * u.scale, 0.0, w.y == KH * KW);
  }
  let ry = covering(iy, KH, SH, u.ho);
  let rx = covering(ix, KW, SW, u.wo);
  var acc = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) { acc += src[(plane * u.ho + oy) * u.wo + ox]; }
  }
  return acc * u.scale;
}

// The backward entries walk input lines (line = plane * h + iy).
@compute @workgroup_size(WG)
fn max_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.h, u.w);
  for (var line = g.y; line < g.z; line++) { dx[line * u.w + g.x] = max_grad(line / u.h, line % u.h, g.x); }
}

@compute @workgroup_size(WG)
fn avg_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.h, u.w);
  for (var line = g.y; line < g.z; line++) { dst[line * u.w + g.x] = avg_grad(line / u.h, line % u.h, g.x); }
}

@compute @workgroup_size(WG)
fn gap_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = lines(wid, lid, nwg, u.h, u.w);
  for (var line = g.y; line < g.z; line++) { dst[line * u.w + g.x] = src[line / u.h] * u.scale; }
}
