"""Trajectory shards: the on-disk WebDataset format and an atomic shard writer (the reader: ``unigen.data.reader``).

Format version 1 (see docs/trajectories.md). One sample per trajectory, key ``<prompt_id>_<idx>``:
``prompt.txt``, ``reasoning.txt``, ``image_tokens.npy`` (int64, raster order, empty = no image),
optional ``png``, and ``json`` (everything else, including ``rewards`` and ``format_version``).
Format version 2 (written only for a trajectory with later turns) adds, for each turn k >= 1,
``turn<k>.txt`` (the reflection), ``turn<k>.npy`` (its image, empty = none) and optional
``turn<k>.png``, and ``turns`` (their number) in ``json``. Format version 3 (written only for a
continuous image payload) stores ``image_tokens.npy`` (and ``turn<k>.npy``) as a 2-D float32
``(N, C)`` array of latent tokens (BAGEL); everything else as in 1 or 2. Readers accept all three.

Shards are ``<prefix>-%06d.tar`` in one folder (the naming rule: :func:`shard_name` writes it,
:func:`parse_shard_name` reads it back, :func:`shard_pattern` globs it; :func:`expand_shards` finds
the shards a setting names). Each is written to a temporary name and renamed
when complete, then recorded in ``<prefix>-index.json`` (shard file -> sample count; optional
per-shard ``skipped`` and ``counts``), itself
replaced atomically (by the processes of a stage writing one folder in turn, under
``<prefix>-index.lock``); a restarted job keeps the shards listed there (verified first:
``unigen.data.shardmap``) and never sees a half shard.
"""

from __future__ import annotations

import fcntl
import glob
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from unigen.data.sequence import BadSample, check_turns
from unigen.data.trajectory import Trajectory, Turn
from unigen.files import atomic_write_bytes
from unigen.scale import ranks

FORMAT_VERSIONS = (1, 2, 3)
"""Versions this reader knows. A trajectory without later turns is written as version 1 (byte-identical
to what earlier unigen wrote, and readable by it); version 2 only when it has later turns."""
INDEX_VERSION = 1
JSON_FIELDS = ("prompt_id", "sample_idx", "category", "metadata", "mode", "generation", "model", "rewards")


SHARD_NAME = re.compile(r"(.*)-(\d+)\.tar")


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}.tar"


def parse_shard_name(path: str | Path) -> tuple[str, int]:
    """(prefix, number) of a shard named ``<prefix>-<number>.tar``; ``ValueError`` for any other name."""
    match = SHARD_NAME.fullmatch(Path(path).name)
    if not match:
        raise ValueError(f"shard '{path}' is not named <prefix>-<number>.tar")
    return match[1], int(match[2])


def shard_pattern(prefix: str) -> str:
    """The file-name glob of every shard named with ``prefix``."""
    return f"{prefix}-*.tar"


def expand_shards(patterns: Iterable[str] | str, option: str = "shards", numbered: bool = False) -> list[str]:
    """Shard paths from paths, folders (their ``*.tar``), brace patterns (``a-{000000..000009}.tar``)
    and globs, in order (each pattern's matches sorted).

    ``option`` names the setting in errors: ``FileNotFoundError`` naming the pattern (or folder)
    that matches no file, ``ValueError`` when the list is empty or, ``numbered``, when a shard is
    not named ``<prefix>-<number>.tar`` (a shard-to-shard stage's input: the number names its output).
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    if not patterns:
        raise ValueError(f"{option}: no shard patterns given (empty shard list)")
    out: list[str] = []
    for pattern in patterns:
        matched = [p for expanded in wds.shardlists.expand_urls(pattern) for p in _matches(expanded)]
        if not matched:
            raise FileNotFoundError(f"{option}: shard pattern '{pattern}' matches no file")
        out += matched
    if numbered:
        for path in out:
            parse_shard_name(path)
    return out


def _matches(pattern: str) -> list[str]:
    """A folder's ``*.tar`` files, or the files a glob matches, sorted."""
    if os.path.isdir(pattern):
        return sorted(str(p) for p in Path(pattern).glob("*.tar"))
    return sorted(glob.glob(pattern))


def index_path(out_dir: str | Path, prefix: str) -> Path:
    return Path(out_dir) / f"{prefix}-index.json"


def is_continuous(payload: np.ndarray) -> bool:
    """A non-empty floating-point image payload (latents, format 3)."""
    return len(payload) > 0 and np.issubdtype(np.asarray(payload).dtype, np.floating)


