"""Module: registration, traversal, modes, state_dict / load_state_dict, containers."""
import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, generator=np.random.default_rng(0))
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.block = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 1, bias=False)])
        self.note = "plain attribute"

    def forward(self, x):
        h = self.block(self.fc1(x) * self.scale)
        return tg.concatenate([head(h) for head in self.heads], axis=1)


def test_registration_in_assignment_order_with_dotted_names():
    names = [name for name, _ in Net().named_parameters()]
    # As in PyTorch: a module's own parameters first, then each child's, in order.
    assert names == ["scale", "fc1.weight", "fc1.bias", "block.1.weight", "block.1.bias",
                     "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert [n for n, _ in Net().named_buffers()] == [
        "block.1.running_mean", "block.1.running_var", "block.1.num_batches_tracked"]


def test_children_modules_and_parameter_count():
    net = Net()
    assert [type(m).__name__ for m in net.children()] == ["Linear", "Sequential", "ModuleList"]
    assert [name for name, _ in net.named_modules()] == [
        "", "fc1", "block", "block.0", "block.1", "heads", "heads.0", "heads.1"]
    assert net.num_parameters() == 4 * 3 + 3 + 3 + 3 + 3 + 3 * 2 + 2 + 3
    assert len(list(net.parameters())) == 8
    net.fc1.requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == net.num_parameters() - 15


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # seq, shared, relu
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_recursive_and_call_runs_forward():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(tg.Tensor(np.ones((5, 4), np.float32)))
    assert out.shape == (5, 3)


def test_zero_grad_sets_none_or_zero():
    net = Net()
    out = net(tg.Tensor(np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_is_pytorch_like():
    text = repr(Net())
    assert text.startswith("Net(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)\n")
    assert "  (block): Sequential(\n    (0): ReLU()\n    (1): BatchNorm1d(3, eps=1e-05" in text
    assert "    (1): Linear(in_features=3, out_features=1, bias=False)\n  )\n)" in text
    assert repr(nn.ReLU()) == "ReLU()"


def test_reassignment_and_deletion_keep_registries_consistent():
    net = Net()
    net.fc1 = nn.Linear(4, 3)                      # replaced in place, order kept
    assert [n for n, _ in net.named_children()][0] == "fc1"
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.scale = tg.Tensor([1.0, 2.0, 3.0])
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    del net.heads
    assert not any(n.startswith("heads") for n, _ in net.named_parameters())
    net.extra = tg.Tensor([1.0], requires_grad=True)  # a plain Tensor is not registered
    assert "extra" not in dict(net.named_parameters())


def test_assigning_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Broken()


def test_register_buffer_and_non_persistent():
    m = nn.Module()
    m.register_buffer("count", np.zeros(2))
    m.register_buffer("cache", np.ones(3), persistent=False)
    assert list(m.state_dict()) == ["count"]
    assert [n for n, _ in m.named_buffers()] == ["count", "cache"]
    m.count = np.array([5.0, 6.0])
    assert np.array_equal(m.state_dict()["count"], [5.0, 6.0])
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("forward", np.zeros(1))


def test_state_dict_returns_copies():
    net = Net()
    state = net.state_dict()
    state["fc1.weight"][...] = 123.0
    assert not np.any(net.fc1.weight.data == 123.0)
    assert state["block.1.num_batches_tracked"].dtype == np.int64


def test_load_state_dict_round_trip_in_place():
    a, b = Net(), Net()
    b.fc1.weight.data[...] = 7.0
    weight_array = a.fc1.weight.data
    assert a.load_state_dict(b.state_dict()) == ([], [])
    assert a.fc1.weight.data is weight_array  # in place: optimizers keep their references
    for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y)


def test_load_state_dict_rejects_everything_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    state = Net().state_dict()
    del state["fc1.bias"]
    state["bogus"] = np.zeros(1)
    state["heads.0.weight"] = np.zeros((5, 5))
    state["scale"] = np.array(["a", "b", "c"])
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing key(s): fc1.bias" in message and "unexpected key(s): bogus" in message
    assert "heads.0.weight: shape (5, 5) in the state dict, (2, 3) in the model" in message
    assert "scale: dtype <U1" in message
    assert info.value.missing_keys == ["fc1.bias"]
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict_skips_keys_but_not_shapes():
    net = Net()
    state = {"fc1.weight": np.full((3, 4), 2.0), "other": np.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    assert result.unexpected_keys == ["other"] and "fc1.bias" in result.missing_keys
    assert np.all(net.fc1.weight.data == 2.0) and net.fc1.weight.dtype == np.float32
    with pytest.raises(nn.StateDictError, match="shape"):
        net.load_state_dict({"fc1.weight": np.zeros(3)}, strict=False)


def test_sequential_indexing_len_slicing_and_dict_form():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    seq[1] = nn.Tanh()
    assert isinstance(seq[1], nn.Tanh)
    named = nn.Sequential({"encoder": nn.Linear(2, 2), "act": nn.ReLU()})
    assert [n for n, _ in named.named_parameters()] == ["encoder.weight", "encoder.bias"]
    with pytest.raises(TypeError, match="holds Modules"):
        nn.Sequential(nn.ReLU(), "relu")
    x = tg.Tensor(np.ones((4, 2), np.float32))
    expected = layers[2](seq[1](layers[0](x)))
    np.testing.assert_array_equal(seq(x).data, expected.data)


def test_module_list_mutation_renumbers():
    a, b, c = nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 1)
    ml = nn.ModuleList([a, b])
    ml.append(c)
    ml.insert(0, nn.ReLU())
    assert [type(m).__name__ for m in ml] == ["ReLU", "Linear", "Linear", "Linear"]
    del ml[1]
    assert list(ml) [1:] == [b, c]
    assert [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias", "2.weight", "2.bias"]
    assert not hasattr(ml, "3")
    with pytest.raises(NotImplementedError):
        ml(1)


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    y = (p * 2).sum()
    y.backward()
    np.testing.assert_array_equal(p.grad, [2, 2, 2])


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    layer = nn.Linear(3, 2, generator=np.random.default_rng(0))
    x = tg.Tensor(np.ones((4, 3), np.float32))
    seen = []
    handle = layer.register_forward_hook(lambda m, inputs, out: seen.append((m, out.shape)))
    plain = layer(x)
    assert seen == [(layer, (4, 2))] and layer.has_hooks()
    with layer.register_forward_pre_hook(lambda m, inputs: inputs[0] * 0):
        np.testing.assert_array_equal(layer(x).data, np.broadcast_to(layer.bias.data, (4, 2)))
    with layer.register_forward_hook(lambda m, inputs, out: out * 2):
        np.testing.assert_array_equal(layer(x).data, 2 * plain.data)
    handle.remove()
    handle.remove()                                   # removing twice is harmless
    layer(x)
    assert len(seen) == 3 and not layer.has_hooks()
