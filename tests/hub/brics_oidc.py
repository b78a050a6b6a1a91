"""TEST DOUBLE of the OIDC issuer (Keycloak behind Zenith) for BricsAuthenticator.

The real issuer cannot run here, so this serves the two documents
BricsAuthenticator's login handler fetches, on a private loopback port:

  GET {issuer}/.well-known/openid-configuration -> {"issuer", "jwks_uri",
                                                     "id_token_signing_alg_values_supported"}
  GET {issuer}/protocol/openid-connect/certs    -> the JWKS (one RSA public key)

and signs ID tokens with the matching private key (RS256, ``kid`` in the
header), carrying the claims the handler requires: ``aud``, ``exp``, ``iss``,
``iat``, ``short_name``, ``projects``. Everything else (fetching, PyJWT's
PyJWKClient, the signature and claim checks, the ``X-Auth-Id-Token`` header,
the projects -> auth_state transformation) is bricsauthenticator's own code.

Only Debian's python3-jwt and python3-cryptography.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["OidcIssuer", "projects_claim"]


def projects_claim(accounts: Dict[str, str], platform: str, other_platform: Optional[str] = None) -> dict:
    """The JWT's ``projects`` claim as the BriCS portal shapes it.

    ``accounts``: {"proj1.brics": "alice.proj1", ...}, each a project with a
    resource on ``platform`` run by that account. With ``other_platform``,
    one more project whose only resource is elsewhere (the hub must not
    offer it).
    """
    claim = {
        project: {"name": "Project " + project.partition(".")[0],
                  "resources": [{"name": platform, "username": account}]}
        for project, account in accounts.items()
    }
    if other_platform:
        claim["elsewhere.brics"] = {"name": "Elsewhere only",
                                    "resources": [{"name": other_platform, "username": "nobody.elsewhere"}]}
    return claim


class OidcIssuer:
    """A loopback OIDC issuer; ``with OidcIssuer() as issuer: issuer.token(...)``."""

    def __init__(self, host: str = "127.0.0.1", realm: str = "realms/ssb-test"):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.requests: List[str] = []  # paths served, in order (what the hub fetched)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                issuer.requests.append(self.path)
                body = issuer._document(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet: the test prints what matters
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://{host}:{port}/{realm}"  # the issuer (``iss``, oidc_server)
        self._path = f"/{realm}"
        self._thread: Optional[threading.Thread] = None

    # -------------------------------------------------------------- server

    def _document(self, path: str):
        if path == self._path + "/.well-known/openid-configuration":
            return {
                "issuer": self.url,
                "jwks_uri": self.url + "/protocol/openid-connect/certs",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if path == self._path + "/protocol/openid-connect/certs":
            jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
            jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
            return {"keys": [jwk]}
        return None

    def start(self) -> "OidcIssuer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> "OidcIssuer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- tokens

    def token(self, short_name: str, projects: dict, audience: str, lifetime: float = 600.0,
              **extra) -> str:
        """A signed ID token as the issuer would give Zenith for this user."""
        now = int(time.time())
        claims = {"iss": self.url, "aud": audience, "iat": now, "exp": now + int(lifetime),
                  "sub": uuid.uuid4().hex, "short_name": short_name, "projects": projects}
        claims.update(extra)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
