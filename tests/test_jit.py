"""The compiled training step (`tinygrad_mnist.jit`) against the eager one.

The contract: after N steps, the compiled step leaves bitwise the same parameters,
gradients, optimizer state, batch-norm running statistics and random-generator state
as the eager reference `jit.eager_step`, and returned bitwise the same losses. No
tolerance: the plan does the eager step's NumPy operations, in the same order, on
buffers laid out as the eager arrays are. Each case runs eight steps over batches
of two sizes (the smaller one is an epoch's last batch), so both plans are built and
each runs compiled more than once; and the model is small, so the suite stays fast.
"""
import math
import tracemalloc
import warnings

import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import autograd, from_numpy, jit, nn, optim
from tinygrad_mnist.optim import lr_scheduler

# ---------------------------------------------------------------------- helpers
FLAT, IMAGE = (12,), (1, 10, 10)


def batches(shape, sizes=(8, 8, 8, 3, 8, 3, 8, 3, 3, 8), classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n,) + shape).astype(np.float32),
             rng.integers(0, classes, n)) for n in sizes]


def mlp(dropout=0.0, hidden=(10, 7), act=nn.ReLU, batch_norm=False):
    layers, width = [], FLAT[0]
    for h in hidden:
        layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else []) + [act()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 5))


def cnn(dropout=0.2, pool=nn.MaxPool2d, bias=False, **bn):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=bias), pool(2), nn.BatchNorm2d(4, **bn), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, bias=bias), pool(2), nn.BatchNorm2d(6, **bn), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 5))


def run(make_model, make_optimizer, data, compiled, seed=0, schedule=None, **options):
    """Train a fresh model (same seed: same weights, same dropout masks) on `data`,
    eagerly or compiled; return what the contract compares."""
    nn.init.manual_seed(seed)
    model = make_model()
    opt = make_optimizer(model.parameters())
    sched = schedule(opt) if schedule else None
    step = jit.compile_step(model, opt, **options) if compiled else None
    losses = []
    for x, y in data:
        result = step(x, y) if compiled else jit.eager_step(model, opt, x, y, **options)
        losses.append(result.loss)
        if sched is not None:
            sched.step()
    return {"model": model, "optimizer": opt, "losses": losses, "step": step,
            "rng": nn.init.get_rng_state()}


def grad_array(p):
    g = p.grad
    return g if g is None or isinstance(g, np.ndarray) else g.data


def assert_same(a, b):
    assert a["losses"] == b["losses"]
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k], equal_nan=True), k
    for pa, pb in zip(a["model"].parameters(), b["model"].parameters()):
        ga, gb = grad_array(pa), grad_array(pb)
        assert (ga is None) == (gb is None)
        assert ga is None or np.array_equal(ga, gb, equal_nan=True)
    oa, ob = a["optimizer"].state_dict(), b["optimizer"].state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys()
    for i in oa["state"]:
        assert oa["state"][i].keys() == ob["state"][i].keys()
        for k, v in oa["state"][i].items():
            assert np.array_equal(v, ob["state"][i][k]), (i, k)
    assert a["rng"] == b["rng"]


def check(make_model, make_optimizer, data, builds=2, **options):
    eager = run(make_model, make_optimizer, data, False, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a known model never falls back
        compiled = run(make_model, make_optimizer, data, True, **options)
    assert_same(eager, compiled)
    step = compiled["step"]
    # each kind of batch: two recorded eager steps, then replays
    assert step.builds == builds and step.eager_steps == 2 * builds, step.reasons
    return compiled


# ------------------------------------------------------------ optimizers (MLP)
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "dampening": lambda p: optim.SGD(p, lr=0.1, momentum=0.8, dampening=0.3),
    "sgd-wd": lambda p: optim.SGD(p, lr=0.1, weight_decay=0.05),
    "momentum-wd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam-wd": lambda p: optim.Adam(p, lr=1e-2, weight_decay=0.1),
    "amsgrad": lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
    "adamw-amsgrad": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.3, amsgrad=True),
    "rmsprop": lambda p: optim.RMSprop(p, lr=1e-2),
    "rmsprop-centered": lambda p: optim.RMSprop(p, lr=1e-2, centered=True, momentum=0.5,
                                                weight_decay=0.01),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_matches_eager_bitwise(name):
    check(lambda: mlp(dropout=0.25), OPTIMIZERS[name], batches(FLAT))