def npy_bytes(payload: np.ndarray) -> bytes:
    """.npy bytes of an image payload: int64 ids, or float32 latents (format 3)."""
    buf = io.BytesIO()
    dtype = np.float32 if is_continuous(payload) else np.int64
    np.save(buf, np.asarray(payload, dtype=dtype), allow_pickle=False)
    return buf.getvalue()


def format_version(traj: Trajectory) -> int:
    """3 for a continuous image payload, else 2 for later turns, else 1 (the oldest a reader needs)."""
    if any(is_continuous(turn.image_tokens) for turn in traj.all_turns()):
        return 3
    return 2 if traj.turns else 1


def to_sample(traj: Trajectory) -> dict[str, Any]:
    """A trajectory as a WebDataset sample of bytes fields (:func:`format_version`)."""
    meta = {name: getattr(traj, name) for name in JSON_FIELDS}
    meta["format_version"] = format_version(traj)
    if traj.turns:
        meta["turns"] = len(traj.turns)
    sample = {
        "__key__": traj.key,
        "prompt.txt": traj.prompt.encode(),
        "reasoning.txt": traj.reasoning.encode(),
        "image_tokens.npy": npy_bytes(traj.image_tokens),
        "json": json.dumps(meta, sort_keys=True).encode(),
    }
    if traj.png is not None:
        sample["png"] = traj.png
    for k, turn in enumerate(traj.turns, start=1):
        sample[f"turn{k}.txt"] = turn.text.encode()
        sample[f"turn{k}.npy"] = npy_bytes(turn.image_tokens)
        if turn.png is not None:
            sample[f"turn{k}.png"] = turn.png
    return sample


_NPY_1D = re.compile(rb"\{'descr': '([<>|]?[iu][1248])', 'fortran_order': False, 'shape': \((\d+),\), \}\s*\n")


def load_npy(data: bytes) -> np.ndarray:
    """``np.load`` of an .npy file, with a fast path for the 1-D integer arrays this format writes
    (``np.load`` parses every header with ``ast.literal_eval``, ~80 us)."""
    if data[:8] == b"\x93NUMPY\x01\x00":
        length = int.from_bytes(data[8:10], "little")
        match = _NPY_1D.fullmatch(data[10 : 10 + length])
        if match and len(data) == 10 + length + int(match[2]) * int(match[1][-1:]):
            return np.frombuffer(data, dtype=match[1].decode(), offset=10 + length)
    return np.load(io.BytesIO(data), allow_pickle=False)


REQUIRED_FIELDS = ("json", "prompt.txt", "reasoning.txt", "image_tokens.npy")


def _check_rewards(rewards: Any) -> None:
    if not isinstance(rewards, dict) or not all(isinstance(v, dict) for v in rewards.values()):
        raise BadSample("bad_json", f"rewards must map modality -> {{name: value}}, got {rewards!r}")
    for modality, named in rewards.items():
        for name, value in named.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BadSample("bad_reward", f"reward {modality}/{name} = {value!r} is not a finite number")


def _tokens(sample: dict[str, Any], member: str, version: int) -> np.ndarray:
    """The image payload of ``member``: 1-D int ids, or (format 3) a 2-D float32 latent array."""
    try:
        tokens = load_npy(sample[member])
    except (ValueError, OSError, EOFError) as err:
        raise BadSample("bad_tokens", f"{member} unreadable: {err}") from err
    if version == 3 and tokens.ndim == 2 and tokens.dtype == np.float32:
        return tokens
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        wanted = "a 1-D int array or a 2-D float32 array" if version == 3 else "a 1-D int array"
        raise BadSample("bad_tokens", f"{member} must be {wanted} (format {version}), got {tokens.dtype} {tokens.shape}")
    return tokens.astype(np.int64)


def _text(sample: dict[str, Any], member: str) -> str:
    try:
        return sample[member].decode()
    except UnicodeDecodeError as err:
        raise BadSample("bad_text", f"{member} is not UTF-8: {err}") from err


