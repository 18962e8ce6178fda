// Workgroup-grid indexing shared by the kernel families. Grids past 65535 workgroups per dimension
// are folded by the host (src/kernels/util.ts); these unfold them. The including shader declares
// `override WG: u32` (its 1-D workgroup size).

// Flat invocation index of a 1-D launch whose workgroups are folded over x and y.
fn flat_index(wid: vec3u, lid: vec3u, nwg: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// The (channel, plane or line block) index of a grid that runs splits along x and folds its second
// axis over y and z.
fn folded_yz(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.z * nwg.y + wid.y;
}
