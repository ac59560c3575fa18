"""The accept loop of the scripted FTP servers used by the integration tests."""
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
