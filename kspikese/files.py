"""Safe files shared by every part of kspikese: atomic writes, JSON, hashes and path checks.

Nothing is ever left half-written: every writer goes to a temporary name in the same folder and
is renamed over the target (``os.replace`` is atomic on POSIX file systems).  Temporary names
are ``.<stem>.kspikese-<pid>-<random>.tmp<suffix>``; a later write into the same folder removes
the ones whose process is gone (a run killed with SIGKILL or a power cut), see
:func:`remove_stale_temporaries`.  Paths given by the user or by a file are checked before they
are used (:func:`output_problem`, :func:`contained_file`, :func:`inside`).  Audio files are read
and written by :mod:`kspikese.audio_io`.
"""

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import numpy as np

TEMP_TAG = "kspikese"  # temporary files are .<stem>.kspikese-<pid>-<random>.tmp<suffix>
_TEMP_RE = re.compile(r"^\..*\.kspikese-(\d+)-[^.]+\.tmp[^/]*$")


def output_problem(path, kind):
    """Why ``path`` cannot be used as an output ``kind`` (``"file"`` or ``"folder"``), or ``None``.

    Checked before any work: every existing part of the path must be a folder (a regular file
    named ``regfile`` makes ``regfile/x`` impossible), an existing ``path`` must be of the right
    kind, and the deepest existing folder must be writable.
    """
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            return f"{path} exists and is not a folder"
        if kind == "file" and path.is_dir():
            return f"{path} is a folder, not a file"
    probe = path if kind == "folder" else path.parent
    probe = Path(os.path.abspath(probe))
    for parent in [probe, *probe.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder, so {path} cannot be created"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"the folder {parent} is not writable"
            return None
    return None


def remove_stale_temporaries(folder):
    """Remove this program's temporary files in ``folder`` whose writing process is gone.

    A temporary file is recognised by its name, ``.<stem>.kspikese-<pid>-<random>.tmp<suffix>``
    (:func:`atomic_path`); it is stale when no process with that id exists on this machine.
    Files of live processes and every other file are left alone.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


_SWEPT = set()  # folders already swept for stale temporaries by this process


def contained_file(folder, name, max_bytes, what):
    """The regular file ``folder/name``, refusing names that lead outside ``folder``.

    ``name`` must be a relative path string; after resolving ``..`` and symlinks it must lie
    inside ``folder`` and be a regular file (not a device, FIFO or folder) of at most
    ``max_bytes`` bytes.

    Raises
    ------
    ValueError
        Naming ``what`` and the problem.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}: expected a file name, got {name!r}")
    if os.path.isabs(name):
        raise ValueError(f"{what}: {name!r} is an absolute path; it must name a file in {folder}")
    root = Path(folder).resolve()
    target = (root / name).resolve()
    try:
        target.relative_to(root)
    except ValueError:
        raise ValueError(f"{what}: {name!r} leads outside the folder {root}") from None
    try:
        info = target.stat()
    except OSError as exc:
        raise ValueError(f"{what}: {target} is missing ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what}: {target} is not a regular file")
    if info.st_size > max_bytes:
        raise ValueError(f"{what}: {target} holds {info.st_size} bytes, more than the "
                         f"{max_bytes} allowed")
    return target


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` defaults to the target's own suffix, so writers that pick a format from the file
    name (soundfile, matplotlib) still do.  The name carries this process's id; the first write
    into a folder removes stale temporaries of dead processes there
    (:func:`remove_stale_temporaries`).  The file gets the permissions a new file gets
    (0666 less the umask, not ``mkstemp``'s 0600).  On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.abspath(path.parent)
    if key not in _SWEPT:
        remove_stale_temporaries(path.parent)
        _SWEPT.add(key)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{TEMP_TAG}-{os.getpid()}-",
                               suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256(path, chunk=1 << 20):
    """The SHA-256 hex digest of the file at ``path``, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def json_safe(obj):
    """``obj`` (nested dicts, lists, tuples) with NaN as ``None`` and ±inf as ``"inf"`` /
    ``"-inf"``, which strict JSON can hold."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented strict JSON (:func:`json_safe`) to ``path`` atomically."""
    write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False,
                                default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def inside(path, folder):
    """Whether ``path`` lies inside ``folder`` (or is it), after resolving symlinks."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False
