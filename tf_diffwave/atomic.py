"""Outputs that appear whole or not at all: a file or folder is written under a temporary name beside its final
one and renamed when complete; an error or an interruption (Ctrl-C, SIGTERM) removes what was begun."""

import contextlib
import os
import shutil

from tf_diffwave.errors import UserError


def partial_name(path):
    """The temporary name beside `path` that its writer uses until it is complete (x.wav: x.partial.wav)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    return os.path.join(folder, f"{stem}.partial{extension}" if extension else f".{name}.partial")


@contextlib.contextmanager
def whole_file(path):
    """Yield the temporary path to write `path` at; on leaving without error it becomes `path`."""
    partial = partial_name(path)
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    try:
        yield partial
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise
    os.replace(partial, path)


@contextlib.contextmanager
def whole_folder(path):
    """Yield a temporary folder to fill; on leaving without error it becomes `path`, which must be absent or an
    empty folder."""
    if os.path.isdir(path) and os.listdir(path):
        raise UserError(f"{path}: already holds files; write into a new or empty folder")
    partial = partial_name(path)
    shutil.rmtree(partial, ignore_errors=True)  # left by a process that was killed outright
    os.makedirs(partial)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
    os.rename(partial, path)