def _turns(sample: dict[str, Any], count: Any, first_has_image: bool, version: int) -> list[Turn]:
    """The later turns of a version-2 sample; every turn but the last follows an image and has one."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BadSample("bad_turns", f"json 'turns' must be an integer >= 1, got {count!r}")
    missing = [f"turn{k}.{ext}" for k in range(1, count + 1) for ext in ("txt", "npy") if f"turn{k}.{ext}" not in sample]
    if missing:
        raise BadSample("missing_member", f"no {', '.join(missing)} (json says {count} turns)")
    turns = [Turn(_text(sample, f"turn{k}.txt"), _tokens(sample, f"turn{k}.npy", version), sample.get(f"turn{k}.png"))
             for k in range(1, count + 1)]
    check_turns([first_has_image] + [t.has_image for t in turns])
    return turns


def from_sample(sample: dict[str, Any]) -> Trajectory:
    """Parse raw (bytes) fields back into a trajectory (the PNG stays bytes, never decoded).

    Raises :class:`BadSample` with reason ``missing_member``, ``bad_json``, ``format_version``,
    ``bad_reward`` (NaN / inf / non-numeric), ``bad_tokens``, ``bad_text`` or ``bad_turns``.
    """
    missing = [name for name in REQUIRED_FIELDS if name not in sample]
    if missing:
        raise BadSample("missing_member", f"no {', '.join(missing)} (has {sorted(k for k in sample if k[:2] != '__')})")
    try:
        meta = json.loads(sample["json"])
        fields = {name: meta[name] for name in JSON_FIELDS}
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as err:
        raise BadSample("bad_json", f"unreadable json: {err!r}") from err
    version = meta.get("format_version")
    if version not in FORMAT_VERSIONS:
        raise BadSample("format_version", f"{version!r}, this reader knows {FORMAT_VERSIONS}")
    _check_rewards(fields["rewards"])
    tokens = _tokens(sample, "image_tokens.npy", version)
    has_turns = version == 2 or (version == 3 and "turns" in meta)
    turns = _turns(sample, meta.get("turns"), len(tokens) > 0, version) if has_turns else []
    return Trajectory(prompt=_text(sample, "prompt.txt"), reasoning=_text(sample, "reasoning.txt"),
                      image_tokens=tokens, png=sample.get("png"), turns=turns, **fields)


def read_index(out_dir: str | Path, prefix: str) -> dict[str, Any]:
    """The shard index of ``out_dir``: ``shards`` (file name -> sample count), ``skipped`` (file
    name -> {reason: count} of input samples a shard-to-shard stage dropped) and ``counts`` (file
    name -> a stage's own {name: count} for that shard); empty when absent."""
    path = index_path(out_dir, prefix)
    if not path.exists():
        return {"shards": {}, "skipped": {}, "counts": {}}
    try:
        index = json.loads(path.read_text())
        return {"shards": dict(index["shards"]), "skipped": dict(index.get("skipped", {})),
                "counts": dict(index.get("counts", {}))}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"shard index '{path}' is unreadable: {err!r}") from None


def finished_shards(out_dir: str | Path, prefix: str) -> dict[str, int]:
    """Shard file name -> sample count, for every shard completed in ``out_dir``."""
    return read_index(out_dir, prefix)["shards"]


def write_shard(out_dir: str | Path, prefix: str, index: int, trajectories: list[Trajectory],
                skipped: dict[str, int] | None = None, counts: dict[str, int] | None = None) -> Path:
    """Write one complete shard atomically and record it in the index (with the ``skipped``
    {reason: count} of the input it was made from and the stage's own ``counts`` for it, if any:
    recorded in the same write as the shard, so they are never lost to a kill). Returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / shard_name(prefix, index)
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as stream, wds.TarWriter(stream, mtime=0) as sink:
        for traj in trajectories:
            sink.write(to_sample(traj))
    os.replace(tmp, final)
    with index_lock(out, prefix):
        current = read_index(out, prefix)
        current["shards"][final.name] = len(trajectories)
        for field, value in (("skipped", skipped), ("counts", counts)):
            current[field].pop(final.name, None)
            if value:
                current[field][final.name] = dict(sorted(value.items()))
        payload: dict[str, Any] = {"format_version": INDEX_VERSION, "shards": dict(sorted(current["shards"].items()))}
        payload.update({f: dict(sorted(current[f].items())) for f in ("skipped", "counts") if current[f]})
        atomic_write_bytes(index_path(out, prefix), json.dumps(payload, indent=1).encode())
    return final


def index_lock_path(out_dir: str | Path, prefix: str) -> Path:
    return Path(out_dir) / f"{prefix}-index.lock"


@contextmanager
def index_lock(out_dir: Path, prefix: str) -> Iterator[None]:
    """Held while the index is updated, where the processes of a stage write one folder
    (``unigen.scale.ranks``; ``unigen.data.shardmap.finish_shards`` removes the lock file)."""
    if ranks.current().world == 1:
        yield
        return
    with open(index_lock_path(out_dir, prefix), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remove_partial_shards(out_dir: str | Path, prefix: str) -> list[Path]:
    """Delete leftovers of a killed writer: ``*.tar.tmp`` files and final-named shards missing from the index."""
    out = Path(out_dir)
    done = finished_shards(out, prefix)
    stale = list(out.glob(shard_pattern(prefix) + ".tmp"))
    stale += [p for p in out.glob(shard_pattern(prefix)) if p.name not in done]
    for path in stale:
        path.unlink()
    return stale
