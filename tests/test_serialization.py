"""save/load: round trips of every supported value, atomic writes, rejection of damaged
or foreign files, and bitwise-identical resumption of training from a checkpoint."""
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mnist as tg
from tinygrad_mnist import nn, optim
from tinygrad_mnist.nn import functional as F
from tinygrad_mnist.serialization import CheckpointError, load, save


def same(a, b):
    """Deep equality that compares arrays exactly (dtype, shape, values, NaN == NaN)."""
    if isinstance(a, np.ndarray) or isinstance(a, np.generic):
        return (type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, tg.Tensor):
        return isinstance(b, tg.Tensor) and a.requires_grad == b.requires_grad and \
            same(a.data, b.data)
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_round_trip_of_every_kind_of_value(tmp_path):
    generator = np.random.default_rng(123)
    generator.random(3)
    obj = {
        "model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "bn.num_batches_tracked": np.array(4, dtype=np.int64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]},
        "rng": generator.bit_generator.state,          # nested dict with 128-bit ints
        "mt": np.random.MT19937(5).state,              # holds a uint32 array
        "big": [2 ** 64, -(2 ** 200), 2 ** 53, 2 ** 53 - 1],
        "floats": [0.1, -0.0, float("inf"), float("-inf"), float("nan"), 1e-310],
        "plain": [None, True, False, "text", "ünïcode", ""],
        "empty": [[], {}, (), np.zeros((0, 3)), ""],
        "scalars": [np.float32(1.5), np.int64(-2), np.bool_(True)],
        "strings": np.array(["a", "bc"]),
        "tensor": tg.Tensor(np.ones(2, np.float32), requires_grad=True),
        "keys": {1: "int", 2.5: "float", None: "none", True: "bool", (1, "a"): "tuple",
                 "$": "dollar", "items": "looks like a tag"},
    }
    path = tmp_path / "ckpt.npz"
    save(obj, path)
    back = load(path)
    assert same(obj, back)
    restored = np.random.default_rng()
    restored.bit_generator.state = back["rng"]
    np.testing.assert_array_equal(restored.random(5), generator.random(5))


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.tuples(children, children) |
    st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=3),
    max_leaves=10))
def test_round_trip_property(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("prop") / "x.npz"
    save(obj, path)
    assert same(obj, load(path))


def test_file_is_an_npz_with_a_json_manifest_and_no_pickle(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": np.ones(3), "epoch": 2}, path)
    with np.load(path, allow_pickle=False) as npz:
        manifest = json.loads(npz["manifest"].tobytes())
    assert manifest["format"] == "tinygrad_mnist.checkpoint" and manifest["version"] == 1
    assert zipfile.is_zipfile(path)


def test_path_is_used_as_given(tmp_path):
    save([1], tmp_path / "checkpoint")
    assert os.listdir(tmp_path) == ["checkpoint"]
    assert load(str(tmp_path / "checkpoint")) == [1]


@pytest.mark.parametrize("obj, message", [
    ({"f": lambda: 0}, r"cannot store a function \(at the top level\['f'\]\)"),
    ({"o": np.array([object()])}, "would need pickle"),
    ({frozenset(): 1}, "keys must be"),
    ([{1, 2}], r"cannot store a set \(at the top level\[0\]\)"),
])
def test_unstorable_values_are_rejected_before_writing(tmp_path, obj, message):
    path = tmp_path / "c.npz"
    save("old", path)
    with pytest.raises(TypeError, match=message):
        save(obj, path)
    assert load(path) == "old" and os.listdir(tmp_path) == ["c.npz"]


def test_write_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"v": 1}, path)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save({"v": 2}, path)
    monkeypatch.undo()
    assert load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file is gone


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


