"""Download a file atomically: stream to a temporary file, check its MD5, then rename into place.

Nothing that looks complete is ever left behind by a failed, corrupt or interrupted download: the
temporary file (a dot-file next to the destination) is removed on any error, including Ctrl-C.
Downloaders of one destination take an exclusive lock on ``.<name>.lock`` beside it: a second one waits,
then finds the file the first fetched; the one holding the lock removes the ``.part`` files of
downloaders that died (SIGKILL), which are named with their pid.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from softmax_exp.data.errors import DataError
from softmax_exp.util.atomic import atomic_path, exclusive_lock, remove_dead_leftovers

CHUNK_BYTES = 1 << 20


def file_md5(path: Path) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url: str, dest: Path, md5: str | None, progress: bool = True) -> Path:
    """Fetch ``url`` (http(s):// or file://) to the file ``dest``; returns dest.

    Holds the lock ``.<name>.lock`` beside dest throughout. A dest already there that matches ``md5``
    (fetched by a process this one waited for) is kept as it is. The bytes go to a temporary file in
    dest's folder (``.<name>.<pid>@<host>.part``) with a tqdm progress bar (when stderr is a terminal);
    the MD5 (if given) is checked before the file is renamed into place; on any failure, Ctrl-C included,
    the temporary file is removed. Raises DataError on any failure.
    """
    from tqdm import tqdm

    folder = dest.parent
    if folder.exists() and not folder.is_dir():
        raise DataError(f"download folder {folder} is a file; choose a folder with --root")
    with ExitStack() as stack:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(dest.with_name(f".{dest.name}.lock")))
        except OSError as e:
            raise DataError(f"cannot download into {folder}: {e.strerror or e}; choose another "
                            "folder with --root") from e
        remove_dead_leftovers(folder, f".{dest.name}.", ".part")
        if md5 and dest.is_file() and file_md5(dest) == md5.lower():
            return dest
        tmp = stack.enter_context(atomic_path(dest, suffix=".part"))
        out = stack.enter_context(open(tmp, "wb"))
        try:
            response = urllib.request.urlopen(url, timeout=60)
        except (urllib.error.URLError, ValueError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise DataError(f"cannot download {url}: {reason}; check the URL") from e
        digest, received = hashlib.md5(), 0
        length = int(response.headers.get("Content-Length") or 0)
        bar = tqdm(total=length or None, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                   disable=None if progress else True)  # None: off when stderr is not a terminal
        try:
            with response, bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise DataError(f"download of {url} failed after {received} bytes ({e}); retry") from e
        if length and received != length:
            raise DataError(f"download of {url} stopped at {received} of {length} bytes; retry")
        out.flush()  # atomic_path fsyncs and renames the file when the block ends without an error
        actual = digest.hexdigest()
        if md5 and actual != md5.lower():
            raise DataError(
                f"MD5 mismatch for {url}: expected {md5.lower()}, got {actual}; the "
                "download is corrupt or --url/--md5 are wrong (nothing was kept)"
            )
    return dest
