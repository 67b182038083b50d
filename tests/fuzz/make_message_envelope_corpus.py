#!/usr/bin/env python3
"""Rebuilds tests/fuzz/corpus/message_envelope/.

Each seed is the fuzz target's input: a selector byte (bit 0 transactional,
bit 1 non-transactional messages allowed), then a message's content: the
envelope outbox.emit() of sql/04-outbox-emit.sql writes (the first seed is
one PostgreSQL 15 wrote), variants with absent fields, header arrays, bad
topics and partitions, and malformed framing. File names are content
hashes, as libFuzzer names its own finds.
"""
import hashlib
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "corpus" / "message_envelope"


def field(value):
    if value is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(value)) + value


def envelope(topic=b"orders", key=None, partition=-1, id=None, headers=None, payload=b"{}",
             version=1):
    return (bytes([version]) + field(topic) + field(key) + struct.pack(">i", partition) +
            field(id) + field(headers) + field(payload))


def seeds():
    emitted = envelope(key=b"42", headers=b'{"type": "X"}', payload=b'{"a": 1}')
    contents = [
        emitted,
        envelope(),
        envelope(topic=None),
        envelope(payload=None),
        envelope(key=b"", id=b"evt-1", partition=3, payload=b"\x00\xff\x01"),
        envelope(headers=b'[{"key": "b", "value": "1"}, {"key": "a", "value": null}]'),
        envelope(headers=b'{"n": 1.50, "o": {"a": [1]}, "z": null}'),
        envelope(headers=b"[1]"),
        envelope(headers=b"{"),
        envelope(topic=b"orders/eu"),
        envelope(topic=b""),
        envelope(topic=b"x" * 250),
        envelope(partition=-2),
        envelope(version=2),
        emitted + b"\x00",
        emitted[:20],
        b'{"topic": "orders"}',
        b"",
    ]
    for content in contents:
        for selector in (1, 0, 2):
            yield bytes([selector]) + content
            if content is not emitted:
                break


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for seed in seeds():
        (OUT / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
