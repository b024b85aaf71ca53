"""A stand-in for systemd's NOTIFY_SOCKET: prints each datagram as one JSON line.

Usage: python3 notify-listener.py SOCKET_PATH
Prints {"listening": PATH} once bound, then {"pid": SENDER_PID, "fields": {...}} per message.
Descriptors passed with a message are closed at once: systemd-notify (systemd >= 246)
sends a barrier fd and waits until the listener closes it, up to 5 s.
"""
import array
import json
import os
import socket
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
print(json.dumps({"listening": path}), flush=True)

fd_size = array.array("i").itemsize
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(16 * fd_size) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fd_size])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(payload[0:4], sys.byteorder)
    fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    # The barrier is systemd-notify's handshake, not a state change: systemd never shows it.
    if fields == {"BARRIER": "1"}:
        continue
    print(json.dumps({"pid": pid, "fields": fields}), flush=True)
