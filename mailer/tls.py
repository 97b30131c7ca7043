"""TLS for both mail adapters (intake/imap.py, delivery/smtp.py): certificates are always
verified; a configured CA file replaces the system store (the loopback stack's test CA)."""

from __future__ import annotations

import ssl


def tls_context(ca_file: object) -> ssl.SSLContext:
    """Certificate-verifying context; trusts `ca_file` instead of the system store if given."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl.create_default_context()
