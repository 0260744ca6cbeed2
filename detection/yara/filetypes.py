"""The ``filetype`` external variable: a file's type from its first bytes.

Rule sets written for LOKI/THOR compare ``filetype`` with names such as
``"EXE"``, ``"ELF"``, ``"PDF"``, ``"PHP"`` or ``"JSP"`` (for example to flag a
file whose extension lies about its content). Magic numbers come first; script
types are told from the extension and the opening of the text.
"""

from __future__ import annotations

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "EXE"),
    (b"\x7fELF", "ELF"),
    (b"\xfe\xed\xfa\xce", "MACH-O"), (b"\xfe\xed\xfa\xcf", "MACH-O"),
    (b"\xce\xfa\xed\xfe", "MACH-O"), (b"\xcf\xfa\xed\xfe", "MACH-O"),
    (b"%PDF", "PDF"),
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"{\\rtf", "RTF"),
    (b"MDMP", "MDMP"),
    (b"PK\x03\x04", "ZIP"),
    (b"Rar!", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "7Z"),
    (b"\x1f\x8b", "GZIP"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"),
    (b"PMDM", "LSASS Dump File"),
)

_SCRIPT_EXTENSIONS = {
    ".php": "PHP", ".php3": "PHP", ".php4": "PHP", ".php5": "PHP", ".phtml": "PHP",
    ".asp": "ASP", ".aspx": "ASP", ".ashx": "ASP", ".asmx": "ASP", ".asa": "ASP",
    ".jsp": "JSP", ".jspx": "JSP",
    ".vbs": "VBS", ".vbe": "VBS",
    ".bat": "BATCH", ".cmd": "BATCH",
    ".py": "Python",
}


def file_type(head: bytes, extension: str) -> str:
    """The type name of a file from its first bytes and its extension (``.php``)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    by_extension = _SCRIPT_EXTENSIONS.get(extension)
    if by_extension:
        return by_extension
    opening = head[:512].lstrip().lower()
    if opening.startswith(b"<?php"):
        return "PHP"
    if opening.startswith(b"<%@") and b"java" in opening:
        return "JSP"
    if opening.startswith(b"#!") and b"python" in opening[:64]:
        return "Python"
    return ""
