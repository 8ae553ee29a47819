"""Optional TLS: two nodes serving HTTPS with a private CA exchange as over HTTP; a peer without the CA cannot."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.x509.oid import NameOID

from keys.roster import Role, add_participant, new_roster
from node.app import build_app, tls_context
from node.officer_api import OFFICERS
from tests.node.support import FAST_DELIVERY, Federation, wait_for


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA."""
    key = generate_private_key(SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ncpx test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsFederation(Federation):
    """The same federation, every roster URL ``https``."""

    def url(self, pid: str) -> str:
        return f"https://127.0.0.1:{self.ports[pid]}"


async def test_exchange_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    client_tls = ssl.create_default_context(cafile=cert)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_tls)) as session:
        fed = TlsFederation(tmp_path / "fed", session, ["TH", "MY"])
        body = new_roster(fed.authority.public_key(), fed.epoch)
        for pid in fed.ids:
            body = add_participant(body, fed.identities[pid].card(), fed.url(pid), Role.NODE, pid, fed.epoch)
        fed.body = body
        runners: list[web.AppRunner] = []
        tokens: dict[str, str] = {}
        try:
            for pid in fed.ids:
                config = fed.config(pid, delivery=FAST_DELIVERY).model_copy(
                    update={"tls_cert": cert, "tls_key": key, "peer_ca_file": cert}
                )
                app = build_app(config)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(
                    runner, "127.0.0.1", config.listen_port, ssl_context=tls_context(config)
                ).start()
                runners.append(runner)
                tokens[pid] = await app[OFFICERS].add("officer", datetime.now(UTC))
            th, my = fed.url("TH"), fed.url("MY")
            auth = {"Authorization": f"Bearer {tokens['TH']}"}
            enquiry = {
                "recipients": ["MY"],
                "area": "people_smuggling",
                "subject": "Over TLS",
                "text": "Hello through HTTPS.",
            }
            async with session.post(th + "/v1/enquiries", json=enquiry, headers=auth) as response:
                assert response.status == 201
                message_id = (await response.json())["messages"][0]["id"]

            async def delivered() -> bool:
                async with session.get(
                    th + "/v1/messages", params={"folder": "sent"}, headers=auth
                ) as response:
                    items = (await response.json())["items"]
                    return any(i["id"] == message_id and i["state"] == "delivered" for i in items)

            await wait_for(delivered, what="delivery over TLS")
            my_auth = {"Authorization": f"Bearer {tokens['MY']}"}
            async with session.get(f"{my}/v1/messages/{message_id}", headers=my_auth) as response:
                assert (await response.json())["message"]["text"] == "Hello through HTTPS."
            # Without the private CA a client refuses the node's certificate: TLS is really in use.
            async with aiohttp.ClientSession() as plain:
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await plain.get(th + "/livez")
        finally:
            for runner in runners:
                await runner.cleanup()
