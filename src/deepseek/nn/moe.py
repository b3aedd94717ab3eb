"""MoELayer: a mixture of SwiGLU experts with top-k routing, dispatched by expert.

Routing, two ways:

- ``router="softmax"`` (Mixtral): softmax over the experts, the top-k kept and their weights renormalised to sum
  to 1; balanced by the Switch Transformer auxiliary loss ``E * sum_e f_e * P_e`` (``f_e`` the share of routed
  slots expert ``e`` received, ``P_e`` its mean router probability) and the ST-MoE router z-loss
  ``mean(logsumexp(logits)^2)``, both returned for the caller to add to its loss.
- ``router="sigmoid"`` (DeepSeek-V3): sigmoid affinities; experts are *selected* by affinity plus a per-expert bias
  that is not learned by gradient but nudged after every training step (up by ``bias_update_rate`` for experts
  below the mean load, down for those above: auxiliary-loss-free balancing); the selected affinities, normalised,
  weight the experts' outputs. The auxiliary loss is still computed for monitoring (its coefficient defaults to 0).

Dispatch: the (token, expert) assignments are sorted by expert, each expert runs one GEMM chain on exactly its own
tokens, and the weighted outputs are scattered back with ``index_add_`` — never every expert on every token.
``capacity_factor`` caps each expert at ``ceil(factor * tokens * top_k / experts)`` assignments (the overflow is
dropped, counted, and passes through the residual path of the caller); None is drop-less. :meth:`forward_dense`
is the all-experts-on-all-tokens form, kept as the benchmark baseline and to test the dispatch against.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._core.checks import check_choice, check_int
from .._core.errors import invalid

ROUTERS = ("softmax", "sigmoid")


class SwiGLU(torch.nn.Module):
    """``down(silu(gate(x)) * up(x))`` (Shazeer 2020), the MLP of Llama, Mixtral and DeepSeek."""

    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = torch.nn.Linear(dim, hidden, bias=bias)
        self.up_proj = torch.nn.Linear(dim, hidden, bias=bias)
        self.down_proj = torch.nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


@dataclasses.dataclass
class MoELosses:
    """The last forward's balancing losses, already multiplied by their coefficients (add ``total`` to the loss)."""

    aux_loss: torch.Tensor
    z_loss: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.aux_loss + self.z_loss


