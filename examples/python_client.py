#!/usr/bin/python3
"""Talk to troupe actors from Python: a client of a node's gateway.

    python_client.py ENDPOINT NAME [--server-key=KEY --key-file=FILE]

ENDPOINT is where a troupe node listens (its `listen` option), over tcp or
ipc: tcp://127.0.0.1:7000 or ipc:///run/user/1000/app.sock. NAME is a
registered actor there. With CURVE (the default for troupe's tcp), give the
node's public key and a secret key file of ours (`troupe keygen` makes
both; our public key must be in the node's cluster file). Write the key
with '=' (--server-key=KEY): a z85 key may begin with '-'.

It asks NAME "inc" [41] and prints the answer, then tells it "note"
["hello from python"]. Everything it does is in docs/protocol.md: a frame
is a 40-byte little-endian header, the tag, a NUL and msgpack values; the
gateway handshake is a "$hello" answered by a "$welcome". Needs Debian's
python3-zmq and python3-msgpack, nothing else.

The Python it replaces: a multiprocessing.connection.Client talking pickle
to one Python server; here any language that has ZeroMQ and msgpack talks
to C actors, over the network, encrypted.
"""
import argparse
import os
import random
import struct
import sys
import time

import msgpack
import zmq

MAGIC, VERSION = 0x54, 1
F_REQUEST, F_REPLY, F_ERROR, F_SYSTEM = 1, 2, 4, 8
HEADER = struct.Struct("<BBBBiQQQQ")  # 40 bytes
TAG_SHIFT = 44


def frame(tag, values=(), flags=0, code=0, sender=0, target=0, corr=0,
          deadline_left_ns=0):
    """One troupe frame: header, tag, NUL, msgpack values back to back."""
    t = tag.encode()
    head = HEADER.pack(MAGIC, VERSION, flags, len(t), code, sender, target,
                       corr, deadline_left_ns)
    return head + t + b"\0" + b"".join(msgpack.packb(v) for v in values)


def parse(data):
    """(flags, code, sender, target, corr, tag, [values]) of a frame."""
    magic, ver, flags, taglen, code, sender, target, corr, _ = \
        HEADER.unpack_from(data)
    if magic != MAGIC or ver != VERSION:
        raise ValueError("not a troupe frame")
    tag = data[40:40 + taglen].decode()
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[41 + taglen:])
    return flags, code, sender, target, corr, tag, list(unpacker)


class Client:
    """A node that does not listen: the gateway answers on our connection."""

    def __init__(self, endpoint, server_key=None, secret_key=None):
        self.ctx = zmq.Context.instance()
        self.name = "py-%d-%d" % (os.getpid(), random.randrange(1 << 30))
        self.tag = random.randrange(2, 1 << 20)
        self.me = (self.tag << TAG_SHIFT) | 1  # our one id
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, self.name.encode())
        self.sock.setsockopt(zmq.LINGER, 1000)  # the $bye goes out
        if server_key:
            public = zmq.curve_public(secret_key)
            self.sock.curve_serverkey = server_key
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret_key
        self.sock.connect(endpoint)
        self.corr = 0
        self.last_sent = 0.0
        self.hello()

    def send(self, box, data):
        self.sock.send_multipart([box, data])
        self.last_sent = time.monotonic()

    def hello(self, timeout=10.0):
        nonce = random.randrange(1, 1 << 62) | 1
        gw = (self.tag << TAG_SHIFT) | 2
        self.send(b"C", frame("$hello", [1, self.name, self.tag, "", gw,
                                         nonce]))
        until = time.monotonic() + timeout
        while True:
            box, data = self.recv(until)
            if box != b"C":
                continue
            _, _, _, _, _, tag, v = parse(data)
            if tag == "$welcome" and v[5] == nonce:
                self.node, self.node_gw = v[1], v[4]
                return

    def recv(self, until):
        """The next [box, frame] from the node; pings it meanwhile."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the node")
            if time.monotonic() - self.last_sent > 0.5:
                self.send(b"C", frame("$ping"))  # or it thinks we are gone
            if self.sock.poll(min(left, 0.5) * 1000):
                box, data = self.sock.recv_multipart()
                return box, data

    def ask(self, target, tag, values=(), timeout=5.0, system_tag=False):
        self.corr += 1
        self.send(b"M", frame(tag, values, F_REQUEST, sender=self.me,
                              target=target, corr=self.corr,
                              deadline_left_ns=int(timeout * 1e9)))
        until = time.monotonic() + timeout
        while True:
            box, data = self.recv(until)
            if box == b"C":
                continue
            flags, code, _, _, corr, rtag, v = parse(data)
            if flags & F_SYSTEM:  # a DOWN: the actor (or its node) is gone
                raise RuntimeError("actor gone: %r" % (v,))
            if flags & F_REPLY and corr == self.corr:
                if flags & F_ERROR:
                    raise RuntimeError("error reply, code %d" % code)
                return rtag, v

    def tell(self, target, tag, values=()):
        self.send(b"M", frame(tag, values, sender=self.me, target=target))

    def close(self):
        """Say we leave, so the node forgets us at once."""
        self.send(b"C", frame("$bye"))
        self.sock.close()

    def whereis(self, name):
        _, v = self.ask(self.node_gw, "$whereis", [name])
        return v[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("endpoint")
    ap.add_argument("name")
    ap.add_argument("--server-key", help="the node's public key (z85)")
    ap.add_argument("--key-file", help="our secret key file (z85)")
    a = ap.parse_args()
    secret = None
    if a.server_key:
        with open(a.key_file) as f:
            secret = f.read().strip().encode()
    c = Client(a.endpoint, a.server_key and a.server_key.encode(), secret)
    print("connected to node %s" % c.node)
    actor = c.whereis(a.name)
    print("%s is %x" % (a.name, actor))
    tag, values = c.ask(actor, "inc", [41])
    print("ask %s: %s %s" % (a.name, tag, values))
    c.tell(actor, "note", ["hello from python"])
    tag, values = c.ask(actor, "inc", [1])  # after the tell, in order
    print("told %s, then ask: %s %s" % (a.name, tag, values))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
