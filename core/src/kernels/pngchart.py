"""A bar chart as a PNG file, with the standard library only (``zlib`` for the image data).

``kernels benchmark --visual`` draws one group of horizontal bars per workload (the kernel's mean
time and, when the benchmark has a reference, the reference's), each labelled with its value. Text
uses a built-in 5x7 pixel font (upper case, digits and common punctuation; lower case is drawn as
upper case), scaled up, so no font file or plotting library is needed.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from kernels.fsutil import atomic_write

RGB = tuple[int, int, int]

_GLYPHS = {
    "A": ".###.#...##...#######...##...##...#",
    "B": "####.#...##...#####.#...##...#####.",
    "C": ".###.#...##....#....#....#...#.###.",
    "D": "####.#...##...##...##...##...#####.",
    "E": "######....#....####.#....#....#####",
    "F": "######....#....####.#....#....#....",
    "G": ".###.#...##....#.####...##...#.####",
    "H": "#...##...##...#######...##...##...#",
    "I": ".###...#....#....#....#....#...###.",
    "J": "..###...#....#....#....#.#..#..##..",
    "K": "#...##..#.#.#..##...#.#..#..#.#...#",
    "L": "#....#....#....#....#....#....#####",
    "M": "#...###.###.#.##...##...##...##...#",
    "N": "#...##...###..##.#.##..###...##...#",
    "O": ".###.#...##...##...##...##...#.###.",
    "P": "####.#...##...#####.#....#....#....",
    "Q": ".###.#...##...##...##.#.##..#..##.#",
    "R": "####.#...##...#####.#.#..#..#.#...#",
    "S": ".#####....#.....###.....#....#####.",
    "T": "#####..#....#....#....#....#....#..",
    "U": "#...##...##...##...##...##...#.###.",
    "V": "#...##...##...##...##...#.#.#...#..",
    "W": "#...##...##...##.#.##.#.##.#.#.#.#.",
    "X": "#...##...#.#.#...#...#.#.#...##...#",
    "Y": "#...##...#.#.#...#....#....#....#..",
    "Z": "#####....#...#...#...#...#....#####",
    "0": ".###.#...##..###.#.###..##...#.###.",
    "1": "..#...##....#....#....#....#...###.",
    "2": ".###.#...#....#...#...#...#...#####",
    "3": "#####...#...#.....#.....##...#.###.",
    "4": "...#...##..#.#.#..#.#####...#....#.",
    "5": "######....####.....#....##...#.###.",
    "6": "..##..#...#....####.#...##...#.###.",
    "7": "#####....#...#...#...#....#....#...",
    "8": ".###.#...##...#.###.#...##...#.###.",
    "9": ".###.#...##...#.####....#...#..##..",
    " ": "." * 35,
    ".": "." * 25 + ".##...##..",
    ",": "." * 20 + ".##....#...#...",
    ":": ".....##...##.........##...##.......",
    "-": "...............#####...............",
    "_": "." * 30 + "#####",
    "/": "....#....#...#...#...#...#....#....",
    "(": "...#...#...#....#....#.....#.....#.",
    ")": ".#.....#.....#....#....#...#...#...",
    "%": "##...##..#...#...#...#...#..##...##",
    "=": "..........#####.....#####..........",
    "+": ".......#....#..#####..#....#.......",
    "<": "...#...#...#...#.....#.....#.....#.",
    ">": ".#.....#.....#.....#...#...#...#...",
    "@": ".###.#...##.###.#.###.###.#.....###",
    "?": ".###.#...#....#...#...#.........#..",
    "'": "..#....#...#" + "." * 23,
}


@dataclass
class Canvas:
    """An RGB image being drawn on; ``save`` writes it as a PNG."""

    width: int
    height: int
    background: RGB = (255, 255, 255)

    def __post_init__(self) -> None:
        self.pixels = bytearray(bytes(self.background) * (self.width * self.height))

    def rect(self, x: int, y: int, w: int, h: int, color: RGB) -> None:
        """Fill the rectangle at ``(x, y)`` of size ``w`` x ``h`` (clipped to the canvas)."""
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: RGB, scale: int = 2) -> int:
        """Draw ``text`` with its top-left corner at ``(x, y)``; return the x after it."""
        for ch in text:
            glyph = _GLYPHS.get(ch) or _GLYPHS.get(ch.upper()) or _GLYPHS["?"]
            for i, on in enumerate(glyph):
                if on == "#":
                    self.rect(x + (i % 5) * scale, y + (i // 5) * scale, scale, scale, color)
            x += 6 * scale
        return x

    def png(self) -> bytes:
        """The image encoded as a PNG (8-bit RGB, no interlace)."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )

    def save(self, path: Path) -> None:
        """Write the PNG to ``path`` atomically."""
        atomic_write(Path(path), self.png())


def text_width(text: str, scale: int = 2) -> int:
    """Pixels ``text`` takes with :meth:`Canvas.text`."""
    return len(text) * 6 * scale


@dataclass(frozen=True)
class Bar:
    """One bar: its value, its colour and its caption (drawn after it)."""

    value: float
    color: RGB
    caption: str


def bar_chart(title: str, subtitle: str, groups: list[tuple[str, list[Bar]]]) -> Canvas:
    """Horizontal bars, one group per label, all on one linear scale starting at zero."""
    scale, bar_h, gap, margin = 2, 22, 6, 24
    label_w = max([text_width(label, scale) for label, _ in groups] + [80])
    caption_w = max([text_width(b.caption, scale) for _, bars in groups for b in bars] + [80])
    plot_w = 480
    width = margin * 3 + label_w + plot_w + caption_w
    rows = sum(max(1, len(bars)) for _, bars in groups)
    top = margin + 2 * 18 + 16
    height = top + rows * (bar_h + gap) + len(groups) * gap * 2 + margin
    canvas = Canvas(width, height)
    ink, muted = (30, 30, 30), (110, 110, 110)
    canvas.text(margin, margin, title, ink, scale)
    canvas.text(margin, margin + 20, subtitle, muted, scale)
    peak = max([b.value for _, bars in groups for b in bars] + [1e-12])
    x_plot = margin * 2 + label_w
    y = top
    canvas.rect(x_plot - 1, top - gap, 1, height - top - margin + gap, (200, 200, 200))
    for label, bars in groups:
        canvas.text(margin, y + (bar_h - 14) // 2, label, ink, scale)
        for bar in bars:
            length = max(1, round(plot_w * bar.value / peak))
            canvas.rect(x_plot, y, length, bar_h, bar.color)
            canvas.text(x_plot + length + 8, y + (bar_h - 14) // 2, bar.caption, ink, scale)
            y += bar_h + gap
        y += gap * 2
    return canvas