def test_the_replay_calls_the_optimizers_own_step():
    """The replay holds no update formula: it calls optimizer.step(), so an optimizer
    written by a user is replayed as it is, with the same numbers."""
    class SignSGD(optim.SGD):
        def update(self, hp, piece, g_buf, tmp):
            theta, grad = piece[0], piece[1]
            np.sign(grad, out=tmp)
            tmp *= hp.lr
            theta -= tmp

    for make in (OPTIMIZERS["momentum"], OPTIMIZERS["rmsprop"],
                 lambda p: SignSGD(p, lr=0.01)):
        source = check(mlp, make, batches(FLAT))["step"].source
        assert "optimizer_step()" in source and "momentum" not in source


def test_large_parameters_are_updated_in_the_same_pieces():
    """A weight of more than 2^17 elements is updated in flat pieces, as optim does."""
    big = lambda: nn.Sequential(nn.Linear(12, 11000), nn.ReLU(), nn.Linear(11000, 5))
    for make in (OPTIMIZERS["momentum"], OPTIMIZERS["adam-wd"]):
        check(big, make, batches(FLAT, sizes=(4, 4, 2, 4, 2, 2, 4)))


def test_schedulers_change_lr_momentum_and_betas_every_step():
    """Hyperparameters are read from the param groups at every step (OneCycleLR cycles
    Adam's beta1 and SGD's momentum too)."""
    for make in (OPTIMIZERS["adam"], OPTIMIZERS["momentum"]):
        check(mlp, make, batches(FLAT),
              schedule=lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=20))
    check(mlp, OPTIMIZERS["momentum"], batches(FLAT),
          schedule=lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=8))


# --------------------------------------------------------------- layers, options
@pytest.mark.parametrize("make_model", [
    lambda: mlp(act=nn.LeakyReLU), lambda: mlp(act=nn.Tanh), lambda: mlp(act=nn.Sigmoid),
    lambda: mlp(batch_norm=True, dropout=0.5),
    lambda: nn.Sequential(nn.Linear(12, 9), nn.BatchNorm1d(9, momentum=None),
                          nn.LeakyReLU(0.2), nn.Linear(9, 5)),
    lambda: nn.Sequential(nn.Linear(12, 9), nn.BatchNorm1d(9, affine=False), nn.ReLU(),
                          nn.Sequential(nn.Linear(9, 6), nn.Tanh()), nn.Linear(6, 5)),
], ids=["leaky_relu", "tanh", "sigmoid", "batchnorm1d-dropout", "bn-cumulative",
        "bn-no-affine-nested"])
def test_mlp_layers_match_eager_bitwise(make_model):
    check(make_model, OPTIMIZERS["adam"], batches(FLAT))


@pytest.mark.parametrize("make_model", [
    cnn, lambda: cnn(pool=nn.AvgPool2d, bias=True, dropout=0.0),
    lambda: cnn(momentum=None, affine=False), lambda: cnn(track_running_stats=False),
    lambda: nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, bias=True), nn.ReLU(),
                          nn.MaxPool2d(3, stride=2, padding=1), nn.Tanh(),
                          nn.AvgPool2d(2, stride=1, padding=1), nn.Flatten(),
                          nn.Linear(3 * 3 * 3, 5)),
], ids=["cnn", "avgpool-bias", "bn-cumulative-no-affine", "bn-untracked",
        "strided-overlapping-pools"])
def test_cnn_layers_match_eager_bitwise(make_model):
    check(make_model, OPTIMIZERS["adam"], batches(IMAGE, sizes=(6, 6, 6, 3, 6, 3, 3, 6)))


def test_a_large_convolution_weight_with_a_transposed_gradient():
    """A conv weight of more than 2^17 elements whose gradient is stored transposed is
    updated whole, as optim does: the update's scratch must hold all of it."""
    wide = lambda: nn.Sequential(nn.Conv2d(1, 128, 3, padding=1, bias=False), nn.ReLU(),
                                 nn.Conv2d(128, 256, 3, padding=1, bias=False),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256 * 5 * 5, 5))
    for make in (OPTIMIZERS["adam"], OPTIMIZERS["momentum-wd"]):
        check(wide, make, batches(IMAGE, sizes=(2, 2, 1, 2, 1, 1, 2)))


def test_cnn_with_sgd_weight_decay_and_clipping():
    check(cnn, OPTIMIZERS["momentum-wd"], batches(IMAGE, sizes=(6, 6, 3, 6, 3, 3, 6)),
          clip_grad_norm=0.5)


