"""Splitting a plan's large elementwise statements over threads (`compile_step(threads=N)`).

Matrix products already use every BLAS thread; the rest of a step (im2col's gathering
copy, col2im's adds, pooling, batch norm, ReLU masks) is NumPy elementwise work on one
core. NumPy releases the GIL inside such a call, so the same call on two halves of its
arrays runs on two cores at once. A statement

    add(l4_grad_padded_0, l4_grad_cols_0, out=l4_grad_padded_0)

of at least `MIN_ELEMENTS` outputs becomes

    parallel(job_7)  # add(l4_grad_padded_0, l4_grad_cols_0, out=l4_grad_padded_0)

where `job_7` holds the same call on each thread's slice of the arrays, cut along the
output's outermost axis in memory (of those at least `threads` long). Each output
element is computed by the same operation from the same inputs, so the results are
bitwise those of the whole call. A statement is split only when that is certain: a
NumPy ufunc with `out=` (not a generalised one such as matmul: BLAS threads those) or
`copyto`, whose operands are arrays of the namespace or numbers, broadcasting along
the cut axis or spanning it fully, and no slice's output sharing memory with another
slice's inputs or output.
"""
from __future__ import annotations

import ast
import atexit
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

#: Statements with fewer outputs run whole: below this a thread's hand-off (about
#: 20-30 µs) costs more than half the work saves.
MIN_ELEMENTS = 1 << 17

_pools: Dict[int, ThreadPoolExecutor] = {}
_TOO_HARD = getattr(np, "exceptions", np).TooHardError   # np.TooHardError before NumPy 1.25
_ARGUMENTS = ("x", "y")   # the step's parameters: a new batch each call, never split


def _pool(threads: int) -> ThreadPoolExecutor:
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(threads - 1, thread_name_prefix="tg-jit")
        atexit.register(_pools[threads].shutdown)
    return _pools[threads]


def parallel(job: Sequence[Callable[[], Any]]) -> None:
    """Run the pieces of `job` at once: the first here, the others on the pool."""
    pool = _pools[len(job)]
    futures = [pool.submit(piece) for piece in job[1:]]
    job[0]()
    for future in futures:
        future.result()


def _operand(node: ast.expr, namespace: Dict[str, Any]) -> Any:
    """The array or number an argument names, or None if it is anything else."""
    if isinstance(node, ast.Name) and node.id not in _ARGUMENTS \
            and isinstance(namespace.get(node.id), np.ndarray):
        return namespace[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    return None


def _cut(a: Any, out_ndim: int, axis: int, extent: int, lo: int, hi: int) -> Any:
    """`a`'s part for the output's [lo:hi] along `axis` (a itself if it broadcasts)."""
    if not isinstance(a, np.ndarray):
        return a
    own = axis - (out_ndim - a.ndim)          # the same axis, numbered from a's own start
    if own < 0 or a.shape[own] == 1:
        return a
    if a.shape[own] != extent:
        raise ValueError("does not span the axis")
    index = [slice(None)] * a.ndim
    index[own] = slice(lo, hi)
    return a[tuple(index)]


def _disjoint(a: Any, b: Any) -> bool:
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return True
    try:
        return not np.shares_memory(a, b, max_work=100_000)
    except _TOO_HARD:
        return False


def split_job(line: str, namespace: Dict[str, Any],
              threads: int) -> Optional[List[Callable[[], Any]]]:
    """The pieces that do statement `line` on `threads` threads, or None to run it
    whole."""
    try:
        call = ast.parse(line.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        return None
    fn = namespace.get(call.func.id)
    if fn is np.copyto and len(call.args) == 2 and not call.keywords:
        out_node, in_nodes, keywords = call.args[0], call.args[1:], False
    elif isinstance(fn, np.ufunc) and fn.signature is None \
            and [k.arg for k in call.keywords] == ["out"] and len(call.args) == fn.nin:
        out_node, in_nodes, keywords = call.keywords[0].value, call.args, True
    else:
        return None
    out = _operand(out_node, namespace)
    inputs = [_operand(node, namespace) for node in in_nodes]
    if not isinstance(out, np.ndarray) or out.size < MIN_ELEMENTS or out.ndim == 0 \
            or any(a is None for a in inputs):
        return None
    axes = [a for a in range(out.ndim) if out.shape[a] >= threads]
    if not axes:
        return None
    axis = max(axes, key=lambda a: abs(out.strides[a]))   # the outermost in memory
    extent = out.shape[axis]
    bounds = np.linspace(0, extent, threads + 1).astype(int)
    try:
        parts = [[_cut(a, out.ndim, axis, extent, lo, hi) for a in [out, *inputs]]
                 for lo, hi in zip(bounds, bounds[1:])]
    except ValueError:
        return None
    for i, mine in enumerate(parts):
        for j, theirs in enumerate(parts):
            if i != j and not all(_disjoint(mine[0], a) for a in theirs):
                return None
    if keywords:
        return [partial(fn, *part[1:], out=part[0]) for part in parts]
    return [partial(fn, part[0], part[1]) for part in parts]


def split_statements(lines: List[str], namespace: Dict[str, Any], threads: int,
                     name: Callable[[str, Any], str]) -> List[str]:
    """`lines` with each statement that `split_job` can split replaced by a call of
    `parallel` on its job (bound in the namespace by `name`)."""
    _pool(threads)
    result = []
    for line in lines:
        job = split_job(line, namespace, threads)
        if job is None:
            result.append(line)
        else:
            indent = line[:len(line) - len(line.lstrip())]
            result.append(f"{indent}parallel({name('job', job)})  # {line.strip()}")
    return result
