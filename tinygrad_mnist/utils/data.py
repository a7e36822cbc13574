"""Datasets and the sample-wise `DataLoader`, as `torch.utils.data`.

A `Dataset` is anything with `__getitem__(index)` and `__len__()`; `TensorDataset`,
`Subset` and `random_split` build them. `DataLoader(dataset, batch_size=1,
shuffle=False, ...)` has PyTorch's arguments and defaults: it collects `batch_size`
samples and joins them with `collate_fn` (by default `default_collate`, which stacks
tensors and arrays into a Tensor with a new first dimension, turns numbers into tensors
and keeps the structure of tuples and dicts). Shuffling draws a new order every epoch
from `generator`, or from the default generator (`tg.manual_seed`).

Loading happens in the calling process: `pin_memory`, `timeout`, `prefetch_factor`
and `persistent_workers` are accepted and change nothing, and `num_workers` > 0 starts no
worker processes (`worker_init_fn` is never called): the first such loader of a process
says so in one `UserWarning`, and the batches are the ones PyTorch's workers would give,
in the same order. For arrays already in memory, `tinygrad_mnist.data.DataLoader`
batches by one gather per batch and is much faster.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import (Any, Callable, Generic, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, TypeVar, Union)

import numpy as np

from ..random import generator_or_default
from ..tensor import Tensor, as_tensor, stack

T_co = TypeVar("T_co", covariant=True)
#: Whether this process has been told that `num_workers` starts no processes.
_workers_warned = False


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define `__getitem__(index)` and `__len__()`."""

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not define __len__")


class TensorDataset(Dataset):
    """Samples are the rows of tensors (or arrays) of the same length:
    `TensorDataset(x, y)[i]` is `(x[i], y[i])`."""

    def __init__(self, *tensors: Any):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.tensors = tuple(as_tensor(t) for t in tensors)
        sizes = {len(t.data) for t in self.tensors}
        if len(sizes) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors: first "
                             f"dimensions {[len(t.data) for t in self.tensors]}")

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0].data)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[Union[int, float]],
                 generator: Optional[np.random.Generator] = None) -> List[Subset]:
    """Split `dataset` at random into subsets of the given `lengths`, or of the given
    fractions of its length (the remainder spread one by one from the first subset,
    as PyTorch does)."""
    n = len(dataset)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) \
            and sum(lengths) != n:
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(length) for length in lengths]
    if sum(sizes) != n or min(sizes, default=0) < 0:
        raise ValueError(f"random_split: the lengths {list(lengths)} do not add up to the "
                         f"dataset's length {n}")
    order = generator_or_default(generator).permutation(n).tolist()
    splits, start = [], 0
    for size in sizes:
        splits.append(Subset(dataset, order[start:start + size]))
        start += size
    return splits


def default_convert(sample: Any) -> Any:
    """One sample as `DataLoader(batch_size=None)` yields it: arrays become Tensors,
    tuples become lists, dicts and lists are converted inside; the rest is kept."""
    if isinstance(sample, np.ndarray):
        return Tensor(sample)
    if isinstance(sample, Mapping):
        return {key: default_convert(value) for key, value in sample.items()}
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(default_convert(value) for value in sample))
    if isinstance(sample, (tuple, list)):
        return [default_convert(value) for value in sample]
    return sample


def default_collate(batch: Sequence[Any]) -> Any:
    """Join a list of samples into a batch: tensors and arrays are stacked along a new
    first dimension (a Tensor), Python ints become an int64 tensor, floats a float64
    one and bools a bool one; tuples and lists give a list, dicts a dict, of the
    joined fields; strings stay a list."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(t.requires_grad for t in batch):
            return stack(batch)
        return Tensor(np.stack([t.data for t in batch]))
    if isinstance(elem, (np.ndarray, np.generic)):
        return Tensor(np.stack(batch))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        if len({len(sample) for sample in batch}) != 1:
            raise RuntimeError("default_collate: each sample in a batch needs the same "
                               "number of fields")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: cannot join samples of type {type(elem).__name__}; "
                    f"give a collate_fn")


def _warn_no_workers(num_workers: int) -> None:
    """One UserWarning per process: `num_workers` is accepted, but nothing runs in
    worker processes."""
    global _workers_warned
    if _workers_warned:
        return
    _workers_warned = True
    warnings.warn(f"DataLoader: num_workers={num_workers} starts no worker processes here; "
                  f"batches are loaded in the calling process (the same batches in the same "
                  f"order, worker_init_fn is not called). Pass num_workers=0 to silence this "
                  f"warning.", UserWarning, stacklevel=3)


class DataLoader:
    """Iterate over `dataset` in batches (see the module docstring).

    `shuffle=True` draws a new order every epoch; `sampler` (an iterable of indices)
    or `batch_sampler` (an iterable of index lists) choose the order instead;
    `drop_last=True` drops a last, smaller batch; `batch_size=None` yields single
    samples (through `default_convert`, or `collate_fn` if given)."""

    def __init__(self, dataset: Dataset, batch_size: Optional[int] = 1, shuffle: bool = False,
                 sampler: Optional[Iterable[int]] = None,
                 batch_sampler: Optional[Iterable[List[int]]] = None, num_workers: int = 0,
                 collate_fn: Optional[Callable[[List[Any]], Any]] = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Optional[Callable[[int], Any]] = None,
                 generator: Optional[np.random.Generator] = None, *,
                 prefetch_factor: Optional[int] = None, persistent_workers: bool = False):
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        if num_workers > 0:
            _warn_no_workers(num_workers)
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, "
                             f"got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.drop_last, self.generator = drop_last, generator
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.num_workers, self.pin_memory = num_workers, pin_memory
        if batch_sampler is not None:
            self.batch_size = None

    def _indices(self) -> Iterable[int]:
        if self.sampler is not None:
            return self.sampler
        n = len(self.dataset)
        if self.shuffle:
            return generator_or_default(self.generator).permutation(n).tolist()
        return range(n)

    def _batches(self) -> Iterator[List[int]]:
        if self.batch_sampler is not None:
            yield from self.batch_sampler
            return
        batch: List[int] = []
        for index in self._indices():
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self) -> Iterator[Any]:
        if self.batch_size is None and self.batch_sampler is None:
            convert = default_convert if self.collate_fn is default_collate else self.collate_fn
            for index in self._indices():
                yield convert(self.dataset[index])
            return
        fast = (isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
                and not any(t.requires_grad for t in self.dataset.tensors))
        for indices in self._batches():
            if fast:  # the same batch as collating the samples, in one gather per tensor
                rows = np.asarray(indices)
                yield [Tensor(t.data[rows]) for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[i] for i in indices])

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)  # type: ignore
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