@pytest.mark.parametrize("options", [
    {"label_smoothing": 0.1}, {"l1": 1e-3}, {"clip_grad_norm": 0.05},
    {"clip_grad_norm": 1e6}, {"label_smoothing": 0.2, "l1": 1e-2, "clip_grad_norm": 0.1},
], ids=["smoothing", "l1", "clipped", "clip-inactive", "all"])
def test_loss_options_match_eager_bitwise(options):
    check(lambda: mlp(dropout=0.2, batch_norm=True), OPTIMIZERS["adamw"], batches(FLAT),
          **options)
    check(cnn, OPTIMIZERS["nesterov"], batches(IMAGE, sizes=(6, 6, 3, 6, 3, 3, 6)), **options)


def test_batch_size_one():
    check(mlp, OPTIMIZERS["momentum"], batches(FLAT, sizes=(1, 1, 1, 2, 1, 2, 2)))


def test_frozen_parameters():
    def frozen():
        model = mlp(dropout=0.3)
        model[0].requires_grad_(False)
        return model
    nn.init.manual_seed(0)
    check(frozen, lambda params: optim.Adam([p for p in params if p.requires_grad]),
          batches(FLAT))


def test_the_app_models():
    """models.MLP and models.CNN (nn.Sequential subclasses) as the app builds them."""
    from tinygrad_mnist import models
    check(lambda: models.MLP((16, 8), dropout=0.2, in_features=12, num_classes=5),
          OPTIMIZERS["adam"], batches(FLAT))
    check(lambda: models.CNN(hidden=(8,), dropout=0.2, channels=(3, 4)),
          OPTIMIZERS["adam"], batches((1, 28, 28), sizes=(4, 4, 2, 4, 2, 2)))


# ------------------------------------------------------------ plans and fallbacks
def test_the_plan_is_printable_python_and_runs_without_the_engine(monkeypatch, capsys):
    data = batches(FLAT)
    nn.init.manual_seed(0)
    model = mlp(dropout=0.2)
    step = jit.compile_step(model, optim.Adam(model.parameters()), debug=True)
    assert step.source is None
    step(*data[0])                                    # eager, recorded
    assert step.source is None and capsys.readouterr().out == ""
    step(*data[1])                                    # eager, recorded, then compiled
    printed = capsys.readouterr().out
    assert step.source == printed.rstrip("\n") + "\n"
    assert step.source.startswith("def train_step(x, y):")
    compile(step.source, "plan", "exec")

    def no_graph(*args, **kwargs):
        raise AssertionError("a compiled step called a Function")
    monkeypatch.setattr(autograd.Function, "apply", classmethod(no_graph))
    for x, y in (data[2], data[4]):                  # replays of the first kind
        assert math.isfinite(step(x, y).loss)


def test_a_compiled_step_keeps_no_graph_and_frees_what_it_allocates():
    """A replay allocates the arrays the Functions make (no Tensors, no graph) and frees
    them as the engine would: its traced peak stays below the eager step's, and ten
    replays leave no more behind than ten eager steps (NumPy's cache of small blocks
    fills in both)."""
    peaks, growth = {}, {}
    for compiled in (False, True):
        nn.init.manual_seed(0)
        model = cnn()
        opt = optim.Adam(model.parameters())
        step = jit.compile_step(model, opt) if compiled else (
            lambda x, y: jit.eager_step(model, opt, x, y))
        data = batches(IMAGE, sizes=(6,) * 14)
        for x, y in data[:3]:
            step(x, y)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        step(*data[3])
        peaks[compiled] = tracemalloc.get_traced_memory()[1] - before
        after_one = tracemalloc.get_traced_memory()[0]
        for x, y in data[4:]:
            step(x, y)
        growth[compiled] = tracemalloc.get_traced_memory()[0] - after_one
        tracemalloc.stop()
    assert peaks[True] < peaks[False], peaks
    assert growth[True] <= growth[False], growth


def test_models_the_per_layer_compiler_did_not_know_are_compiled():
    """A layer of the user's own, a subclass that changes forward, a Sequential with a
    forward of its own: the replay runs the Functions they ran."""
    class Square(nn.Module):
        def forward(self, x):
            return x * x

    class MyReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x) * 2

    class Net(nn.Sequential):
        def forward(self, x):
            return super().forward(x) + 1

    for make in (lambda: nn.Sequential(nn.Linear(12, 6), Square(), nn.Linear(6, 5)),
                 lambda: nn.Sequential(nn.Linear(12, 6), MyReLU(), nn.Linear(6, 5)),
                 lambda: Net(nn.Linear(12, 5))):
        check(make, OPTIMIZERS["adam"], batches(FLAT))


