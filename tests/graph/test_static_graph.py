import itertools
import warnings

import pytest
import torch
import torchvision

import deepseek
from deepseek.graph import PlannedExecutor, capture, optimize, plan_memory


def test_spec_example_fuses_matmul_and_bias_and_matches_eager():
    torch.manual_seed(0)
    weight, bias = torch.randn(64, 32), torch.randn(32)
    calls = []

    @deepseek.static_graph
    def model(x):
        calls.append(1)
        return x.matmul(weight) + bias

    x = torch.randn(8, 64)
    torch.testing.assert_close(model(x), x @ weight + bias)
    traced = len(calls)
    model(x), model(x)
    assert len(calls) == traced  # later calls run the graph, not the Python body
    report = model.explain(x)
    assert report.passes.fused_matmul_bias == 1 and report.passes.ops_after == 1
    graph = capture(model.fn, (x,))
    optimize(graph)
    assert [n.target for n in graph.graph.nodes if n.op == "call_function"] == [torch.ops.aten.addmm.default]
    traced = len(calls)
    with deepseek.dynamic_graph():
        t = deepseek.Tensor([1, 2, 3])
        assert (t * 2 + 1).tolist() == [3, 5, 7]
        model(x)
    assert len(calls) == traced + 1  # eager inside dynamic_graph()
    assert isinstance(t, torch.Tensor)


def test_constants_are_folded_and_dead_code_removed():
    w = torch.randn(16, 8)

    @deepseek.static_graph
    def f(x):
        unused = x.exp().sum()  # noqa: F841
        return x @ (w.t() * 2).t()

    x = torch.randn(3, 16)
    torch.testing.assert_close(f(x), x @ w * 2)
    r = f.explain(x)
    assert r.passes.folded_constants >= 2 and r.passes.removed_dead >= 2
    assert r.passes.ops_after == 1


def test_torchvision_model_same_outputs_bn_folded_and_memory_planned():
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    sg = deepseek.static_graph(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(sg(x), model(x), atol=1e-4, rtol=1e-4)
        sg(x)
    report = sg.explain(x)
    assert report.passes.folded_batchnorms == 20
    mem = report.memory
    assert mem.lower_bound_bytes <= mem.planned_bytes < 0.5 * mem.naive_bytes
    _assert_no_overlap(mem)
    _assert_no_overlap(report.executed)
    assert sum(b.offset is not None for b in report.executed.buffers) > 0  # the executor writes into the arena
    y = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(sg(y), model(y), atol=1e-4, rtol=1e-4)
    assert len(sg.reports) == 2  # one graph per input signature


def test_transformer_block_runs_planned():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                vocab_size=100)).eval()
    ids = torch.randint(0, 100, (2, 16))
    graph = capture(bert, (ids,))
    optimize(graph)
    run = PlannedExecutor(graph, plan_memory(graph, native_out_only=True))
    with torch.no_grad():
        torch.testing.assert_close(run(ids)[0], bert(ids).last_hidden_state, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(run(ids)[0], bert(ids).last_hidden_state, atol=1e-5, rtol=1e-5)  # arena reused
    plan = plan_memory(graph)
    assert plan.lower_bound_bytes <= plan.planned_bytes < plan.naive_bytes
    _assert_no_overlap(plan)


def test_graph_break_falls_back_to_eager_with_a_warning():
    @deepseek.static_graph
    def f(x):
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot capture it
            return x * 2
        return x - 1

    x = torch.ones(4)
    with pytest.warns(UserWarning, match="running eagerly"):
        assert f(x).tolist() == [2.0] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per signature
        assert f(-x).tolist() == [-2.0] * 4
    with pytest.raises(deepseek.graph.CaptureError, match="cannot capture f"):
        f.explain(x)


def test_inputs_requiring_grad_run_eagerly_so_gradients_flow():
    w = torch.randn(4, 4)
    f = deepseek.static_graph(lambda x: (x @ w).sum())
    x = torch.randn(2, 4, requires_grad=True)
    f(x).backward()
    torch.testing.assert_close(x.grad, w.sum(1).expand(2, 4))
    assert f(x.detach()).grad_fn is None


def test_bad_arguments_are_refused():
    with pytest.raises(deepseek.InvalidArgumentError, match="backend"):
        deepseek.static_graph(lambda x: x, backend="tvm")
    with pytest.raises(deepseek.InvalidArgumentError, match="fn"):
        deepseek.static_graph(5)
    with pytest.raises(deepseek.InvalidArgumentError, match="max_signatures"):
        deepseek.static_graph(lambda x: x, max_signatures=0)


def test_activation_checkpointing_saves_memory_and_keeps_gradients():
    from deepseek.graph import saved_activation_bytes

    torch.manual_seed(0)
    model = torchvision.models.resnet18(norm_layer=lambda c: torch.nn.GroupNorm(1, c)).train()
    plain = torchvision.models.resnet18(norm_layer=lambda c: torch.nn.GroupNorm(1, c)).train()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    before = saved_activation_bytes(model, x)
    wrapped = deepseek.checkpoint_activations(model, ["re:layer[1-4]"])
    assert wrapped == ["layer1", "layer2", "layer3", "layer4"]
    assert saved_activation_bytes(model, x) < 0.5 * before
    model(x).sum().backward()
    plain(x).sum().backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    with pytest.raises(deepseek.InvalidArgumentError, match="layers"):
        deepseek.checkpoint_activations(model, ["nothing_like_this"])


def _assert_no_overlap(plan):
    placed = [b for b in plan.buffers if b.offset is not None]
    for a, b in itertools.combinations(placed, 2):
        if a.first <= b.last and b.first <= a.last and a.nbytes and b.nbytes:
            assert a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset, (a, b)


def test_pointwise_ops_overwrite_only_dead_inputs():
    torch.manual_seed(0)
    w = torch.randn(8, 8)

    def reads_input_later(x):
        a = x @ w
        b = a.relu()  # a is read again below: relu must not overwrite it
        return (a + b) * 2  # a and b die here: the add may overwrite a, the mul its result

    def returns_input(x):
        a = x @ w
        return a, a.sigmoid()  # a is an output: never overwritten

    x = torch.randn(4, 8)
    for fn in (reads_input_later, returns_input):
        graph = capture(fn, (x,))
        optimize(graph)
        plan = plan_memory(graph, native_out_only=True)
        got = PlannedExecutor(graph, plan)(x)
        torch.testing.assert_close(got, fn(x))
    graph = capture(reads_input_later, (x,))
    names = {n.name: n.target for n in graph.graph.nodes}
    inplace = plan_memory(graph).inplace
    assert {names[n] for n in inplace} == {torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor}
    assert not plan_memory(capture(returns_input, (x,))).inplace


def test_signatures_beyond_the_limit_evict_the_oldest_with_a_warning():
    sg = deepseek.static_graph(torch.nn.Linear(4, 2).eval(), max_signatures=1)
    with torch.no_grad():
        sg(torch.randn(1, 4))
        with pytest.warns(UserWarning, match="more than 1 input signatures"):
            sg(torch.randn(3, 4))
    assert len(sg.reports) == 1 and sg.reports[0].signature == "(3, 4) float32"
