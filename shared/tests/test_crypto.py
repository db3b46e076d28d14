from __future__ import annotations

import base64
import os

import pytest

from verzuimhub_shared.crypto import DecryptionError, Pseudonymiser, Sealer, parse_keys


def test_pseudonyms_link_within_a_purpose_and_not_across() -> None:
    p = Pseudonymiser("secret")
    assert p.pseudonym("123456782", "melding") == p.pseudonym("123456782", "melding")
    assert p.pseudonym("123456782", "melding") != p.pseudonym("123456782", "swv-aggregate")
    assert p.pseudonym("123456782", "melding") != Pseudonymiser("other").pseudonym(
        "123456782", "melding"
    )
    assert "123456782" not in p.pseudonym("123456782", "melding")


def test_a_pseudonym_is_hmac_sha256_under_the_purposes_derived_key() -> None:
    """Pseudonyms are stored (keys of pupils): the value must never change with how it is
    computed (copied pads, the base64 library)."""
    import hashlib
    import hmac

    from verzuimhub_shared.crypto import _derive, _key_bytes

    key = _derive(_key_bytes("secret"), "pseudonym:melding")
    for value in ["123456782", "", "é" * 40, *(str(i) for i in range(100))]:
        digest = hmac.digest(key, value.encode(), hashlib.sha256)[:24]
        expected = base64.urlsafe_b64encode(digest).decode()
        assert Pseudonymiser("secret").pseudonym(value, "melding") == expected


def test_sealed_text_round_trips_and_rotates() -> None:
    old = Sealer({"k1": "one"}, "k1")
    sealed = old.seal("123456782", context="pgn")
    assert "123456782" not in sealed
    assert sealed.startswith("k1.")
    rotated = Sealer({"k1": "one", "k2": "two"}, "k2")
    assert rotated.open(sealed, context="pgn") == "123456782"
    assert rotated.open_bytes(sealed, context="pgn") == b"123456782"
    assert rotated.seal("x").startswith("k2.")


@pytest.mark.parametrize("size", [0, 1, 2, 3, 17, 600, 4096])
def test_sealed_text_is_standard_base64_and_what_was_sealed_urlsafe_opens(size: int) -> None:
    """Sealed values are stored: what is sealed now is the standard library's text
    (standard alphabet, padded), and what was sealed with the URL-safe alphabet (before
    2026-11-27) still opens, whichever of its characters it holds."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from verzuimhub_shared.crypto import _derive, _key_bytes

    sealer = Sealer({"k1": "one"}, "k1")
    aead = AESGCM(_derive(_key_bytes("one"), "seal"))
    plaintext = os.urandom(size).hex()[:size] + "é"
    urlsafe_own = 0
    for _ in range(20):  # some hold "-" or "_", or "+" or "/", some neither
        nonce = os.urandom(12)
        raw = nonce + aead.encrypt(nonce, plaintext.encode(), b"c")
        for encode in (base64.urlsafe_b64encode, base64.b64encode):
            text = encode(raw).decode()
            assert sealer.open(f"k1.{text}", context="c") == plaintext
            assert sealer.open_bytes(f"k1.{text}", context="c") == plaintext.encode()
            urlsafe_own += encode is base64.urlsafe_b64encode and ("-" in text or "_" in text)
    assert urlsafe_own  # the URL-safe alphabet's own characters were met (p ≈ 1 - 1e-11)

    kid, _, blob = sealer.seal(plaintext, context="c").partition(".")
    assert kid == "k1"
    raw = base64.b64decode(blob, validate=True)
    assert base64.b64encode(raw).decode() == blob
    assert aead.decrypt(raw[:12], raw[12:], b"c").decode() == plaintext


def test_tampering_and_wrong_context_fail() -> None:
    sealer = Sealer({"k1": "one"}, "k1")
    sealed = sealer.seal("123456782", context="pgn")
    with pytest.raises(DecryptionError):
        sealer.open(sealed, context="note")
    kid, _, blob = sealed.partition(".")
    flipped = blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1]
    with pytest.raises(DecryptionError):
        sealer.open(f"{kid}.{flipped}", context="pgn")
    with pytest.raises(DecryptionError):
        sealer.open_bytes(f"{kid}.{flipped}", context="pgn")
    with pytest.raises(DecryptionError):
        Sealer({"k9": "nine"}, "k9").open(sealed, context="pgn")


def test_a_plaintext_that_is_not_text_opens_as_bytes_only() -> None:
    """What seal() seals is text; bytes sealed otherwise open as bytes, and as text fail
    as a decryption does (the caller asked for text), not with a decoding error."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from verzuimhub_shared.crypto import _derive, _key_bytes

    sealer = Sealer({"k1": "one"}, "k1")
    nonce = os.urandom(12)
    raw = nonce + AESGCM(_derive(_key_bytes("one"), "seal")).encrypt(nonce, b"\xff\xfe", b"c")
    sealed = f"k1.{base64.b64encode(raw).decode()}"
    assert sealer.open_bytes(sealed, context="c") == b"\xff\xfe"
    with pytest.raises(DecryptionError, match="UTF-8"):
        sealer.open(sealed, context="c")


def test_sealed_binary_is_the_text_without_its_base64() -> None:
    """ADR 0031: a feed row's body is sealed binary, ``<kid>.`` then the nonce and the
    ciphertext as they are: what a stored text becomes by decoding its base64 (revision
    0006 of ingest, 0009 of melding), and opens as the text did."""
    sealer = Sealer({"k1": "one", "k2": "two"}, "k2")
    sealed = sealer.seal_binary("Zoë 123456782".encode(), context="melding")
    assert sealed.startswith(b"k2.")
    assert b"123456782" not in sealed
    assert sealer.open_binary(sealed, context="melding") == "Zoë 123456782".encode()
    kid, _, blob = sealer.seal("Zoë", context="melding").partition(".")
    assert sealer.open_binary(f"{kid}.".encode() + base64.b64decode(blob), "melding") == (
        "Zoë".encode()
    )
    rotated = Sealer({"k2": "two", "k3": "three"}, "k3")
    assert rotated.open_binary(sealed, context="melding") == "Zoë 123456782".encode()
    with pytest.raises(DecryptionError):
        sealer.open_binary(sealed, context="gemeente")
    with pytest.raises(DecryptionError):
        sealer.open_binary(sealed[:-1] + bytes([sealed[-1] ^ 1]), context="melding")
    with pytest.raises(DecryptionError, match="unknown key id"):
        Sealer({"k9": "nine"}, "k9").open_binary(sealed, context="melding")
    with pytest.raises(ValueError, match="key id"):
        Sealer({"k.1": "one"}, "k.1")


def test_key_spec_parsing() -> None:
    assert parse_keys("a=1, b=2") == {"a": "1", "b": "2"}
    with pytest.raises(ValueError, match="kid=secret"):
        parse_keys("nokey")


def test_a_pseudonym_is_hmac_sha256_of_the_purpose_key() -> None:
    """Stored pseudonyms must stay valid: the precomputed pads give exactly RFC 2104."""
    import base64
    import hashlib
    import hmac

    from verzuimhub_shared.crypto import _derive, _key_bytes

    key = _derive(_key_bytes("secret"), "pseudonym:melding")
    p = Pseudonymiser("secret")
    for value in ("123456782", "", "é" * 80):
        expected = hmac.new(key, value.encode(), hashlib.sha256).digest()[:24]
        assert p.pseudonym(value, "melding") == base64.urlsafe_b64encode(expected).decode()
