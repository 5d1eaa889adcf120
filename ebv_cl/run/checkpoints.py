"""Checkpoints of a running strategy, written after every finished experience, for ``ebv-cl run --resume``.

A checkpoint holds the whole strategy object (model with its head slots and buffers, optimizer, plugins with
their replay buffers, DER logits, LwF teacher, iCaRL exemplars and class means), serialised through
``torch.save`` with the standard pickle (about 50 times faster than ``dill`` on a strategy) and, only when
something in it is not picklable that way (a lambda in a plugin), with ``dill`` as Avalanche's own
``save_checkpoint`` does; loading reads either. Plus the runner's progress: the index of the
next experience, the correct counts so far, the trainable head sizes, the wall time spent and the states of
every random generator. The write is atomic (temporary file, fsync, rename): a kill at any moment leaves the
previous checkpoint or the new one, never a torn file. Attributes that only live during one ``train`` call
(the current experience, its dataloader and minibatch) are left out. The runner saves and loads inside
``ebv_cl.data.sharing.shared_datasets`` with the stream's train and test datasets, so memory items that index
into them are stored as references (a replay checkpoint on Fashion-MNIST: 2.2 MB instead of 62 MB).
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import re
import types
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import CheckpointError

__all__ = ["CheckpointError", "checkpoint_path", "save_checkpoint", "load_checkpoint", "remove_checkpoint"]

FORMAT = 1
_TRANSIENT = ("dataloader", "experience", "adapted_dataset", "mbatch", "mb_output", "loss", "_eval_streams")


def checkpoint_path(folder: str | Path, *, strategy: str, seed: int) -> Path:
    """The checkpoint file of ``strategy`` under ``seed`` inside ``folder``.

    The name is a readable prefix of the strategy's label (at most 48 characters, so any label fits a file
    name) and a SHA-256 of the exact ``(strategy, seed)``, so two labels that read alike (``fc+der`` and
    ``fc der``) never share a file.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", strategy)[:48]
    digest = hashlib.sha256(json.dumps([strategy, int(seed)]).encode("utf-8")).hexdigest()[:16]
    return Path(folder) / f"{slug}-seed{seed}-{digest}.ckpt"


def _pickle_module() -> types.SimpleNamespace:
    """``dill`` with ``recurse=True``: a function pickled by value carries only the globals it uses."""
    import dill

    class Pickler(dill.Pickler):  # type: ignore[misc]
        def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("recurse", True)
            super().__init__(file, *args, **kwargs)

    return types.SimpleNamespace(
        __name__="ebv_cl_dill", Pickler=Pickler, Unpickler=dill.Unpickler, load=dill.load, dump=dill.dump
    )


def _without_transients(strategy: Any) -> Any:
    if not hasattr(strategy, "__dict__"):
        return strategy
    light = copy.copy(strategy)
    for attr in _TRANSIENT:
        if attr in light.__dict__:
            light.__dict__[attr] = None
    return light


def save_checkpoint(
    path: str | Path, *, strategy: Any, state: dict[str, Any], identity: dict[str, Any] | None = None
) -> Path:
    """Atomically write ``strategy`` and the runner's ``state`` to ``path``.

    Args:
        path: The checkpoint file.
        strategy: The strategy object (pickled whole with ``dill``).
        state: Plain, picklable progress of the runner (next experience, counts, RNG states, ...).
        identity: What the checkpoint belongs to (the runner stores strategy label, seed and config digest);
            ``load_checkpoint(..., expect=identity)`` refuses a checkpoint of anything else.

    Returns:
        The path written.
    """
    payload = {"format": FORMAT, "identity": identity, "state": state, "strategy": _without_transients(strategy)}
    try:
        return atomic_write(path, lambda f: _save(payload, f, pickle))
    except (pickle.PicklingError, AttributeError, TypeError):
        # a lambda or local class somewhere in a plugin: dill pickles it by value (slower, so only then)
        module = _pickle_module()
        return atomic_write(path, lambda f: _save(payload, f, module))


class _Writes:
    """A file wrapper that remembers the ``OSError`` of a failed write (torch turns it into a vague RuntimeError)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _save(payload: Any, f: Any, module: Any) -> None:
    """``torch.save``; a failed write raises its own ``OSError`` (ENOSPC, EROFS, ...), not torch's RuntimeError."""
    writes = _Writes(f)
    try:
        torch.save(payload, writes, pickle_module=module)
    except RuntimeError:
        if writes.error is not None:
            raise writes.error from None
        raise


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device | None = None, expect: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Read a checkpoint written by ``save_checkpoint``; ``None`` if ``path`` does not exist.

    Args:
        path: The checkpoint file.
        map_location: Where tensors go (as ``torch.load``).
        expect: The identity the checkpoint must carry (strategy label, seed, config digest); ``None`` skips the
            check.

    Returns:
        ``{"format", "identity", "state", "strategy"}``.

    Raises:
        CheckpointError: if the file cannot be read, is of another format, or belongs to another identity.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, pickle_module=_pickle_module(), map_location=map_location, weights_only=False)
    except Exception as exc:  # any unpickling failure means the file is unusable  # noqa: BLE001
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an ebv-cl checkpoint of format {FORMAT}")
    if expect is not None and payload.get("identity") != expect:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to {payload.get('identity')!r}, not to {expect!r} being resumed; "
            "delete it to restart that strategy run from its first experience"
        )
    return payload


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint once its run's results are written (missing is fine)."""
    Path(path).unlink(missing_ok=True)
