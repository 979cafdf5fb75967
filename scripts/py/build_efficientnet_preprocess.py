"""EfficientNet-Lite0's image preprocessing with Pillow and NumPy, for the build checks.

Short side resized to `short` (bilinear), center crop `crop`×`crop`, RGB, (x − mean) / std,
NCHW with a batch of one.
"""

import numpy as np
from PIL import Image


def preprocess(path, crop, short, mean, std):
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = short / min(w, h)
        size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
        im = im.resize(size, Image.BILINEAR)
        left = (size[0] - crop) // 2
        top = (size[1] - crop) // 2
        im = im.crop((left, top, left + crop, top + crop))
        x = np.asarray(im, dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]).astype(np.float32)
