"""Hierarchical gradient synchronisation for jobs with several processes per machine ("node").

torchrun numbers a node's processes consecutively (rank = node x processes_per_node + local rank). The hierarchical
all-reduce sums each bucket inside the node first, then only the node leaders (local rank 0) all-reduce those sums
across nodes, then each leader broadcasts the total back inside its node: one process per node talks over the
network instead of all of them. The sharded form, HSDP, is FSDP2 on a 2-D device mesh (replicate across nodes,
shard within a node): :func:`hsdp_mesh`.
"""

import dataclasses  # no ``from __future__ import annotations``: DDP checks the hook's annotations at run time
import os
from typing import Any

import torch
import torch.distributed as dist

from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class NodeLayout:
    """Where this process sits: ``nodes`` x ``per_node`` processes; its node, and the groups it belongs to."""

    nodes: int
    per_node: int
    node: int
    intra: Any  # this node's processes
    leaders: Any  # every node's local rank 0 (None on the other processes)
    leader_rank: int  # the global rank of this node's leader

    @property
    def is_leader(self) -> bool:
        return dist.get_rank() == self.leader_rank


def processes_per_node(override: int | None = None) -> int:
    """``override``, else torchrun's LOCAL_WORLD_SIZE, checked against the world size."""
    world = dist.get_world_size()
    per_node = override if override is not None else int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if per_node < 1 or world % per_node:
        raise invalid("processes_per_node", per_node, f"a divisor of the world size {world}")
    return per_node


def node_layout(override: int | None = None) -> NodeLayout:
    """The intra-node and leader process groups (every process must call this, in the same order)."""
    per_node = processes_per_node(override)
    world, rank = dist.get_world_size(), dist.get_rank()
    nodes = world // per_node
    # new_group is collective: every process creates every group
    groups = [dist.new_group(list(range(node * per_node, (node + 1) * per_node))) for node in range(nodes)]
    intra = groups[rank // per_node]
    leaders_group = dist.new_group([node * per_node for node in range(nodes)])
    node = rank // per_node
    return NodeLayout(nodes=nodes, per_node=per_node, node=node, intra=intra,
                      leaders=leaders_group if rank % per_node == 0 else None, leader_rank=node * per_node)


@dataclasses.dataclass
class _HierarchicalState:
    layout: NodeLayout
    stats: Any  # CommStats


def hierarchical_hook(state: _HierarchicalState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: sum in the node, sum across node leaders, broadcast in the node, average."""
    layout = state.layout
    buffer = bucket.buffer()
    payload = buffer.numel() * buffer.element_size()
    if layout.per_node > 1:
        dist.all_reduce(buffer, group=layout.intra)
    if layout.leaders is not None and layout.nodes > 1:
        dist.all_reduce(buffer, group=layout.leaders)
        state.stats.bytes_internode += payload
    if layout.per_node > 1:
        dist.broadcast(buffer, src=layout.leader_rank, group=layout.intra)
    buffer.div_(layout.nodes * layout.per_node)
    state.stats.add(buffer.numel(), buffer.element_size())
    future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    future.set_result(buffer)
    return future


def hsdp_mesh(device_type: str, override: int | None = None) -> Any:
    """A (nodes, processes per node) device mesh named ("replicate", "shard") for FSDP2's hybrid sharding."""
    from torch.distributed.device_mesh import init_device_mesh

    per_node = processes_per_node(override)
    return init_device_mesh(device_type, (dist.get_world_size() // per_node, per_node),
                            mesh_dim_names=("replicate", "shard"))
