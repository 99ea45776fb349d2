"""Atomic file output and safe loading.

Every artifact is written to a temporary file in the destination folder, flushed and fsynced, then
moved into place with :func:`os.replace`, so a failed or killed stage never leaves a half-written file
at a final path (the temporary file of a killed writer is removed by the next write of that path).
Torch files are loaded with ``weights_only=True`` and written byte-deterministically (equal objects,
equal bytes: DVC sees an unchanged output as unchanged).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd  # imported where used: the library core (models, training) runs without pandas


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, fsync (unless ``fsync=False``: the rename alone
    is atomic against a killed process, fsync adds durability against power loss) and rename it onto
    ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; final files get the usual mode
    try:
        yield tmp_path
        if fsync:
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _remove_stale_temps(path: Path) -> None:
    """Delete the temporary files a killed process left beside ``path`` (``.<name>.<pid>.<random>.tmp``
    whose process is gone): a SIGKILL skips the clean-up above, and a stray file inside a folder that a
    later stage depends on would change that folder's hash."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: Any) -> None:
    """Deterministic JSON: sorted keys, 2-space indent, trailing newline."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(path: str | Path, df: "pd.DataFrame") -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_parquet(path: str | Path) -> "pd.DataFrame":
    import pandas as pd

    return pd.read_parquet(path)


def write_csv(path: str | Path, df: "pd.DataFrame") -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def save_arrays(path: str | Path, arrays: dict[str, Any]) -> None:
    """NumPy arrays (and numbers) by name into one ``.npz`` file, byte-identical for equal arrays (sorted
    names, fixed zip timestamps: equal content, equal DVC hash), without importing torch."""
    import zipfile

    import numpy as np

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            array = np.asarray(arrays[name])          # 0-d stays 0-d (np.ascontiguousarray would make it 1-d)
            with archive.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, array if array.flags.c_contiguous else array.copy(order="C"),
                                          allow_pickle=False)


def load_arrays(path: str | Path) -> dict[str, Any]:
    """The arrays of a :func:`save_arrays` file by name (never unpickling anything); a missing or unreadable
    file is a :class:`~gnnrec.errors.DataError` naming it."""
    import zipfile

    import numpy as np

    from gnnrec.errors import DataError

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError("required file is missing", file=str(path)) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"not a readable .npz file of arrays ({type(exc).__name__}: {str(exc)[:200]}); rerun the "
                        f"stage that writes it", file=str(path)) from None


def save_torch(path: str | Path, obj: Any, fsync: bool = True) -> None:
    """Save plain tensors / dicts / numbers (loadable with ``weights_only=True``)."""
    import torch

    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as fh:
        # to a file object, not a path: torch names the archive's records after a path ("<temp name>/data.pkl"),
        # after a file object "archive/...", so equal objects give byte-identical files (and equal DVC hashes)
        torch.save(obj, fh)


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never arbitrary pickled
    objects. A file that is not such a checkpoint (truncated, foreign, or carrying code) is a
    :class:`~gnnrec.errors.DataError` naming it."""
    import pickle
    import zipfile

    import torch

    from gnnrec.errors import DataError

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError("required file is missing", file=str(path)) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, KeyError,
            AttributeError, TypeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
        detail = next((ln for ln in lines if not ln.startswith(boilerplate)), type(exc).__name__)
        raise DataError(f"not a loadable checkpoint: expected a torch file of tensors and plain values only, "
                        f"loaded with weights_only=True ({detail[:300]}); rerun the stage that writes it",
                        file=str(path)) from None
