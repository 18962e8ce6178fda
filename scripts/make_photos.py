#!/usr/bin/env python3
"""Regenerates the clean photos shipped in data/photos/ from scikit-image's bundled sample images.

Run (needs Debian's python3-skimage 0.19 for the source files, numpy and Pillow; nothing else):

    /usr/bin/python3 scripts/make_photos.py            # writes data/photos/{train,heldout}/*.png
                                                       # and data/photos/SOURCES.md

Every source image is public domain or CC0 (the licence text is quoted from the docstrings in
skimage/data/_fetchers.py into SOURCES.md). Processing is deterministic and uses numpy only:

  * downscaling is an exact area average (box filter with fractional pixel overlaps: each output
    pixel is the mean of the input area it covers), done in float64 and rounded to 8 bits;
  * training photos may be cut into a grid of non-overlapping crops (remainder pixels at the
    right/bottom edge are dropped);
  * held-out photos are whole images, never crops, and never from a source used for training;
  * grayscale sources stay single-channel 8-bit PNGs (a third of the size of RGB); every loader in
    this repository (pngjs via readImage) expands them to RGB with R = G = B.
"""
import ast
import os
import sys

import numpy as np
from PIL import Image

SKIMAGE_DATA = '/usr/lib/python3/dist-packages/skimage/data'
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'photos')

# name, source file, fetcher function (for the licence docstring), licence summary,
# target long side (px) after area-average downscaling, crop grid (rows, cols) for training.
TRAIN = [
    ('astronaut', 'astronaut.png', 'astronaut', 'public domain (NASA)', 512, (2, 2)),
    ('rocket', 'rocket.jpg', 'rocket', 'public domain (SpaceX)', 640, (2, 3)),
    ('retina', 'retina.jpg', 'retina', 'CC0 1.0', 470, (2, 2)),
    ('gravel', 'gravel.png', 'gravel', 'CC0', 512, (2, 2)),
    ('cell', 'cell.png', 'cell', 'CC0', 550, (2, 2)),
]
HELDOUT = [
    ('camera', 'camera.png', 'camera', 'CC0', 256),
    ('chelsea', 'chelsea.png', 'chelsea', 'CC0', 256),
    ('coffee', 'coffee.png', 'coffee', 'CC0', 256),
    ('clock', 'clock_motion.png', 'clock', 'public domain', 256),
    ('coins', 'coins.png', 'coins', 'no known copyright restrictions (Brooklyn Museum)', 256),
    ('brick', 'brick.png', 'brick', 'CC0', 256),
    ('grass', 'grass.png', 'grass', 'CC0', 256),
    ('hubble', 'hubble_deep_field.jpg', 'hubble_deep_field', 'public domain (NASA)', 256),
]


def docstrings():
    tree = ast.parse(open(os.path.join(SKIMAGE_DATA, '_fetchers.py')).read())
    return {n.name: ast.get_docstring(n) or '' for n in tree.body if isinstance(n, ast.FunctionDef)}


def licence_text(doc):
    """The docstring paragraphs that state the provenance/licence, without section headers."""
    lines = doc.splitlines()
    body = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ''
        if set(line.strip()) == {'-'} or (nxt and set(nxt) == {'-'}):
            body.append('')  # a numpydoc section header and its underline
        else:
            body.append(line)
    keep = []
    for para in '\n'.join(body).split('\n\n'):
        p = ' '.join(line.strip() for line in para.splitlines()).strip()
        low = p.lower()
        if p.startswith('..'):
            continue  # references and version notes
        if any(k in low for k in ('copyright', 'cc0', 'public domain', 'licensed', 'downloaded from',
                                  'courtesy', 'released')):
            keep.append(p)
    return ' '.join(keep)


def load(fname):
    img = np.asarray(Image.open(os.path.join(SKIMAGE_DATA, fname)))
    if img.ndim == 3:
        img = img[..., :3]
    return img.astype(np.float64)


