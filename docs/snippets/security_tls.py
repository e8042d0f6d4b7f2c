"""TLS between two nodes, with certificates from your own certificate authority.

Usage: python docs/snippets/security_tls.py CERT_DIR
CERT_DIR holds ca.pem, and node-a.pem/node-a.key and node-b.pem/node-b.key, node certificates
signed by that CA and valid for the address the nodes listen on (here 127.0.0.1).
"""

import asyncio
import ssl
import sys
from pathlib import Path

from actors import ActorSystem


# --8<-- [start:contexts]
def tls_contexts(ca: Path, cert: Path, key: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The context a node listens with, and the one it dials with."""
    # Listening: present this node's certificate, and require the dialer to present one
    # signed by our CA (mutual TLS), so only holders of a node certificate get a handshake.
    listen = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    listen.load_cert_chain(cert, key)
    listen.verify_mode = ssl.CERT_REQUIRED
    # Dialing: check the listener's certificate against our CA and the dialled host name,
    # and present this node's certificate when asked.
    dial = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    dial.load_cert_chain(cert, key)
    return listen, dial


# --8<-- [end:contexts]


async def main(certs: Path) -> None:
    # --8<-- [start:nodes]
    cookie = b"read me from a secret store"
    listen_a, dial_a = tls_contexts(certs / "ca.pem", certs / "node-a.pem", certs / "node-a.key")
    listen_b, dial_b = tls_contexts(certs / "ca.pem", certs / "node-b.pem", certs / "node-b.key")

    async with (
        ActorSystem("node-a", port=0, cookie=cookie, ssl=listen_a, dial_ssl=dial_a) as node_a,
        ActorSystem("node-b", port=0, cookie=cookie, ssl=listen_b, dial_ssl=dial_b) as node_b,
    ):
        uri = node_b.info()  # None only before start()
        assert uri is not None
        peer = await node_a.connect(uri)
        print("node-a connected to", peer, "over TLS")  # node-a connected to node-b over TLS
    # --8<-- [end:nodes]


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