def test_a_subclass_that_keeps_forward_is_compiled():
    class Relu2(nn.ReLU):
        pass
    check(lambda: nn.Sequential(nn.Linear(12, 6), Relu2(), nn.Linear(6, 5)),
          OPTIMIZERS["sgd"], batches(FLAT))


def test_eval_mode_and_changes_to_model_or_optimizer_recompile_or_fall_back():
    data = batches(FLAT, sizes=(8,) * 12)
    make_opt = OPTIMIZERS["momentum"]

    def scenario(compiled):
        nn.init.manual_seed(0)
        model = mlp(dropout=0.3, batch_norm=True)
        opt = make_opt(model.parameters())
        step = (jit.compile_step(model, opt) if compiled else
                lambda x, y: jit.eager_step(model, opt, x, y))
        losses = []
        for i, (x, y) in enumerate(data):
            if i == 3:
                model.eval()                                  # batch norm: eager
            if i == 5:
                model.train()
            if i == 6:
                model[3].p = 0.5                              # a new dropout rate
            if i == 7:
                opt.param_groups[0]["momentum"] = 0.0         # momentum off
            if i == 8:
                extra = nn.Linear(12, 5)                      # a parameter added
                opt.add_param_group({"params": extra.parameters()})
            if i == 10:
                opt.load_state_dict(opt.state_dict())         # new state objects
            losses.append(step(x, y).loss)
        return {"model": model, "optimizer": opt, "losses": losses, "step": step,
                "rng": nn.init.get_rng_state()}

    eager = scenario(False)
    with pytest.warns(RuntimeWarning) as record:
        compiled = scenario(True)
    assert_same(eager, compiled)
    reasons = compiled["step"].reasons
    assert any("eval mode" in r for r in reasons)
    assert any("exactly the model's trainable parameters" in r for r in reasons)
    assert len(record) == len(reasons) == 2


def test_non_finite_loss_raises_before_anything_changes():
    for compiled in (False, True):
        nn.init.manual_seed(0)
        model = mlp()
        opt = OPTIMIZERS["momentum"](model.parameters())
        step = jit.compile_step(model, opt) if compiled else (
            lambda x, y: jit.eager_step(model, opt, x, y))
        x, y = batches(FLAT, sizes=(8,))[0]
        step(x, y)
        step(x, y)
        before = model.state_dict()
        with pytest.raises(FloatingPointError, match="nan"):
            step(np.full_like(x, np.nan), y)
        after = model.state_dict()
        assert all(np.array_equal(before[k], after[k]) for k in before)


def test_bad_labels_raise_as_eagerly():
    nn.init.manual_seed(0)
    model = mlp()
    step = jit.compile_step(model, optim.SGD(model.parameters(), lr=0.1))
    x, y = batches(FLAT, sizes=(8,))[0]
    step(x, y)
    step(x, y)
    with pytest.raises(ValueError, match="outside"):
        step(x, np.full_like(y, 7))
    with pytest.raises(ValueError, match="outside"):
        step(x, np.full_like(y, -1))
    assert math.isfinite(step(x, y).loss)
    assert step.builds == 1 and step.eager_steps == 4     # the replay was kept


def test_an_ignored_label_steps_eagerly_once_and_keeps_the_replay():
    """A batch with cross_entropy's ignore_index (-100) runs another path of ops: that
    batch steps eagerly; the replay is kept for the others."""
    data = batches(FLAT, sizes=(8,) * 6)
    data[3][1][2] = -100
    compiled = run(mlp, OPTIMIZERS["momentum"], data, True)
    assert_same(run(mlp, OPTIMIZERS["momentum"], data, False), compiled)
    assert compiled["step"].builds == 1 and compiled["step"].eager_steps == 3


def test_options_are_checked():
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    for bad in ({"loss": "mse"}, {"label_smoothing": 1.5}, {"l1": -1.0},
                {"clip_grad_norm": 0.0}):
        with pytest.raises(ValueError):
            jit.compile_step(model, opt, **bad)


