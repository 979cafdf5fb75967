"""The floor of serving a request on this machine: a keep-alive HTTP/1.1 server on a raw socket that reads the
whole body and answers a fixed V2 reply, with no framework and no model. Its latency is what the network stack
costs, and, when the client pauses between requests, what an idle gap costs (the cores halt and wake slowly):
bench_serve.py runs it with Forklift's compute time as the pause, to judge Forklift's c=1 latency against it.

  floor_server.py PORT FORKLIFT_PORT MODEL

`forklift bench --model MODEL` probes the server before loading it, so the answers it reads (GET /v2, the model's
metadata and config) are fetched once from the Forklift server at FORKLIFT_PORT and replayed.
"""

import json
import socket
import sys
import urllib.request

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required"}


def response(status, body, extra=b""):
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, REASONS[status], len(body), extra)) + body


def replies(forklift_port, model):
    """The probe's answers, fetched from Forklift, by path."""
    bodies = {}
    for path in ("/v2", f"/v2/models/{model}", f"/v2/models/{model}/config"):
        with urllib.request.urlopen(f"http://127.0.0.1:{forklift_port}{path}", timeout=10) as answer:
            bodies[path] = answer.read()
    # Another name, because forklift bench reads /metrics from a server named forklift, on a second connection
    # that this server would not accept until the load connection closes.
    server = json.loads(bodies["/v2"])
    server["name"] = "floor"
    bodies["/v2"] = json.dumps(server).encode()
    return {path.encode(): response(200, body) for path, body in bodies.items()}


class Connection:
    """One client's requests in turn. The body goes into a buffer allocated once, without building bytes objects:
    a ResNet-18 request is 600 KB."""

    def __init__(self, sock, buffer):
        self.sock = sock
        self.buffer = buffer
        self.pending = b""  # bytes read past the previous request

    def head(self):
        """The next request's head without its CRLFCRLF, or None when the client closes."""
        start = 0
        while (end := self.pending.find(HEAD_END, start)) < 0:
            if len(self.pending) > MAX_HEAD:
                self.sock.sendall(response(400, b'{"error": "request head too long"}', b"Connection: close\r\n"))
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            start = max(len(self.pending) - 3, 0)
            self.pending += chunk
        head = self.pending[:end]
        self.pending = self.pending[end + len(HEAD_END):]
        return head

    def read_body(self, length):
        """Reads `length` bytes of body into the buffer; False when the client closes first."""
        if length > len(self.buffer):
            self.buffer = bytearray(length)
        view = memoryview(self.buffer)
        have = min(len(self.pending), length)
        view[:have] = memoryview(self.pending)[:have]
        self.pending = self.pending[have:]
        while have < length:
            n = self.sock.recv_into(view[have:length])
            if not n:
                return False
            have += n
        return True


def serve(conn, gets, infer_path, answer):
    """Answers requests on one connection until the client closes it."""
    while (head := conn.head()) is not None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            conn.sock.sendall(response(400, b'{"error": "bad request line"}', b"Connection: close\r\n"))
            return
        method, path, version = parts
        length, chunked, close = 0, False, version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                if not value.isdigit():
                    conn.sock.sendall(response(400, b'{"error": "bad Content-Length"}', b"Connection: close\r\n"))
                    return
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"connection":
                close = b"close" in value or (close and b"keep-alive" not in value)
        if chunked:
            conn.sock.sendall(response(411, b'{"error": "send a Content-Length"}', b"Connection: close\r\n"))
            return
        if not conn.read_body(length):
            return
        if method == b"POST":
            reply = answer if path == infer_path else response(404, b'{"error": "not found"}')
        else:
            reply = gets.get(path) or response(404, b'{"error": "not found"}')
        conn.sock.sendall(reply)
        if close:
            return


def main():
    port, forklift_port, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    gets = replies(forklift_port, model)
    output = {"name": "output", "datatype": "FP32", "shape": [1, 1], "data": [0.0]}
    answer = response(200, json.dumps({"model_name": model, "outputs": [output]}).encode(), b"Server-Timing: compute;dur=0\r\n")
    infer_path = f"/v2/models/{model}/infer".encode()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    buffer = bytearray(4 << 20)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, buffer)
        try:
            serve(conn, gets, infer_path, answer)
        except OSError:
            pass  # a reset connection: drop the client, keep serving
        finally:
            buffer = conn.buffer
            sock.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
