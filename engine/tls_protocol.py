"""TLS for berthd's TCP listeners, with the half-close attach needs.

A client that ends a container's stdin over TLS sends close_notify and goes on reading the
output (Go's tls.Conn.CloseWrite: the docker CLI does this for `docker run -i` with piped
input). asyncio's SSL protocol treats close_notify as the end of the whole connection: it tells
the application eof_received() and then shuts the session down whatever the application
answers, so the container's output would be cut off. This subclass keeps the session open for
writing when the application asks to (eof_received() returning True, as the attach parser
does), as asyncio does for plain TCP; OpenSSL allows writing after the peer's close_notify.

A refused handshake also sends its alert before the connection closes (asyncio drops it), so
that the client can say why: "certificate required", "unknown ca", "certificate expired".

It overrides three private methods of asyncio.sslproto.SSLProtocol (Python 3.11's, unchanged
through 3.13); where they are missing, listeners fall back to asyncio's own TLS, and a
half-close over TLS then ends the attach.
"""
from __future__ import annotations

from asyncio import sslproto

SUPPORTED = (hasattr(sslproto, "AppProtocolState") and all(
    hasattr(sslproto.SSLProtocol, name) for name in ("_call_eof_received", "_start_shutdown")))


class HalfCloseSSLProtocol(sslproto.SSLProtocol):
    _keep_open_once = False

    def _call_eof_received(self):
        if self._app_state != sslproto.AppProtocolState.STATE_CON_MADE:
            return
        self._app_state = sslproto.AppProtocolState.STATE_EOF
        try:
            keep_open = self._app_protocol.eof_received()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:
            self._fatal_error(ex, "Error calling eof_received()")
            return
        # the read path calls _start_shutdown() right after this: skip that one call
        self._keep_open_once = bool(keep_open)

    def _start_shutdown(self):
        if self._keep_open_once:
            self._keep_open_once = False
            return
        super()._start_shutdown()

    def _on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            try:
                self._process_outgoing()      # the alert, written before the abort
            except Exception:
                pass
        super()._on_handshake_complete(handshake_exc)