def test_forward_hooks_run_eagerly_even_when_added_after_compiling():
    data = batches(FLAT)
    calls = []
    eager = run(mlp, OPTIMIZERS["adam"], data, compiled=False)
    nn.init.manual_seed(0)
    model = mlp()
    step = jit.compile_step(model, OPTIMIZERS["adam"](model.parameters()))
    for x, y in data[:3]:
        step(x, y)
    assert step.builds == 1
    handle = model[1].register_forward_hook(lambda m, inputs, out: calls.append(out.shape))
    with pytest.warns(RuntimeWarning, match="ReLU has forward hooks, which run only eagerly"):
        for x, y in data[3:]:
            step(x, y)
    assert len(calls) == len(data) - 3                  # the hook ran at every later step
    handle.remove()
    for k, v in model.state_dict().items():             # and the numbers are eager's
        np.testing.assert_array_equal(v, eager["model"].state_dict()[k])


# ------------------------------------------------------------- subclassed models
def example(name):
    """A module of examples/ (the PyTorch programs run by tinygrad_mnist)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SubclassedMLP(nn.Module):
    """An MLP as users write one: layers as attributes, F.* calls in forward."""

    def __init__(self, batch_norm=False):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(12, 10), nn.Linear(10, 7), nn.Linear(7, 5)
        self.norm = nn.BatchNorm1d(10) if batch_norm else nn.Identity()

    def forward(self, x):
        x = nn.functional.dropout(nn.functional.relu(self.norm(self.fc1(x))), 0.3)
        x = nn.functional.leaky_relu(self.fc2(x), 0.1)
        return self.out(x)


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam-wd", "rmsprop-centered"])
def test_a_subclassed_model_matches_eager_bitwise(name):
    check(SubclassedMLP, OPTIMIZERS[name], batches(FLAT))
    check(lambda: SubclassedMLP(batch_norm=True), OPTIMIZERS[name], batches(FLAT),
          label_smoothing=0.1, l1=1e-3, clip_grad_norm=0.1)


def test_the_cnn_example_with_its_nll_loss():
    """examples/mnist_cnn.py's Net (two convolutions, max pooling, two dropouts,
    log_softmax), trained with F.nll_loss as the example does, and with Adadelta."""
    net = example("mnist_cnn").Net
    nll = lambda output, target: nn.functional.nll_loss(output, target)  # noqa: E731
    check(net, lambda p: optim.Adadelta(p, lr=1.0), batches((1, 28, 28), sizes=(2, 2, 1, 2, 1, 1)),
          loss_fn=nll)
    check(net, OPTIMIZERS["momentum"], batches((1, 28, 28), sizes=(2, 2, 2, 2)), builds=1)


def test_the_vae_example_with_its_own_loss_and_random_codes():
    """examples/mnist_vae.py's VAE: three outputs, randn_like inside forward (drawn again
    at each replay, in the same order as eagerly), its loss of (output, target) with the
    batch as target."""
    vae = example("mnist_vae")
    def loss(output, target):
        reconstruction, mean, log_var = output
        return vae.vae_loss(reconstruction, from_numpy(target), mean, log_var)

    rng = np.random.default_rng(0)
    images = [rng.random((n, 1, 28, 28), dtype=np.float32) for n in (4, 4, 4, 2, 4, 2, 2)]
    compiled = check(vae.VAE, lambda p: optim.Adam(p, lr=1e-3),
                     [(x, x) for x in images], loss_fn=loss)
    result = compiled["step"](images[0], images[0])
    assert isinstance(result.logits, tuple) and result.logits[0].shape == (4, 784)


# ------------------------------------------------ data-dependent Python is refused
class Branchy(nn.Module):
    """A forward whose Python branches on the data."""

    def __init__(self, how):
        super().__init__()
        self.fc, self.how = nn.Linear(12, 5), how

    def forward(self, x):
        h = self.fc(x)
        if self.how == "bool":                       # reads a value: refused at once
            return h.relu() if h.sum() > 0 else h.tanh()
        if self.how == "item":
            return h * h.abs().max().item()
        if self.how == "constant":                   # a constant made from the data
            return h * tg.tensor(x.data[:, :5] > 0).float()
        return h


@pytest.mark.parametrize("how, reason", [
    ("bool", r"reads a tensor's value into Python \(Tensor.__bool__\)"),
    ("item", r"reads a tensor's value into Python \(Tensor.item\)"),
    ("constant", r"a constant of shape \(\d+, 5\) differs between two steps"),
])
def test_data_dependent_python_runs_eagerly_with_a_warning(how, reason):
    data = batches(FLAT)
    make = lambda: Branchy(how)  # noqa: E731
    eager = run(make, OPTIMIZERS["sgd"], data, False)
    with pytest.warns(RuntimeWarning, match=reason) as record:
        compiled = run(make, OPTIMIZERS["sgd"], data, True)
    assert len(record) == len(compiled["step"].reasons)      # once per reason
    assert_same(eager, compiled)
    assert compiled["step"].builds == 0 and compiled["step"].eager_steps == len(data)


def test_other_ops_in_the_second_recording_are_refused():
    """Python that picks its ops by something outside the model and the tensors (here a
    counter) gives two recordings that differ: refused. (Such state is not watched:
    had the first two steps agreed, the replay would follow them; `check_every`
    records again at an interval.)"""
    calls = []

    class Alternating(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            calls.append(1)
            return self.fc(x).relu() if len(calls) % 2 else self.fc(x).tanh()

    data = batches(FLAT, sizes=(8,) * 6)
    eager = run(Alternating, OPTIMIZERS["sgd"], data, False)
    with pytest.warns(RuntimeWarning, match=r"two steps ran different ops \(at op 1: "
                                             r"ReLU, then Tanh\)"):
        compiled = run(Alternating, OPTIMIZERS["sgd"], data, True)
    assert_same(eager, compiled)
    assert compiled["step"].builds == 0


def test_check_every_records_again_and_catches_a_constant_that_changed():
    scale = np.ones(5, np.float32)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            return self.fc(x) * tg.tensor(scale.copy())   # a fresh copy: frozen by value

    data = batches(FLAT, sizes=(8,) * 12)
    compiled = run(Scaled, OPTIMIZERS["sgd"], data, True, check_every=3)
    step = compiled["step"]
    assert step.builds == 1 and step.eager_steps == 2 + 2   # steps 6 and 10 checked
    eager = run(Scaled, OPTIMIZERS["sgd"], data, False)
    assert_same(eager, compiled)
    scale[0] = 2.0                                          # the constant changes
    with pytest.warns(RuntimeWarning, match="a constant of shape"):
        for x, y in data:
            step(x, y)
    assert step.reasons and step.builds == 1


def test_a_forward_hook_added_to_a_subclassed_model_and_removed():
    nn.init.manual_seed(0)
    model = SubclassedMLP()
    step = jit.compile_step(model, OPTIMIZERS["adam"](model.parameters()))
    data = batches(FLAT, sizes=(8,) * 8)
    for x, y in data[:3]:
        step(x, y)
    handle = model.fc2.register_forward_hook(lambda m, i, o: None)
    with pytest.warns(RuntimeWarning, match="Linear has forward hooks"):
        step(*data[3])
    handle.remove()
    for x, y in data[4:]:
        step(x, y)
    assert step.builds == 2 and step.eager_steps == 2 + 1 + 2


def test_the_eager_path_records_nothing():
    assert autograd._recorders == 0
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with autograd.recording([]) as tape:
        (x * 2).sum()
        with pytest.raises(RuntimeError, match="recording already"):
            with autograd.recording([]):
                pass
    assert [entry[1].__class__.__name__ for entry in tape] == ["Mul", "Sum"]
    assert autograd._recorders == 0


def test_a_model_that_changes_at_every_step_stays_eager():
    """A forward that sets an attribute of its module at each step makes every replay
    out of date: after a while the step stops recording."""
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.steps = nn.Linear(12, 5), 0

        def forward(self, x):
            self.steps += 1
            return self.fc(x)

    data = batches(FLAT, sizes=(8,) * (2 * jit.step.MAX_REBUILDS + 3))
    with pytest.warns(RuntimeWarning, match="changed at every step"):
        compiled = run(Counting, OPTIMIZERS["sgd"], data, True)
    assert compiled["step"].builds == 0
    assert_same(run(Counting, OPTIMIZERS["sgd"], data, False), compiled)


def test_a_running_profiler_is_paused_while_recording_and_then_resumed():
    import cProfile
    import sys
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        compiled = run(mlp, OPTIMIZERS["sgd"], batches(FLAT), True)
        assert sys.getprofile() is profiler
    finally:
        profiler.disable()
    assert compiled["step"].builds == 2
    assert_same(run(mlp, OPTIMIZERS["sgd"], batches(FLAT), False), compiled)
