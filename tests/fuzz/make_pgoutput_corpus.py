#!/usr/bin/env python3
"""Rebuilds tests/fuzz/corpus/pgoutput/ from the golden captures.

Each seed is the fuzz target's input: a selector byte (proto_version - 1, bit 3
set for messages that sit inside a streamed chunk), then one message. Big
scenarios repeat the same shapes hundreds of times, so only a few messages of
each (type, in-chunk) shape are kept. Seeds for what PostgreSQL 15 cannot
produce (proto 4 parallel Stream Abort) and CopyData framing are added by
hand. File names are content hashes, as libFuzzer names its own finds.
"""
import hashlib
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE.parent / "data" / "pgoutput"
OUT = HERE / "corpus" / "pgoutput"
PER_SHAPE = 3


def golden_messages(path):
    proto = None
    for line in path.read_text().splitlines():
        if line.startswith("# proto_version="):
            proto = int(line.split("=", 1)[1])
        elif line and not line.startswith("#"):
            yield proto, bytes.fromhex(line)


def seeds():
    for path in sorted(GOLDEN.glob("*.hex")):
        in_stream = False
        shapes = {}
        for proto, msg in golden_messages(path):
            key = (msg[0], in_stream)
            shapes[key] = shapes.get(key, 0) + 1
            if shapes[key] <= PER_SHAPE:
                yield bytes([(proto - 1) | (8 if in_stream else 0)]) + msg
            if msg[:1] == b"S":
                in_stream = True
            elif msg[:1] == b"E":
                in_stream = False

    proto4_parallel = 3 | 4
    yield bytes([proto4_parallel]) + b"A" + struct.pack(">IIQq", 700, 701, 0x5000, 1234)
    yield bytes([3]) + b"A" + struct.pack(">II", 700, 700)

    begin = b"B" + struct.pack(">QqI", 0x16B374D848, 767882096789000, 750)
    yield bytes([0]) + b"w" + struct.pack(">QQq", 0x16B374D848, 0x16B3750000, 1) + begin
    yield bytes([0]) + b"k" + struct.pack(">Qq", 0x16B3750000, 1) + b"\x01"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    names = set()
    for seed in seeds():
        name = hashlib.sha1(seed).hexdigest()
        (OUT / name).write_bytes(seed)
        names.add(name)
    print(f"{len(names)} seeds in {OUT}")


if __name__ == "__main__":
    main()
