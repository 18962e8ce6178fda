// The inner step of a workgroup-tiled GEMM (conv_direct.wgsl convTiled, conv2d_wgrad.wgsl wgrad_tiled):
// each invocation of a WG_X x WG_Y workgroup accumulates a TM x TN register tile from BK-deep
// slices staged in workgroup memory, As[k][BM] and Bs[k][BN].
// The including shader declares overrides WG_X, WG_Y, TM, TN, BK, the arrays As and Bs, and consts
// TILE_M >= TM and TILE_N >= TN (the register tile's fixed size).

alias Tile = array<array<f32, TILE_N>, TILE_M>;

// Derived from the tiling (the host never sets them): the staged slices' widths, and how many
// invocations share the staging (each writes elements stage_lane(lid) + k*NT).
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;
override NT: u32 = WG_X * WG_Y;

fn stage_lane(lid: vec3u) -> u32 {
  return lid.y * WG_X + lid.x;
}

// acc += the staged slices' product for this invocation's rows lid.y*TM + i and columns
// lid.x + j*WG_X. Call in uniform control flow once both slices are written; it waits for every
// invocation before reading and again before returning, so the caller may stage the next slices.
fn mma_staged(acc: ptr<function, Tile>, lid: vec3u) {
  workgroupBarrier();
  for (var kk = 0u; kk < BK; kk++) {
    var a: array<f32, TILE_M>;
    var b: array<f32, TILE_N>;
    for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + lid.y * TM + i]; }
    for (var j = 0u; j < TN; j++) { b[j] = Bs[kk * BN + lid.x + j * WG_X]; }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { (*acc)[i][j] = fma(a[i], b[j], (*acc)[i][j]); }
    }
  }
  workgroupBarrier();
}