def area_matrix(n_in, n_out):
    """(n_out, n_in) weights: output pixel i averages input interval [i*s, (i+1)*s), s = n_in/n_out."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = i * s, (i + 1) * s
        for j in range(int(np.floor(a)), min(n_in, int(np.ceil(b)))):
            m[i, j] = min(b, j + 1) - max(a, j)
        m[i] /= m[i].sum()
    return m


def downscale(img, long_side):
    h, w = img.shape[:2]
    if max(h, w) <= long_side:
        return img
    f = long_side / max(h, w)
    oh, ow = max(1, round(h * f)), max(1, round(w * f))
    my, mx = area_matrix(h, oh), area_matrix(w, ow)
    if img.ndim == 2:
        return my @ img @ mx.T
    return np.stack([my @ img[..., c] @ mx.T for c in range(img.shape[2])], axis=-1)


def to8(img):
    return np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)


def save(path, img):
    Image.fromarray(to8(img)).save(path, optimize=True)


def main():
    docs = docstrings()
    for sub in ('train', 'heldout'):
        d = os.path.join(ROOT, sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.endswith('.png'):
                os.remove(os.path.join(d, f))
    rows = []
    for name, fname, fetcher, lic, long_side, (gr, gc) in TRAIN:
        src = load(fname)
        img = downscale(src, long_side)
        h, w = img.shape[:2]
        ch, cw = h // gr, w // gc
        for r in range(gr):
            for c in range(gc):
                out = f'{name}-{r}{c}.png'
                save(os.path.join(ROOT, 'train', out), img[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw])
                what = (f'area-average downscale {src.shape[1]}x{src.shape[0]} -> {w}x{h}, ' if img is not src
                        else f'full resolution {w}x{h}, ') + f'crop (row {r}, col {c}) of a {gr}x{gc} grid: {cw}x{ch}'
                rows.append(('train/' + out, fname, fetcher, lic, what))
    for name, fname, fetcher, lic, long_side in HELDOUT:
        src = load(fname)
        img = downscale(src, long_side)
        out = f'{name}.png'
        save(os.path.join(ROOT, 'heldout', out), img)
        rows.append(('heldout/' + out, fname, fetcher, lic,
                     f'whole image, area-average downscale {src.shape[1]}x{src.shape[0]} -> {img.shape[1]}x{img.shape[0]}'))

    lines = [
        '# Clean photos: sources and licences',
        '',
        'Generated by `scripts/make_photos.py` (run it with `/usr/bin/python3`) from the sample images',
        'bundled with scikit-image 0.19 (Debian `python3-skimage`, `/usr/lib/python3/dist-packages/skimage/data/`).',
        'Every source is public domain or CC0 (or, for `coins`, "no known copyright restrictions"),',
        'so these derived files may be redistributed. The licence column quotes the docstring of the',
        'matching function in `skimage/data/_fetchers.py`.',
        '',
        'Processing: exact area-average downscaling in float64 (each output pixel is the mean of the input',
        'area it covers), rounded to 8 bits; training photos are cut into non-overlapping crops;',
        'held-out photos are whole images and no held-out source is used for training. Grayscale',
        'sources are stored as 8-bit grayscale PNGs; the loaders expand them to RGB (R = G = B).',
        '',
        '| file | source | licence | processing |',
        '|---|---|---|---|',
    ]
    for out, fname, fetcher, lic, what in rows:
        lines.append(f'| {out} | skimage `data/{fname}` (`skimage.data.{fetcher}`) | {lic} | {what} |')
    lines += ['', '## Licence statements (from the scikit-image docstrings)', '']
    seen = set()
    for _, fname, fetcher, lic, _ in rows:
        if fetcher in seen:
            continue
        seen.add(fetcher)
        lines.append(f'- **{fetcher}** (`{fname}`): {licence_text(docs[fetcher])}')
    lines.append('')
    with open(os.path.join(ROOT, 'SOURCES.md'), 'w') as f:
        f.write('\n'.join(lines))
    total = 0
    for sub in ('train', 'heldout'):
        d = os.path.join(ROOT, sub)
        total += sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f'{len(rows)} photos, {total / 1e6:.2f} MB', file=sys.stderr)


if __name__ == '__main__':
    main()
