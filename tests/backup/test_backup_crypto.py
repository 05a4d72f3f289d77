"""Chunked authenticated encryption, compression codecs and key loading."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path

import pytest

from readykit.backup import auth
from readykit.backup.codec import COMPRESSIONS, compressor, decompressor
from readykit.backup.crypto import Key, Opener, Sealer, load_key
from readykit.backup.datafile import pack, unpack
from readykit.backup.errors import BackupError, IntegrityFailure, WrongKeyError

KEY = Key(b"k" * 40, "test")


def _seal(data: bytes, chunk: int, key: Key = KEY) -> bytes:
    sealer = Sealer(key, chunk_size=chunk)
    out = b"".join(sealer.update(data[i : i + 7]) for i in range(0, len(data), 7))
    return out + sealer.finish()


def _open(blob: bytes, key: Key = KEY) -> bytes:
    opener = Opener(key)
    out = b"".join(opener.update(blob[i : i + 5]) for i in range(0, len(blob), 5))
    return out + opener.finish()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_round_trip_at_and_around_chunk_boundaries(size: int) -> None:
    data = secrets.token_bytes(size)
    assert _open(_seal(data, chunk=64)) == data


def test_wrong_key_is_named_as_such() -> None:
    blob = _seal(b"secret rows", chunk=64)
    with pytest.raises(WrongKeyError, match="wrong key"):
        _open(blob, Key(b"x" * 40, "other"))


def test_flipped_bit_fails_authentication() -> None:
    blob = bytearray(_seal(b"a" * 300, chunk=64))
    blob[-40] ^= 1
    with pytest.raises(IntegrityFailure, match="failed authentication") as info:
        _open(bytes(blob))
    assert info.value.step == "decrypt"


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    # Dropping the last whole chunk leaves a stream that ends on a chunk sealed as "not last".
    blob = _seal(b"b" * 256, chunk=64)
    sealed = 64 + 16
    with pytest.raises(IntegrityFailure):
        _open(blob[:-sealed])


@pytest.mark.parametrize("name", COMPRESSIONS)
def test_codecs_round_trip(name: str) -> None:
    data = b"row,row,row\n" * 10_000
    comp, dec = compressor(name), decompressor(name)
    packed = comp.update(data) + comp.finish()
    assert dec.update(packed) + dec.update(b"") + dec.finish() == data


@pytest.mark.parametrize("name", ["zstd", "gzip"])
def test_truncated_compressed_stream_fails_in_unpack(name: str, tmp_path: Path) -> None:
    data = secrets.token_bytes(50_000)
    buffer = io.BytesIO()
    pack([data], buffer, name, None)
    path = tmp_path / "cut.rkb"
    cut = buffer.getvalue()[:-10]
    path.write_bytes(cut)
    with pytest.raises(IntegrityFailure) as info:
        unpack(path, io.BytesIO(), name, None, (hashlib.sha256(cut).hexdigest(), len(cut)))
    assert info.value.step == "decompress"


def test_key_from_file_wins_over_environment(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("f" * 44 + "\n")
    key = load_key(path, {"READYKIT_BACKUP_KEY": "e" * 44})
    assert key is not None
    assert key.material == b"f" * 44
    from_env = load_key(None, {"READYKIT_BACKUP_KEY": "e" * 44})
    assert from_env is not None
    assert from_env.origin == "$READYKIT_BACKUP_KEY"
    assert load_key(None, {}) is None


def test_short_or_missing_key_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="too short"):
        load_key(None, {"READYKIT_BACKUP_KEY": "hunter2"})
    with pytest.raises(BackupError, match="cannot read key file"):
        load_key(tmp_path / "missing", {})


def test_macs_depend_on_key_purpose_and_every_byte() -> None:
    mac = auth.sign(KEY, "manifest", b'{"id":"x"}')
    assert auth.is_valid(KEY, "manifest", b'{"id":"x"}', mac)
    assert not auth.is_valid(KEY, "config", b'{"id":"x"}', mac)
    assert not auth.is_valid(KEY, "manifest", b'{"id":"y"}', mac)
    assert not auth.is_valid(Key(b"x" * 40, "other"), "manifest", b'{"id":"x"}', mac)
    assert not auth.is_valid(KEY, "manifest", b'{"id":"x"}', None)
    assert not auth.is_valid(KEY, "manifest", b'{"id":"x"}', "not hex")
    # The MAC key is derived for this purpose: it is neither the key nor its public id.
    assert mac != KEY.id
