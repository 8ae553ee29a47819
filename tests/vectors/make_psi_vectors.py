"""Write ``psi-v1.json``: fixed secrets and tokens in, every element and digest of one matching session out.

Run from the repository root: ``.venv/bin/python -m tests.vectors.make_psi_vectors``. The test
``tests/protocol/test_psi.py`` recomputes every output from the inputs stored in the file. The construction is
specified in ``protocol/PSI.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol import psi

FILE = Path(__file__).resolve().parent / "psi-v1.json"

INPUTS: dict[str, Any] = {
    "asker_random": "a1" * 64,
    "answerer_random": "b2" * 64,
    "asker_tokens": [
        "phone:+66812345678",
        "person:an nguyen van|1984-03-07|VN",
        "vessel:imo:9074729",
        "document:A12345678",
    ],
    "answerer_tokens": [
        "vessel:imo:9074729",
        "account:iban:GB82WEST12345698765432",
        "phone:+66812345678",
    ],
}


def compute(inputs: dict[str, Any]) -> dict[str, Any]:
    """Every output, from the inputs alone."""
    asker = psi.secret(bytes.fromhex(inputs["asker_random"]))
    answerer = psi.secret(bytes.fromhex(inputs["answerer_random"]))
    tokens, theirs = inputs["asker_tokens"], inputs["answerer_tokens"]
    blinded = psi.blind(tokens, asker)
    answered = psi.answer(blinded, answerer)
    own = psi.pack_digests(psi.digests(theirs, answerer))
    unblinded = psi.unblind(answered, asker)
    return {
        "asker_scalar": asker.scalar.hex(),
        "answerer_scalar": answerer.scalar.hex(),
        "hash_to_group": {token: psi.hash_to_group(token).hex() for token in tokens + theirs},
        "blinded": psi.pack_points(blinded).hex(),
        "answer": psi.pack_points(answered).hex(),
        "answerer_digests": own.hex(),
        "unblinded_digests": b"".join(unblinded).hex(),
        "intersection": psi.intersect(tokens, unblinded, psi.unpack_digests(own)),
    }


def main() -> None:
    document = {
        "description": "ncpx private set intersection v1 (ristretto255) test vectors; see protocol/PSI.md",
        "inputs": INPUTS,
        "outputs": compute(INPUTS),
    }
    FILE.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
