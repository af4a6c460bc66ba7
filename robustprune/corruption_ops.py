"""Common corruptions: the 15 ImageNet-C / CIFAR-10-C types at 5 severities, for any image size.

The maintained libraries (``imagecorruptions`` 1.1.2 and its fork ``imagecorruptions-imaug``
1.1.5) refuse images smaller than 32×32 and tune their severities for 224-pixel ImageNet
images, so the corruptions are written here, vectorised over a batch with numpy/scipy/torch,
for NHWC float images in [0, 1] of any size and channel count (grayscale 28×28 included).

Severity parameters follow CIFAR-10-C (Hendrycks & Dietterich 2019, the 32×32 benchmark)
where its corruption can be reproduced exactly. Where it cannot, the choice is stated in the
corruption's docstring:

- *frost* overlays photographs of frost in the original; none ship with this package, so a
  seeded procedural ice texture (a ridged fractal) takes their place;
- *fog* adds a fractal field: here 1/f noise whose amplitude spectrum falls as
  f^-log2(d), the same octave decay d as the original's diamond-square field;
- *motion blur* (and the snow streaks) use a one-sided Gaussian-weighted line kernel at a random
  angle, the kernel ImageMagick's motion blur applies in the original;
- *glass blur*, *frost* and *pixelate* use stronger settings than CIFAR-10-C's where those do
  not change 28×28 images more at a higher severity (each docstring says how);
- *elastic transform* uses displacement magnitudes in pixels chosen to grow with severity
  (small random affine jitter plus a smoothed random field).

Every corruption is deterministic given its generator (:func:`corrupt` seeds one per
corruption × severity), and its average pixel change grows with severity (both tested).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from robustprune.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)
CATEGORIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
"""The 15 benchmark corruptions in the four groups of ImageNet-C, in its order."""

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


# ---------------------------------------------------------------------------- helpers
def _gray(x: np.ndarray) -> np.ndarray:
    """Luma [N,H,W,1] (the image itself when it has one channel)."""
    if x.shape[-1] == 1:
        return x
    return (x[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=x.dtype))[..., None]


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image (not across images or channels)."""
    if sigma <= 0:
        return x
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect")


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate each image and channel with a 2-D kernel (mirrored borders)."""
    return ndimage.correlate(x, kernel[None, :, :, None], mode="mirror")


def _shifted(x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Image n moved by (dy[n], dx[n]) whole pixels, edges repeated."""
    n, h, w, _ = x.shape
    rows = np.clip(np.arange(h)[None, :] - dy[:, None], 0, h - 1)
    cols = np.clip(np.arange(w)[None, :] - dx[:, None], 0, w - 1)
    return x[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _motion(x: np.ndarray, radius: int, sigma: float, angles: np.ndarray) -> np.ndarray:
    """One-sided motion blur: a Gaussian-weighted average of copies of each image moved
    0…radius pixels along its own angle (degrees)."""
    rad = np.deg2rad(angles)
    out = np.zeros_like(x)
    total = 0.0
    for d in range(radius + 1):
        weight = math.exp(-d * d / (2 * sigma * sigma))
        dy = np.rint(d * np.sin(rad)).astype(int)
        dx = np.rint(d * np.cos(rad)).astype(int)
        out += weight * _shifted(x, dy, dx)
        total += weight
    return out / total


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The centre of each image enlarged by ``factor`` to the full size (bilinear)."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    theta = torch.tensor([[1 / factor, 0, 0], [0, 1 / factor, 0]], dtype=t.dtype)
    grid = F.affine_grid(theta.expand(len(t), 2, 3), list(t.shape), align_corners=False)
    out = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.numpy().transpose(0, 2, 3, 1)


def _fractal(n: int, h: int, w: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Seeded fractal fields [n,h,w] in [0,1]: white noise whose amplitude spectrum is shaped
    to f^-log2(decay), i.e. each octave ``decay`` times weaker than the one below it."""
    size = 2 ** math.ceil(math.log2(max(h, w, 2)))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    shape = f ** (-math.log2(decay))
    shape[0, 0] = 0.0
    spectrum = np.fft.rfft2(rng.standard_normal((n, size, size))) * shape
    field = np.fft.irfft2(spectrum, s=(size, size))[:, :h, :w]
    lo = field.min(axis=(1, 2), keepdims=True)
    hi = field.max(axis=(1, 2), keepdims=True)
    return ((field - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)


def _disk(radius: float, alias_sigma: float) -> np.ndarray:
    """A normalised disk kernel of ``radius`` pixels, smoothed by a 3×3 Gaussian."""
    r = max(1, math.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = ((yy * yy + xx * xx) <= radius * radius).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_sigma ** 2))
    g = np.outer(g, g)
    smooth = ndimage.convolve(np.pad(disk, 1), g / g.sum(), mode="constant")
    return (smooth / smooth.sum()).astype(np.float32)


# ---------------------------------------------------------------------------- noise
def gaussian_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, σ²) per pixel, σ = 0.04 … 0.10 (CIFAR-10-C)."""
    sigma = (0.04, 0.06, 0.08, 0.09, 0.10)[s - 1]
    return x + rng.normal(0.0, sigma, x.shape).astype(x.dtype)


def shot_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon noise: Poisson(λ·x)/λ, λ = 500 … 50 (CIFAR-10-C)."""
    lam = (500, 250, 100, 75, 50)[s - 1]
    return (rng.poisson(x * lam) / lam).astype(x.dtype)


def impulse_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper: a share 0.01 … 0.07 of the values set to 0 or 1 (CIFAR-10-C)."""
    amount = (0.01, 0.02, 0.03, 0.05, 0.07)[s - 1]
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


# ---------------------------------------------------------------------------- blur
def defocus_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Disk kernel (radius, anti-alias σ) = (0.3, 0.4) … (1.5, 0.1) (CIFAR-10-C)."""
    radius, alias = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))[s - 1]
    return _filter(x, _disk(radius, alias))


def glass_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, then every pixel swapped with a random neighbour within δ (a scan over the
    image, ``iterations`` times, each image its own draws), then blur again: frosted glass.
    (σ, δ, iterations) = (0.3, 1, 1) … (0.7, 2, 3): CIFAR-10-C's (0.05, 1, 1) … (0.4, 1, 2)
    change 28×28 images less at severity 3 than at 1, so σ, δ and the iterations all grow."""
    sigma, delta, iterations = ((0.3, 1, 1), (0.4, 1, 2), (0.5, 1, 3), (0.6, 2, 2),
                                (0.7, 2, 3))[s - 1]
    out = _blur(x, sigma)
    n, h, w, _ = x.shape
    idx = np.arange(n)
    for _ in range(iterations):
        for i in range(h - delta - 1, delta - 1, -1):
            for j in range(w - delta - 1, delta - 1, -1):
                dy, dx = rng.integers(-delta, delta + 1, (2, n))
                here = out[idx, i, j].copy()
                out[idx, i, j] = out[idx, i + dy, j + dx]
                out[idx, i + dy, j + dx] = here
    return _blur(out, sigma)


def motion_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Line kernel of (radius, σ) = (10, 1) … (12, 3) pixels (CIFAR-10-C) at an angle drawn
    uniformly in ±45° per image."""
    radius, sigma = ((10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0))[s - 1]
    return _motion(x, radius, sigma, rng.uniform(-45, 45, len(x)))


def zoom_blur(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Mean of the image and its centre zoomed by each of 1.00 … 1.05 (severity 1) up to
    1.00 … 1.25 (severity 5) in steps of 0.01 (CIFAR-10-C, which counts the image twice: once
    itself, once zoomed by 1.00)."""
    top = (1.06, 1.11, 1.16, 1.21, 1.26)[s - 1]
    factors = np.arange(1.0, top - 1e-9, 0.01)
    out = x.copy()
    for z in factors:
        out += x if z == 1.0 else _zoom(x, float(z))
    return out / (len(factors) + 1)


# ---------------------------------------------------------------------------- weather
def snow(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Snowflakes: a thresholded, zoomed Gaussian field streaked by motion blur at −135…−45°,
    added twice (once rotated by 180°) over a whitened image. Parameters (flake mean, std,
    zoom, threshold, streak radius, streak σ, image weight) from CIFAR-10-C."""
    loc, scale, zoom, threshold, radius, sigma, keep = (
        (0.1, 0.2, 1.0, 0.6, 8, 3.0, 0.95), (0.1, 0.2, 1.0, 0.5, 10, 4.0, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4.0, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6.0, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12.0, 0.8))[s - 1]
    n, h, w, _ = x.shape
    flakes = rng.normal(loc, scale, (n, h, w, 1)).astype(x.dtype)
    if zoom != 1.0:
        flakes = _zoom(flakes, zoom)
    flakes[flakes < threshold] = 0.0
    flakes = np.clip(flakes, 0.0, 1.0)
    flakes = _motion(flakes, radius, sigma, rng.uniform(-135, -45, n))
    whitened = np.maximum(x, _gray(x) * 1.5 + 0.5)
    out = keep * x + (1 - keep) * whitened
    return out + flakes + flakes[:, ::-1, ::-1]


def frost(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Image weight × image + frost weight × ice texture, weights (1, 0.2) … (0.75, 0.5)
    (CIFAR-10-C's, with the frost weight of severities 4 and 5 raised by 0.05 so the change
    grows with severity). The texture is procedural (the original's frost photographs are not
    shipped): a ridged fractal, bright along the field's zero crossings like ice veins."""
    keep, amount = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.45), (0.75, 0.5))[s - 1]
    n, h, w, _ = x.shape
    field = _fractal(n, h, w, 1.6, rng)
    ice = (1.0 - np.abs(2.0 * field - 1.0)) ** 4
    return keep * x + amount * ice[..., None]


def fog(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Fractal haze: (x + c·field)·max/(max + c), (c, octave decay) = (0.2, 3) … (1.5, 1.75)
    (CIFAR-10-C)."""
    c, decay = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))[s - 1]
    n, h, w, _ = x.shape
    top = x.max(axis=(1, 2, 3), keepdims=True)
    field = _fractal(n, h, w, decay, rng)[..., None]
    return (x + c * field) * top / (top + c)


# ---------------------------------------------------------------------------- digital
def brightness(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """HSV value + 0.05 … 0.3 (CIFAR-10-C), hue and saturation kept: each pixel's channels
    scaled by min(V + c, 1)/V (for grayscale, x + c)."""
    c = (0.05, 0.1, 0.15, 0.2, 0.3)[s - 1]
    value = x.max(axis=-1, keepdims=True)
    scale = np.minimum(value + c, 1.0) / np.maximum(value, 1e-6)
    return np.where(value > 1e-6, x * scale, c)


def contrast(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Deviations from each image's per-channel mean scaled by 0.75 … 0.15 (CIFAR-10-C)."""
    c = (0.75, 0.5, 0.4, 0.3, 0.15)[s - 1]
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) * c + mean


def elastic_transform(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Each image resampled (bilinear, reflected borders) through a random affine map that
    moves points by up to ``jitter`` pixels plus a smooth random field (σ = 1/10 of the
    side) of RMS ``rms`` pixels: (jitter, rms) = (0.5, 0.4) … (1.5, 2.0)."""
    jitter, rms = ((0.5, 0.4), (0.75, 0.8), (1.0, 1.2), (1.25, 1.6), (1.5, 2.0))[s - 1]
    n, h, w, c = x.shape
    # affine part: the map moving three reference points by uniform(±jitter) pixels
    cy, cx, half = (h - 1) / 2, (w - 1) / 2, min(h, w) / 3
    src = np.array([[cy - half, cx - half], [cy - half, cx + half], [cy + half, cx - half]])
    dst = src[None] + rng.uniform(-jitter, jitter, (n, 3, 2))
    ones = np.ones((3, 1))
    # solve [src 1] @ M = dst for the 3×2 matrix M of each image
    mats = np.linalg.solve(np.hstack([src, ones])[None].repeat(n, 0), dst)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.stack([yy, xx, np.ones_like(yy)], axis=-1)  # [h,w,3]
    coords = np.einsum("hwk,nkd->nhwd", grid, mats)  # [n,h,w,2] source (y, x)
    # elastic part: a smoothed uniform field, scaled to the target RMS displacement
    sigma = max(h, w) / 10
    field = ndimage.gaussian_filter(rng.uniform(-1, 1, (n, h, w, 2)), (0, sigma, sigma, 0),
                                    mode="reflect")
    field *= rms / np.maximum(np.sqrt((field ** 2).mean(axis=(1, 2, 3), keepdims=True)), 1e-12)
    coords += field
    ni = np.broadcast_to(np.arange(n)[:, None, None, None], (n, h, w, c)).astype(np.float64)
    ci = np.broadcast_to(np.arange(c)[None, None, None, :], (n, h, w, c)).astype(np.float64)
    ys = np.broadcast_to(coords[..., :1], (n, h, w, c))
    xs = np.broadcast_to(coords[..., 1:], (n, h, w, c))
    return ndimage.map_coordinates(x, np.stack([ni, ys, xs, ci]), order=1, mode="mirror")


def pixelate(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Box-downsampled to 0.9 … 0.4 of the side and scaled back up (bilinear). CIFAR-10-C's
    0.95 … 0.65 with nearest-neighbour upscaling alias on 28×28 images (severity 4 changes
    them less than 1), so the sides shrink further and the upscaling interpolates."""
    c = (0.9, 0.75, 0.6, 0.5, 0.4)[s - 1]
    _, h, w, _ = x.shape
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    small = F.adaptive_avg_pool2d(t, (max(1, int(h * c)), max(1, int(w * c))))
    big = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return big.numpy().transpose(0, 2, 3, 1)


def jpeg_compression(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip at quality 80 … 40 (CIFAR-10-C), through Pillow."""
    from PIL import Image

    quality = (80, 65, 58, 50, 40)[s - 1]
    u8 = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    out = np.empty_like(u8)
    for i, img in enumerate(u8):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        back = np.asarray(Image.open(buf))
        out[i] = back[..., None] if back.ndim == 2 else back
    return out.astype(x.dtype) / 255.0


CORRUPTIONS: Registry[Corruption] = Registry("corruption", {
    name: globals()[name] for names in CATEGORIES.values() for name in names})
"""Name → function(x NHWC float in [0,1], severity 1…5, generator) → corrupted x (unclipped)."""


def corrupt(x: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """``x`` (uint8 NCHW) under corruption ``name`` at ``severity``, as uint8 NCHW. The
    generator is seeded by (seed, corruption, severity), so a file of all of them is the same
    bytes on every run, and adding examples or corruptions changes no existing one's draws
    for the same batch."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity = {severity}: must be one of {SEVERITIES}")
    fn = CORRUPTIONS[name]
    rng = np.random.default_rng([seed, CORRUPTIONS.names.index(name), severity])
    f = x.transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    out = np.clip(fn(f, severity, rng), 0.0, 1.0)
    return np.rint(out * 255).astype(np.uint8).transpose(0, 3, 1, 2).copy()


def mean_corruption_error(model_grid: dict[str, list[float]],
                          baseline_grid: dict[str, list[float]]) -> dict[str, Any]:
    """mCE (Hendrycks & Dietterich 2019): per corruption, the model's errors summed over the
    severities ÷ the baseline's; mCE is their mean. The baseline is the clean-trained model
    (AlexNet's role in ImageNet-C), so mCE < 1 means more corruption-robust than it."""
    ce = {}
    for name, accs in model_grid.items():
        base = sum(1.0 - a for a in baseline_grid[name])
        ce[name] = round(sum(1.0 - a for a in accs) / base, 6) if base > 0 else float("nan")
    return {"mce": round(float(np.mean(list(ce.values()))), 6), "ce": ce}
