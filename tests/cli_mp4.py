#!/usr/bin/env python3
"""MP4 checks for the CLI tests, with the standard library only (CI has no ffprobe).

    cli_mp4.py info FILE   -> "W H FRAMES FPS" of the first video track
Reads the ISO-BMFF boxes: ftyp first; moov/trak with a 'vide' handler: tkhd (width, height as
16.16), mdhd (timescale), stsz (sample count = frames), stts (first sample delta: the frame
duration). Exits 1 with a message when the file is not such an MP4 (truncated box, no video)."""
import struct
import sys

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def boxes(data, pos, end, path):
    while pos < end:
        if pos + 8 > end:
            sys.exit(f"{path}: truncated box header at {pos}")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            sys.exit(f"{path}: box {kind!r} at {pos} runs past the end")
        yield kind, data[pos + head:pos + size]
        pos += size


def find(data, kind, path):
    for k, body in boxes(data, 0, len(data), path):
        if k == kind:
            return body
    return None


def video_track(trak, path):
    mdia = find(trak, b"mdia", path)
    if mdia is None:
        return None
    hdlr = find(mdia, b"hdlr", path)
    if hdlr is None or hdlr[8:12] != b"vide":
        return None
    tkhd = find(trak, b"tkhd", path)
    w, h = struct.unpack(">II", tkhd[-8:])
    mdhd = find(mdia, b"mdhd", path)
    scale = struct.unpack(">I", mdhd[12:16] if mdhd[0] == 0 else mdhd[20:24])[0]
    stbl = find(find(mdia, b"minf", path), b"stbl", path)
    count = struct.unpack(">I", find(stbl, b"stsz", path)[8:12])[0]
    stts = find(stbl, b"stts", path)
    delta = struct.unpack(">I", stts[12:16])[0] if struct.unpack(">I", stts[4:8])[0] else 0
    fps = round(scale / delta) if delta else 0
    return w >> 16, h >> 16, count, fps


def info(path):
    data = open(path, "rb").read()
    top = list(boxes(data, 0, len(data), path))
    if not top or top[0][0] != b"ftyp":
        sys.exit(f"{path}: not an MP4 (no ftyp box first)")
    moov = [b for k, b in top if k == b"moov"]
    if not moov:
        sys.exit(f"{path}: no moov box")
    for k, trak in boxes(moov[0], 0, len(moov[0]), path):
        if k == b"trak":
            v = video_track(trak, path)
            if v:
                return v
    sys.exit(f"{path}: no video track")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "info":
        sys.exit(__doc__)
    print(*info(sys.argv[2]))
