"""The platform's message cipher: AES-256-CBC, PKCS#7, key = SHA-256(password), fixed IV.

This is the wire format of the Node.js sailor (``lib/encryptor.js``) and sailor-jvm; the IV is
the 16-byte ``ELASTICIO_MESSAGE_CRYPTO_IV`` string, the same for every message. It is not how
we would design encryption, but steps of both runtimes share one flow, so it is fixed.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 16


class CipherError(ValueError):
    """Bytes that are not a message of this flow (wrong key, truncated, not encrypted)."""


class MessageCipher:
    def __init__(self, password: str, iv: str) -> None:
        key = hashlib.sha256(password.encode()).digest()
        vector = iv.encode()
        if len(vector) != _BLOCK:
            raise ValueError("the crypto IV must be exactly 16 bytes")
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(vector))

    def encrypt(self, plaintext: bytes) -> bytes:
        # PKCS#7 by hand: the library's padder objects cost more than the padding itself.
        fill = _BLOCK - len(plaintext) % _BLOCK
        encryptor = self._cipher.encryptor()
        return encryptor.update(plaintext + bytes((fill,)) * fill) + encryptor.finalize()

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % _BLOCK:
            raise CipherError("not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        fill = padded[-1]
        if not 1 <= fill <= _BLOCK or padded[-fill:] != bytes((fill,)) * fill:
            raise CipherError("bad padding: wrong key or not encrypted by this flow")
        return padded[:-fill]
