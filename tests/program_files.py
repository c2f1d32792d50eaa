"""Programs and documents for upload tests: real programs from this machine where one exists, real archives made
with zipfile, and an OLE compound file written to the format (no Windows Installer package exists on a Linux test
machine, so one is built: a minimal valid OLE file whose root entry has the installer's class)."""
from __future__ import annotations

import importlib.util
import io
import shutil
import struct
import uuid
import zipfile
from pathlib import Path

import pytest


def elf_program() -> bytes:
    """A real Linux program: ls."""
    return Path(shutil.which("ls") or "/bin/ls").read_bytes()


def shell_script() -> bytes:
    """A real shell script shipped with the system (ldd starts with #!/bin/bash)."""
    for candidate in ("ldd", "zgrep", "gunzip", "which"):
        found = shutil.which(candidate)
        if found and Path(found).read_bytes()[:2] == b"#!":
            return Path(found).read_bytes()
    pytest.fail("no shebang script found on this machine")


def windows_program() -> bytes:
    """A real Windows program: the launchers pip (distlib) and setuptools ship for Windows."""
    for package, under in (("pip", "_vendor/distlib"), ("setuptools", "")):
        spec = importlib.util.find_spec(package)  # found, not imported
        if spec is None or spec.origin is None:
            continue
        for exe in sorted((Path(spec.origin).parent / under).glob("*.exe")):
            return exe.read_bytes()
    pytest.skip("no Windows program (pip's or setuptools' launchers) on this machine")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def jar() -> bytes:
    return _zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nMain-Class: Main\r\n\r\n",
                 "Main.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34"})


def apk() -> bytes:
    return _zip({"AndroidManifest.xml": b"\x03\x00\x08\x00", "classes.dex": b"dex\n035\x00",
                 "META-INF/CERT.RSA": b"0"})


def docx() -> bytes:
    """An Office Open XML document: a zip, but no program."""
    return _zip({"[Content_Types].xml": b'<?xml version="1.0"?><Types/>', "_rels/.rels": b"<Relationships/>",
                 "word/document.xml": b"<w:document/>", "docProps/app.xml": b"<Properties/>"})


def odt() -> bytes:
    """An OpenDocument text: its META-INF/manifest.xml is not a Java manifest."""
    return _zip({"mimetype": b"application/vnd.oasis.opendocument.text",
                 "META-INF/manifest.xml": b"<manifest:manifest/>", "content.xml": b"<office:document-content/>"})


def zip_of_photos(png: bytes) -> bytes:
    return _zip({"zdjecia/ekran.png": png, "zdjecia/obudowa.png": png})


def zip_with_a_program() -> bytes:
    return _zip({"zdjecia/ekran.png": b"\x89PNG\r\n\x1a\n", "zdjecia/pokaz.exe": windows_program()})


WINDOWS_INSTALLER = "000C1084-0000-0000-C000-000000000046"
WORD_97 = "00020906-0000-0000-C000-000000000046"


def ole_file(root_class: str) -> bytes:
    """A minimal valid OLE compound file (512-byte sectors: header, one FAT sector, one directory sector) whose
    root entry has the given class: the installer's for a .msi, Word's for a .doc."""
    end, free, fat_sector, no_stream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16)
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    fat = struct.pack("<II", fat_sector, end) + struct.pack("<I", free) * 126
    name = "Root Entry".encode("utf-16-le") + b"\x00\x00"
    root = (name.ljust(64, b"\x00") + struct.pack("<HBB", len(name), 5, 1)
            + struct.pack("<III", no_stream, no_stream, no_stream) + uuid.UUID(root_class).bytes_le
            + bytes(4 + 16) + struct.pack("<IQ", end, 0))
    unused = bytes(64) + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", no_stream, no_stream, no_stream) \
        + bytes(16 + 4 + 16) + struct.pack("<IQ", 0, 0)
    return header + fat + root + unused * 3