def damaged_files(tmp_path):
    good = tmp_path / "good.npz"
    save({"w": np.arange(1000.0), "epoch": 1}, good)
    data = good.read_bytes()
    files = {}

    def write(name, content):
        files[name] = tmp_path / name
        files[name].write_bytes(content)
    write("truncated.npz", data[: len(data) // 2])
    write("empty.npz", b"")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the array data: caught by the CRC
    write("flipped.npz", bytes(flipped))
    write("text.npz", b"hello, I am not a checkpoint\n")
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    np.save(tmp_path / "single.npy", np.ones(3))
    files["foreign.npz"], files["single.npy"] = tmp_path / "foreign.npz", tmp_path / "single.npy"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(tmp_path / "tampered.npz", "w") as zout:
        for item in zin.namelist():
            content = zin.read(item)
            if item == "manifest.npy":
                content = content.replace(b"tinygrad_mnist.checkpoint", b"tinygrad_mnist.checkpoinX")
            zout.writestr(item, content)
    files["tampered.npz"] = tmp_path / "tampered.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(tmp_path / "extra.npz", "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, zin.read(item))
        zout.writestr("a9.npy", zin.read("a0.npy"))
    files["extra.npz"] = tmp_path / "extra.npz"
    return files


def test_damaged_or_foreign_files_raise_a_clear_error_naming_the_file(tmp_path):
    files = damaged_files(tmp_path)
    expected = {"truncated.npz": "truncated, corrupted", "empty.npz": "truncated, corrupted",
                "flipped.npz": "truncated, corrupted", "text.npz": "truncated, corrupted",
                "foreign.npz": "without a tinygrad_mnist manifest",
                "single.npy": "single .npy array", "tampered.npz": "does not name the",
                "extra.npz": "lists 1 arrays, the archive holds 2"}
    for name, message in expected.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load(files[name])
        assert str(files[name]) in str(info.value), name
        assert isinstance(info.value, ValueError)


def test_damaged_checkpoint_leaves_the_model_unchanged(tmp_path):
    model = nn.Linear(3, 2)
    before = model.state_dict()
    files = damaged_files(tmp_path)
    with pytest.raises(CheckpointError):
        model.load_state_dict(load(files["flipped.npz"]))
    other = nn.Linear(4, 2).state_dict()
    save(other, tmp_path / "other.npz")
    with pytest.raises(nn.StateDictError):
        model.load_state_dict(load(tmp_path / "other.npz"))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ------------------------------------------------------------ bitwise resumption
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))


OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "SGD-dampening": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    "RMSprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "Adam": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=1e-3),
    "AdamW": lambda p: optim.AdamW(p, lr=0.01),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.01),
}
SCHEDULERS = {
    "none": lambda o: None,
    "StepLR": lambda o: optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=[2, 7]),
    "ExponentialLR": lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=5),
    "OneCycleLR": lambda o: optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.05, total_steps=12, cycle_momentum="Adagrad" not in type(o).__name__),
    "ReduceLROnPlateau": lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, patience=0),
}
DATA = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
LABELS = np.random.default_rng(1).integers(0, 3, 32)


def build(opt_name, sched_name, seed):
    nn.init.manual_seed(seed)
    model = Net()
    opt = OPTIMIZERS[opt_name](model.parameters())
    return model, opt, SCHEDULERS[sched_name](opt)


def train_steps(model, opt, scheduler, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(tg.Tensor(DATA)), LABELS)
        loss.backward()
        opt.step()
        if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss.item())
        elif scheduler is not None:
            scheduler.step()


def checkpoint(model, opt, scheduler, epoch):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "rng": nn.init.get_rng_state(), "epoch": epoch}


# Every optimizer alone and under OneCycleLR (which also moves momentum/beta1);
# every scheduler under SGD and Adam.
COMBINATIONS = sorted({(o, s) for o in OPTIMIZERS for s in ("none", "OneCycleLR")} |
                      {(o, s) for o in ("SGD", "Adam") for s in SCHEDULERS})


@pytest.mark.parametrize("opt_name, sched_name", COMBINATIONS)
def test_save_load_continue_is_bitwise_identical(tmp_path, opt_name, sched_name):
    model, opt, scheduler = build(opt_name, sched_name, seed=0)
    train_steps(model, opt, scheduler, 5)
    save(checkpoint(model, opt, scheduler, 5), tmp_path / "last.npz")
    train_steps(model, opt, scheduler, 6)
    uninterrupted = checkpoint(model, opt, scheduler, 11)

    model2, opt2, scheduler2 = build(opt_name, sched_name, seed=99)  # different weights
    state = load(tmp_path / "last.npz")
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    if scheduler2 is not None:
        scheduler2.load_state_dict(state["scheduler"])
    nn.init.set_rng_state(state["rng"])
    train_steps(model2, opt2, scheduler2, 6)
    resumed = checkpoint(model2, opt2, scheduler2, 11)
    assert same(uninterrupted, resumed)
