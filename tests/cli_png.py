#!/usr/bin/env python3
"""PNG checks for the CLI tests, with the standard library only (CI has no imaging packages).

    cli_png.py info FILE            -> "W H" and the tEXt/iTXt chunks as key=value lines
    cli_png.py diff A B             -> the largest per-channel difference of the pixels (0..255)
Exits 1 with a message when a file is not a valid 8-bit RGB PNG (bad signature, CRC, size)."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG (bad signature)")
    pos, idat, text, size = 8, b"", {}, None
    while pos < len(data):
        if pos + 8 > len(data):
            sys.exit(f"{path}: truncated chunk header")
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = data[pos + 8 + n:pos + 12 + n]
        if len(body) != n or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            sys.exit(f"{path}: bad or truncated {kind!r} chunk")
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color != 2:
                sys.exit(f"{path}: expected 8-bit RGB, got depth {depth} color type {color}")
            size = (w, h)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"iTXt":
            k, rest = body.split(b"\0", 1)
            flag = rest[0]
            _lang, _tkey, v = rest[2:].split(b"\0", 2)
            text[k.decode()] = (zlib.decompress(v) if flag else v).decode("utf-8")
        elif kind == b"IEND":
            break
        pos += 12 + n
    if size is None:
        sys.exit(f"{path}: no IHDR")
    w, h = size
    raw = zlib.decompress(idat)
    stride = 3 * w
    if len(raw) != h * (stride + 1):
        sys.exit(f"{path}: pixel data has {len(raw)} bytes, expected {h * (stride + 1)}")
    px, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b = prev[i]
            c = prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif f != 0:
                sys.exit(f"{path}: bad filter type {f}")
        px += line
        prev = line
    return w, h, bytes(px), text


def main():
    cmd = sys.argv[1]
    if cmd == "info":
        w, h, _, text = read_png(sys.argv[2])
        print(w, h)
        for k, v in sorted(text.items()):
            print(f"{k}={v}")
    elif cmd == "diff":
        wa, ha, a, _ = read_png(sys.argv[2])
        wb, hb, b, _ = read_png(sys.argv[3])
        if (wa, ha) != (wb, hb):
            sys.exit(f"sizes differ: {wa}x{ha} vs {wb}x{hb}")
        print(max(abs(x - y) for x, y in zip(a, b)))
    else:
        sys.exit(f"unknown command {cmd}")


main()
