#!/usr/bin/env python3
"""Draws VICIfast's app icons and tray icons as PNG (and the app icon as ICO).

Standard library only: shapes are signed-distance functions sampled 4x4 per pixel, so edges are
smooth at any size. Run from anywhere: `python3 icons/generate.py`; it rewrites the files next to it.

Tray states differ by shape, not only colour, so they read at 16-24 px and for colour-blind users:
  registered  green filled disc with a white check mark
  working     amber ring with three dots inside (registering / retrying)
  failed      red filled triangle with a white exclamation mark
  offline     grey hollow ring with nothing inside (offline / not registered)
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SS = 4  # supersamples per axis


def png_bytes(width, height, rgba):
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        raw.extend(rgba[y * width * 4:(y + 1) * width * 4])

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + chunk(b"IEND", b""))


# --- signed distance functions in a unit square (0..1), negative inside ---

def d_circle(x, y, cx, cy, r):
    return math.hypot(x - cx, y - cy) - r


def d_ring(x, y, cx, cy, r, w):
    return abs(math.hypot(x - cx, y - cy) - r) - w / 2


def d_segment(x, y, ax, ay, bx, by, w):
    px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
    t = max(0.0, min(1.0, (px * dx + py * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - t * dx, py - t * dy) - w / 2


def d_round_rect(x, y, x0, y0, x1, y1, r):
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2 - r, (y1 - y0) / 2 - r
    qx, qy = abs(x - cx) - hx, abs(y - cy) - hy
    return math.hypot(max(qx, 0), max(qy, 0)) + min(max(qx, qy), 0) - r


def d_triangle(x, y, pts, rounding):
    # distance to a convex polygon (rounded by `rounding`)
    inside = True
    best = 1e9
    n = len(pts)
    for i in range(n):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % n]
        best = min(best, d_segment(x, y, ax, ay, bx, by, 0))
        if (bx - ax) * (y - ay) - (by - ay) * (x - ax) < 0:
            inside = False
    return (-best if inside else best) - rounding


def render(size, layers):
    """layers: list of (sdf(x, y) -> float, (r, g, b, a)) painted in order."""
    out = bytearray(size * size * 4)
    for py in range(size):
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]  # premultiplied
            for sy in range(SS):
                for sx in range(SS):
                    x = (px + (sx + 0.5) / SS) / size
                    y = (py + (sy + 0.5) / SS) / size
                    r = g = b = a = 0.0
                    for sdf, (cr, cg, cb, ca) in layers:
                        if sdf(x, y) <= 0:
                            al = ca / 255
                            r = cr / 255 * al + r * (1 - al)
                            g = cg / 255 * al + g * (1 - al)
                            b = cb / 255 * al + b * (1 - al)
                            a = al + a * (1 - al)
                    acc[0] += r
                    acc[1] += g
                    acc[2] += b
                    acc[3] += a
            n = SS * SS
            a = acc[3] / n
            i = (py * size + px) * 4
            if a > 0:
                out[i] = round(acc[0] / n / a * 255)
                out[i + 1] = round(acc[1] / n / a * 255)
                out[i + 2] = round(acc[2] / n / a * 255)
                out[i + 3] = round(a * 255)
    return out


WHITE = (255, 255, 255, 255)
GREEN = (30, 142, 62, 255)
AMBER = (230, 145, 0, 255)
RED = (200, 30, 30, 255)
GREY = (128, 128, 128, 255)
BLUE = (26, 86, 160, 255)


def tray_registered():
    return [
        (lambda x, y: d_circle(x, y, .5, .5, .46), GREEN),
        (lambda x, y: min(d_segment(x, y, .27, .52, .43, .68, .12),
                          d_segment(x, y, .43, .68, .73, .34, .12)), WHITE),
    ]


def tray_working():
    return [
        (lambda x, y: d_ring(x, y, .5, .5, .40, .13), AMBER),
        (lambda x, y: min(d_circle(x, y, .31, .5, .075), d_circle(x, y, .5, .5, .075),
                          d_circle(x, y, .69, .5, .075)), AMBER),
    ]


def tray_failed():
    tri = [(.5, .07), (.96, .90), (.04, .90)]
    return [
        (lambda x, y: d_triangle(x, y, tri, .03), RED),
        (lambda x, y: min(d_segment(x, y, .5, .36, .5, .60, .12),
                          d_circle(x, y, .5, .76, .065)), WHITE),
    ]


def tray_offline():
    return [
        (lambda x, y: d_ring(x, y, .5, .5, .40, .11), GREY),
    ]


def app_icon():
    return [
        (lambda x, y: d_round_rect(x, y, .04, .04, .96, .96, .2), BLUE),
        (lambda x, y: d_ring(x, y, .5, .5, .30, .09), WHITE),
        (lambda x, y: min(d_segment(x, y, .37, .51, .46, .61, .09),
                          d_segment(x, y, .46, .61, .64, .40, .09)), WHITE),
    ]


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    for state, layers in [("registered", tray_registered()), ("working", tray_working()),
                          ("failed", tray_failed()), ("offline", tray_offline())]:
        write(f"tray-{state}.png", png_bytes(64, 64, render(64, layers)))
    pngs = {}
    for size in (16, 32, 48, 128, 256, 512):
        pngs[size] = png_bytes(size, size, render(size, app_icon()))
    write("32x32.png", pngs[32])
    write("128x128.png", pngs[128])
    write("128x128@2x.png", pngs[256])
    write("icon.png", pngs[512])
    # ICO holding PNG images (Vista+ format).
    sizes = [16, 32, 48, 256]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        data = pngs[s]
        entries += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        blobs += data
    write("icon.ico", header + entries + blobs)


if __name__ == "__main__":
    main()
