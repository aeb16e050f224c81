"""A small test PKI for the TLS tests, made with the `openssl` command line
in a temporary directory (nothing is downloaded or kept).

    pki.ca                       the test CA's certificate (trust it with --cafile)
    pki.cert(name), pki.key(name)   PEM files of one server certificate
    pki.fingerprints(name)       (sha256 of the cert's DER, of its SPKI's DER), hex
    pki.pin(name, spki=False)    "SHA256:<hex>", as rawmail's pins are written

Server certificates (EC P-256; SANs DNS:mx.example.test, IP:127.0.0.1,
IP:::1 unless said otherwise):
    mx            signed by the test CA
    wildcard      signed by the test CA, DNS:*.example.test only
    wrongname     signed by the test CA, DNS:wrong.example.test only (no IP)
    expired       signed by the test CA, valid in 2020 only
    selfsigned    self-signed
    untrusted     signed by a second CA that nobody trusts

The `pki` fixture (session scope) builds them once; building takes a
fraction of a second.  Test modules use it with `from tls_util import pki`.
"""

import hashlib
import subprocess
from pathlib import Path

import pytest

SERVER_NAME = "mx.example.test"
DEFAULT_SAN = f"DNS:{SERVER_NAME},IP:127.0.0.1,IP:::1"

# `openssl ca` and not `openssl x509 -req`: OpenSSL 3.0's x509 command
# cannot set a validity period in the past, and the expired certificate
# needs one.
CA_CONFIG = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied
"""

SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {san}
"""


def openssl(*args, input=None):
    p = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n"
                           f"{p.stderr.decode(errors='replace')}")
    return p.stdout


def _new_key_args(key):
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key]


class TestPKI:
    __test__ = False     # a helper, not a test class for pytest

    def __init__(self, directory):
        self.dir = Path(directory)
        self.ca = self._make_ca("ca", "rawmail test CA")
        self.other_ca = self._make_ca("other-ca", "rawmail untrusted test CA")
        self._issue("mx", "ca")
        self._issue("wildcard", "ca", san="DNS:*.example.test", cn="*.example.test")
        self._issue("wrongname", "ca", san="DNS:wrong.example.test", cn="wrong.example.test")
        self._issue("expired", "ca", startdate="20200101000000Z", enddate="20200102000000Z")
        self._issue("untrusted", "other-ca")
        self._self_signed("selfsigned")

    def cert(self, name):
        return self.dir / f"{name}.pem"

    def key(self, name):
        return self.dir / f"{name}.key"

    def der(self, name):
        return openssl("x509", "-in", self.cert(name), "-outform", "DER")

    def spki_der(self, name):
        pem = openssl("x509", "-in", self.cert(name), "-noout", "-pubkey")
        return openssl("pkey", "-pubin", "-outform", "DER", input=pem)

    def fingerprints(self, name):
        """(SHA-256 of the certificate's DER, of its SubjectPublicKeyInfo's DER), hex."""
        return (hashlib.sha256(self.der(name)).hexdigest(),
                hashlib.sha256(self.spki_der(name)).hexdigest())

    def pin(self, name, spki=False):
        return "SHA256:" + self.fingerprints(name)[1 if spki else 0]

    def openssl_fingerprint(self, name):
        """What `openssl x509 -fingerprint -sha256` prints after its "=":
        upper-case colon-separated pairs."""
        out = openssl("x509", "-in", self.cert(name), "-noout", "-fingerprint", "-sha256")
        return out.decode().strip().partition("=")[2]

    def server_args(self, name):
        """rawmail serve options to present this certificate."""
        return ["--tls-cert", self.cert(name), "--tls-key", self.key(name)]

    def _make_ca(self, name, cn):
        d = self.dir / name
        (d / "newcerts").mkdir(parents=True)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        (d / "ca.cnf").write_text(CA_CONFIG.format(dir=d))
        openssl("req", "-x509", *_new_key_args(d / "ca.key"), "-out", d / "ca.pem",
                "-subj", f"/CN={cn}", "-days", "30",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return d / "ca.pem"

    def _issue(self, name, ca, san=DEFAULT_SAN, cn=SERVER_NAME, startdate=None, enddate=None):
        d = self.dir / ca
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        ext.write_text(SERVER_EXT.format(san=san))
        openssl("req", "-new", *_new_key_args(self.key(name)), "-out", csr, "-subj", f"/CN={cn}")
        dates = []
        if startdate:
            dates += ["-startdate", startdate]
        if enddate:
            dates += ["-enddate", enddate]
        openssl("ca", "-batch", "-notext", "-config", d / "ca.cnf", "-in", csr,
                "-out", self.cert(name), "-extfile", ext, *dates)

    def _self_signed(self, name, san=DEFAULT_SAN, cn=SERVER_NAME):
        openssl("req", "-x509", *_new_key_args(self.key(name)), "-out", self.cert(name),
                "-subj", f"/CN={cn}", "-days", "30",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", f"subjectAltName={san}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return TestPKI(tmp_path_factory.mktemp("pki"))
