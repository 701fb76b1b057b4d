"""Writing output files atomically: whole or not at all.

Every writer goes to a temporary file in the destination's folder (same file system, so the final
:func:`os.replace` is an atomic rename) and renames it over the destination only once the write has finished. A run
that fails, or is killed, part way leaves the previous file untouched (or no file) and never a truncated one; a failed
write removes its temporary file. Atomic against a process that dies, not against a power cut (no ``fsync``).

Temporary names are ``<stem>.<pid>-<random>.tmp<ext>``: they keep the extension (numpy's ``savez`` and GDAL pick the
format from it) and end with ``.tmp<ext>``, so a reader listing a folder can tell them from finished files.
"""
import contextlib
import json
import os
import secrets


def temporary_path(path):
    """A fresh temporary name beside ``path`` (see the module docstring)."""
    folder, name = os.path.split(os.fspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f'{stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{ext}')


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path to write in place of ``path``; renamed to ``path`` when the block ends without an error.

    For writers that take a path (rasterio, numpy, ``save_pretrained``-style functions). The folder must exist.

    Args:
        path (str | os.PathLike): The destination.

    Yields:
        str: The temporary path.
    """
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, os.fspath(path))
    finally:
        if os.path.lexists(tmp):  # the block failed (or wrote nothing the rename could take)
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path, encoding='utf-8'):
    """A text file to write in place of ``path``; ``path`` appears (or is replaced) only when the block succeeds.

    Args:
        path (str | os.PathLike): The destination; its folder must exist.
        encoding (str): Text encoding.

    Yields:
        io.TextIOWrapper: The open temporary file.
    """
    with atomic_path(path) as tmp, open(tmp, 'x', encoding=encoding) as f:
        yield f


def write_text_atomic(path, text, encoding='utf-8'):
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, encoding) as f:
        f.write(text)


def write_json_atomic(path, data, indent=2, ensure_ascii=False, **kwargs):
    """Write ``data`` as JSON (newline-terminated) to ``path`` atomically; ``kwargs`` go to :func:`json.dump`."""
    with atomic_open(path) as f:
        json.dump(data, f, indent=indent, ensure_ascii=ensure_ascii, **kwargs)
        f.write('\n')
