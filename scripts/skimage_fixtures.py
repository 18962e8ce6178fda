#!/usr/bin/env python3
"""scikit-image reference values for src/train/metrics.ts (test/metrics.test.ts).

Run (needs Debian's python3-skimage 0.19, numpy and Pillow):

    /usr/bin/python3 scripts/skimage_fixtures.py test/fixtures/metrics

Writes small deterministic image pairs as 8-bit RGB PNGs (<case>.a.png, <case>.b.png) plus one
pair of float images stored in the JSON itself (values outside [0,1] and off the 8-bit grid, to
exercise clamping and the authors' truncation), and expected.json with, per case:

    psnr_rgb, ssim_rgb       float images clamped to [0,1], data range 1: peak_signal_noise_ratio
                             on HxWx3; structural_similarity(gaussian_weights=True, sigma=1.5,
                             use_sample_covariance=False, data_range=1, channel_axis=2)
    psnr_y, ssim_y           the same on BT.601 luma Y = (16 + 65.481 R + 128.553 G + 24.966 B)/255
    psnr_authors, ssim_authors
                             uint8(float32(255) * float32 x) (truncation, as the authors' code), then
                             skimage's defaults on uint8: data range 255, 7x7 uniform window,
                             sample covariance; channel_axis=2
"""
import json
import os
import sys

import numpy as np
import skimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def luma(x):
    return (16 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255


def metrics(a32, b32):
    """a32, b32: HxWx3 float32 images as the engine holds them."""
    a = np.clip(a32.astype(np.float64), 0, 1)
    b = np.clip(b32.astype(np.float64), 0, 1)
    ssim_args = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    a8 = np.floor(np.float32(255) * np.clip(a32, 0, 1).astype(np.float32)).astype(np.uint8)
    b8 = np.floor(np.float32(255) * np.clip(b32, 0, 1).astype(np.float32)).astype(np.uint8)
    ya, yb = luma(a), luma(b)
    return {
        'psnr_rgb': peak_signal_noise_ratio(a, b, data_range=1),
        'ssim_rgb': structural_similarity(a, b, channel_axis=2, **ssim_args),
        'psnr_y': peak_signal_noise_ratio(ya, yb, data_range=1),
        'ssim_y': structural_similarity(ya, yb, **ssim_args),
        'psnr_authors': peak_signal_noise_ratio(a8, b8),
        'ssim_authors': structural_similarity(a8, b8, channel_axis=2),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'test/fixtures/metrics'
    os.makedirs(out, exist_ok=True)
    rs = np.random.RandomState(20240611)
    cases = {}

    def png_case(name, a8, b8):
        Image.fromarray(a8).save(os.path.join(out, f'{name}.a.png'), optimize=True)
        Image.fromarray(b8).save(os.path.join(out, f'{name}.b.png'), optimize=True)
        # The engine decodes k to float32(k / 255).
        a32 = (a8.astype(np.float64) / 255).astype(np.float32)
        b32 = (b8.astype(np.float64) / 255).astype(np.float32)
        cases[name] = {'files': [f'{name}.a.png', f'{name}.b.png'], **metrics(a32, b32)}

    # A smooth colour scene and a noisy, streaked copy of it.
    h, w = 24, 31
    yy, xx = np.mgrid[0:h, 0:w]
    scene = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 4.0)], axis=-1)
    a8 = np.round(255 * np.clip(scene, 0, 1)).astype(np.uint8)
    rain = np.zeros((h, w))
    for x0 in (3, 11, 20, 27):
        for t in range(12):
            y, x = 2 + t, x0 + t // 4
            if y < h and x < w:
                rain[y, x] = 0.5
    noisy = scene + rain[..., None] + rs.normal(0, 0.03, scene.shape)
    b8 = np.round(255 * np.clip(noisy, 0, 1)).astype(np.uint8)
    png_case('scene', a8, b8)

    # Independent uniform noise images of an odd size (the smallest the 11x11 window allows is 11).
    png_case('noise', rs.randint(0, 256, (13, 17, 3)).astype(np.uint8), rs.randint(0, 256, (13, 17, 3)).astype(np.uint8))

    # Nearly identical images: one pixel of one channel differs by one level.
    a8 = rs.randint(0, 256, (16, 12, 3)).astype(np.uint8)
    b8 = a8.copy()
    b8[7, 5, 1] = a8[7, 5, 1] + 1 if a8[7, 5, 1] < 255 else 254
    png_case('onelevel', a8, b8)

    # Float images (stored in the JSON, planar CHW like the engine's Image) with out-of-range values.
    fh, fw = 12, 14
    fa = (rs.uniform(-0.2, 1.2, (fh, fw, 3))).astype(np.float32)
    fb = (np.asarray(fa, np.float64) + rs.normal(0, 0.1, (fh, fw, 3))).astype(np.float32)
    cases['float'] = {
        'width': fw,
        'height': fh,
        # Shortest decimals that round back to the same float32 values.
        'a': [float(repr(v)) for v in fa.transpose(2, 0, 1).ravel()],
        'b': [float(repr(v)) for v in fb.transpose(2, 0, 1).ravel()],
        **metrics(fa, fb),
    }

    doc = {
        'generator': 'scripts/skimage_fixtures.py',
        'skimage': skimage.__version__,
        'numpy': np.__version__,
        'cases': cases,
    }
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
        f.write('\n')


if __name__ == '__main__':
    main()
