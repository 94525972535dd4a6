"""Expected user errors in a config: one last line naming the file and line, no chained traceback.

jsonargparse wraps an invalid value met while building a class from YAML (a typo in a reward
name, an unknown scheme) in two or three layers of "Does not validate against any of the Union
subtypes", ~120 lines in all. :func:`config_error` digs out the original error and finds the
config line holding the value it quotes.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path


class ConfigError(ValueError):
    """An invalid value in the configs of a command; the message names file and line where known."""


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of a ``raise ... from`` / ``during handling`` chain."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    return err


def locate(message: str, files: list[str]) -> str | None:
    """``<file> line <n>``: the first config line holding a value the message quotes (longest first)."""
    quoted = sorted(set(re.findall(r"(?<!\w)'([^'\n]{2,}?)'(?!\w)", message)), key=len, reverse=True)
    code = {file: [line.split("#")[0] for line in _lines(file)] for file in files} if quoted else {}
    for value in quoted:
        for file, lines in code.items():
            for number, line in enumerate(lines, 1):
                if value in line:
                    return f"{file} line {number}"
    return None


def _lines(file: str) -> list[str]:
    """The file's lines; none if it cannot be read (the error is about the config, not this file)."""
    try:
        return Path(file).read_text().splitlines()
    except OSError:
        return []


def config_error(err: BaseException, files: list[str]) -> ConfigError:
    """A :class:`ConfigError` for ``err``: the original message, where in the configs, where raised."""
    root = root_cause(err)
    where = locate(str(root), files) or (f"configs: {', '.join(files)}" if files else "the command line")
    frame = traceback.extract_tb(root.__traceback__)[-1] if root.__traceback__ else None
    origin = f" ({type(root).__name__} at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return ConfigError(f"{where}: {root}{origin}")
