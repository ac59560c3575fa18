"""The accept loop and command dispatch of the scripted FTP servers used by the integration tests."""
import socket
import threading


def serve_forever(addr, handler, *args):
    """Listen on addr port 21 and run handler(conn, *args) in a thread per connection."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 21))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,) + args, daemon=True).start()


def dispatch(conn, greeting, handle):
    """Greet, then hand each command line to handle(verb, line); it returns True if it answered.

    What it leaves is answered here: USER 331, PASS 230, QUIT 221 (and the end), anything else 500.
    """
    conn.sendall(greeting)
    for raw in conn.makefile("rb"):
        verb = raw[:4].decode("latin-1").upper()
        if handle(verb, raw):
            continue
        if verb == "USER":
            conn.sendall(b"331 any password\r\n")
        elif verb == "PASS":
            conn.sendall(b"230 logged in\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 bye\r\n")
            break
        else:
            conn.sendall(b"500 unknown command\r\n")
    conn.close()
