# -*- test-case-name: tests.core.test_tls -*-
"""
The server's TLS certificate: TLS is offered on every protocol from the
first start.

When the base folder holds no certificate, the first start makes a
self-signed one for the Main Domain (RSA 2048, SHA-256, ten years, the
domain and C{localhost} as subject alternative names) in
C{Settings/Certificates/server.pem} (key and certificate, mode 0600).  An
administrator replaces that file with a real certificate (PEM: private key
then the chain) and restarts.  Every listener with C{tls = implicit} wraps
its factory in TLS with this certificate, and the STARTTLS of SMTP, IMAP,
POP3 and XMPP uses the same options (L{ServerTLS.options}).
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

from cgpro.core.files import writeFileAtomically

CERT_FILE = os.path.join("Settings", "Certificates", "server.pem")


def makeSelfSigned(domain, days=3650):
    """
    @return: PEM bytes of a new private key followed by its self-signed
        certificate for C{domain}.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(domain), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


class ServerTLS:
    """
    The certificate and the Twisted TLS options made from it.

    @ivar path: the PEM file.
    @ivar generated: whether this start created it.
    """

    def __init__(self, base, domain):
        self.path = os.path.join(base, CERT_FILE)
        self.generated = False
        if not os.path.exists(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            writeFileAtomically(self.path, makeSelfSigned(domain or "localhost"), mode=0o600)
            self.generated = True
        with open(self.path, "rb") as f:
            pem = f.read()
        certificate = ssl.PrivateCertificate.loadPEM(pem)
        self.options = certificate.options()
        self.pem = pem

    def clientOptions(self, hostname):
        """
        TLS options for a connection this server opens (SIP over TLS to
        another server): the peer's certificate is verified against the
        system's trusted roots for C{hostname}, so TLS to a host without
        a valid certificate fails rather than going out unprotected.
        """
        return ssl.optionsForClientTLS(hostname)

    def wrap(self, factory):
        """
        Wrap a server factory in TLS from the first byte (implicit TLS).
        """
        from twisted.protocols.tls import TLSMemoryBIOFactory

        return TLSMemoryBIOFactory(self.options, False, factory)