class MoELayer(torch.nn.Module):
    """``num_experts`` SwiGLU experts of width ``expert_dim`` (default ``4 * dim``), ``top_k`` per token;
    ``n_shared_experts`` always-on experts (DeepSeek) added to every token; see the module docstring for
    ``router``, ``capacity_factor`` and the losses (``aux_loss_coef``, ``z_loss_coef``).

    ``forward(x)`` takes ``(..., dim)`` and returns the same shape; ``layer.losses`` holds the last forward's
    :class:`MoELosses`, ``layer.load()`` the last forward's per-expert statistics."""

    def __init__(self, dim: int, num_experts: int = 8, top_k: int = 2, *, expert_dim: int | None = None,
                 router: str = "softmax", n_shared_experts: int = 0, capacity_factor: float | None = None,
                 aux_loss_coef: float | None = None, z_loss_coef: float = 1e-3, bias_update_rate: float = 1e-3,
                 normalize_top_k: bool = True) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("num_experts", num_experts), ("top_k", top_k)):
            check_int(value, name, minimum=1, expected="a positive integer")
        if top_k > num_experts:
            raise invalid("top_k", top_k, f"at most num_experts ({num_experts})")
        check_choice(router, "router", ROUTERS, expected=f"one of {ROUTERS}")
        check_int(n_shared_experts, "n_shared_experts", minimum=0, expected="a count >= 0")
        if capacity_factor is not None and not capacity_factor > 0:
            raise invalid("capacity_factor", capacity_factor, "None (drop-less) or a positive factor, e.g. 1.25")
        expert_dim = 4 * dim if expert_dim is None else expert_dim
        check_int(expert_dim, "expert_dim", minimum=1, expected="a positive integer")
        aux_loss_coef = (0.01 if router == "softmax" else 0.0) if aux_loss_coef is None else aux_loss_coef
        for name, value in (("aux_loss_coef", aux_loss_coef), ("z_loss_coef", z_loss_coef),
                            ("bias_update_rate", bias_update_rate)):
            if not value >= 0:
                raise invalid(name, value, "a number >= 0")
        self.dim, self.num_experts, self.top_k, self.router_kind = dim, num_experts, top_k, router
        self.capacity_factor, self.normalize_top_k = capacity_factor, normalize_top_k
        self.aux_loss_coef, self.z_loss_coef, self.bias_update_rate = aux_loss_coef, z_loss_coef, bias_update_rate
        self.router = torch.nn.Linear(dim, num_experts, bias=False)
        self.experts = torch.nn.ModuleList(SwiGLU(dim, expert_dim) for _ in range(num_experts))
        self.shared = SwiGLU(dim, expert_dim * n_shared_experts) if n_shared_experts else None
        # DeepSeek-V3's balancing bias: used to choose experts, never to weight them; a buffer, not a parameter
        self.register_buffer("expert_bias", torch.zeros(num_experts), persistent=router == "sigmoid")
        self.register_buffer("tokens_per_expert", torch.zeros(num_experts, dtype=torch.long), persistent=False)
        self.dropped_tokens = 0
        self.losses: MoELosses | None = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top-k expert indices, their weights, router logits) for tokens ``x`` of shape ``(tokens, dim)``."""
        logits = self.router(x)
        if self.router_kind == "softmax":
            scores = logits.float().softmax(-1)
            weights, index = scores.topk(self.top_k, dim=-1)
        else:
            scores = torch.sigmoid(logits.float())
            _, index = (scores + self.expert_bias).topk(self.top_k, dim=-1)
            weights = scores.gather(-1, index)
        if self.normalize_top_k:
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-20)
        self._update_losses(logits, scores, index)
        return index, weights.to(x.dtype), logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise invalid("x", list(x.shape), f"(..., {self.dim})")
        return self._run(x, self._dispatch)

    def _run(self, x: torch.Tensor, combine: Callable[..., torch.Tensor]) -> torch.Tensor:
        """Route the tokens of ``x``, ``combine(tokens, index, weights)`` the experts' outputs, add the
        shared experts'."""
        tokens = x.reshape(-1, self.dim)
        out = combine(tokens, *self.route(tokens)[:2])
        if self.shared is not None:
            out = out + self.shared(tokens)
        return out.reshape(x.shape)

    def _dispatch(self, tokens: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n, k = index.shape
        flat = index.reshape(-1)
        order = torch.argsort(flat, stable=True)  # assignments grouped by expert, token order kept inside a group
        counts = torch.bincount(flat, minlength=self.num_experts)
        slot_weights = weights.reshape(-1)[order]
        token_of = order // k
        keep = None
        if self.capacity_factor is not None:
            capacity = math.ceil(self.capacity_factor * n * k / self.num_experts)
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(n * k, device=tokens.device) - starts.repeat_interleave(counts)
            keep = rank < capacity
            self.dropped_tokens = int((~keep).sum())
            counts = counts.clamp(max=capacity)
            token_of, slot_weights = token_of[keep], slot_weights[keep]
        else:
            self.dropped_tokens = 0
        self.tokens_per_expert = counts.detach().clone()
        if self.training and self.router_kind == "sigmoid" and self.bias_update_rate:
            with torch.no_grad():  # below-average experts become more likely to be chosen, above-average less
                load = counts.float()
                self.expert_bias += self.bias_update_rate * torch.sign(load.mean() - load)
        gathered = tokens[token_of]
        outputs = []
        start = 0
        for e, count in enumerate(counts.tolist()):
            if count:
                outputs.append(self.experts[e](gathered[start:start + count]))
            start += count
        out = torch.zeros_like(tokens)
        if outputs:
            routed = torch.cat(outputs) * slot_weights[:, None]
            out = out.index_add(0, token_of, routed)
        return out

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on every token, combined with the same routing weights (zero off the top-k): the baseline
        the dispatch is measured and tested against. Drop-less; does not update the balancing bias."""
        return self._run(x, self._dense)

    def _dense(self, tokens: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(tokens.shape[0], self.num_experts, dtype=tokens.dtype, device=tokens.device)
        full.scatter_(1, index, weights)
        stacked = torch.stack([expert(tokens) for expert in self.experts], 1)  # (tokens, experts, dim)
        return (stacked * full[..., None]).sum(1)

    def _update_losses(self, logits: torch.Tensor, scores: torch.Tensor, index: torch.Tensor) -> None:
        n = logits.shape[0]
        assigned = torch.zeros(n, self.num_experts, device=logits.device).scatter_(1, index, 1.0)
        share = assigned.mean(0) / self.top_k  # f_e: the share of routed slots (sums to 1)
        probs = scores / scores.sum(-1, keepdim=True) if self.router_kind == "sigmoid" else scores
        aux = self.num_experts * (share * probs.mean(0)).sum()
        z = torch.logsumexp(logits.float(), dim=-1).pow(2).mean()
        self.losses = MoELosses(self.aux_loss_coef * aux, self.z_loss_coef * z)

    def load(self) -> dict[str, object]:
        """The last forward's routing: tokens per expert, max/min load, dead experts (no token), dropped tokens."""
        counts = self.tokens_per_expert.tolist()
        busy = [c for c in counts if c]
        return {"tokens_per_expert": counts, "dead_experts": [e for e, c in enumerate(counts) if not c],
                "max_over_min": (max(busy) / min(busy)) if busy and len(busy) == len(counts) else float("inf"),
                "dropped_tokens": self.dropped_tokens}

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_experts={self.num_experts}, top_k={self.top_k}, router={self.router_kind}, "
                f"capacity_factor={self.capacity_factor}")
