"""Inception's frozen CPU layers (inception.frozen_channels_last) compiled by torch's inductor for long passes.

The frozen TorchScript graph holds only convolutions (batch norms folded in), ReLUs, poolings and concatenations.
It is rebuilt op for op as a torch.fx graph (TorchScript itself cannot be compiled) and handed to inductor with
freezing, which fuses each ReLU into its convolution and keeps oneDNN's weight layout: about 1.15x the frozen
layers' images per CPU-second, features within ~1e-6 relative of them (BENCHMARKS.md). The compile takes about
50 s on a 2-core CPU and needs a C++ compiler, so it is used only for calls of at least
inception.COMPILE_MIN_IMAGES images, and a compile that fails falls back to the frozen layers with one warning.
"""

from __future__ import annotations

import functools
import warnings

import torch

_OPS = {
    "aten::conv2d": torch.conv2d,
    "aten::relu": torch.relu,
    "aten::cat": torch.cat,
    "aten::avg_pool2d": torch._C._nn.avg_pool2d,
    "aten::max_pool2d": torch.max_pool2d,
}


def fx_from_frozen(frozen: torch.jit.ScriptModule) -> torch.fx.GraphModule:
    """The frozen graph, node for node, as an fx.GraphModule (constant tensors become buffers); the same values."""
    graph, root, env = torch.fx.Graph(), torch.nn.Module(), {}
    env[list(frozen.graph.inputs())[1]] = graph.placeholder("x")  # inputs: (self, x)

    def value(v):
        if v in env:
            return env[v]
        node = v.node()
        if node.kind() == "prim::ListConstruct":
            return [value(i) for i in node.inputs()]
        if node.kind() != "prim::Constant":
            raise NotImplementedError(f"Inception graph node {node.kind()}")
        constant = v.toIValue()
        if not isinstance(constant, torch.Tensor):
            return constant
        name = f"constant{len(root._buffers)}"
        root.register_buffer(name, constant)
        env[v] = graph.get_attr(name)
        return env[v]

    for node in frozen.graph.nodes():
        if node.kind() in ("prim::Constant", "prim::ListConstruct"):
            continue
        if node.kind() not in _OPS:
            raise NotImplementedError(f"Inception graph node {node.kind()}")
        env[node.output()] = graph.call_function(_OPS[node.kind()], tuple(value(i) for i in node.inputs()))
    graph.output(value(list(frozen.graph.outputs())[0]))
    return torch.fx.GraphModule(root, graph).eval()


class CompiledLayers:
    """Callable like the frozen layers on chunks of exactly `chunk` images (a shorter chunk is padded, so inductor
    compiles one static shape once); the frozen layers after a failed compile."""

    def __init__(self, frozen: torch.jit.ScriptModule, chunk: int):
        self.frozen, self.chunk, self.compiled = frozen, chunk, None
        try:
            self.compiled = torch.compile(fx_from_frozen(frozen), dynamic=False, options={"freezing": True})
        except Exception as exc:  # a graph with an op the rebuild does not know
            self._fall_back(exc)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is None:
            return self.frozen(x)
        n = len(x)
        padded = torch.cat([x, x.new_zeros(self.chunk - n, *x.shape[1:])]) if n < self.chunk else x
        try:
            return self.compiled(padded.contiguous(memory_format=torch.channels_last))[:n]
        except Exception as exc:  # no C++ compiler, an unsupported CPU: the frozen layers give the same features
            self._fall_back(exc)
            return self.frozen(x)

    def _fall_back(self, exc: Exception) -> None:
        self.compiled = None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        warnings.warn(f"Inception compile failed ({first}); using the frozen layers (~15 % slower)", stacklevel=3)


@functools.lru_cache(maxsize=1)
def compiled_layers(frozen: torch.jit.ScriptModule, chunk: int) -> CompiledLayers:
    """One compiled copy per process of the loaded frozen layers."""
    return CompiledLayers(frozen, chunk)
