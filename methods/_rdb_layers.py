"""Adapter layers of rdb's Cross-Modal Asymmetric Adapter (CMAA), independent of the model.

Every adapter works in the bottleneck space: down-projection, a token mixer, the shared
interaction layer, dropout, and a zero-initialised up-projection. The token mixer is
differential attention on the image side (Visual Enhancement Adapter, VEA) and hierarchical
token and phrase attention on the text side (Text Semantic Adapter, TSA). ``AdaptedMLP``
runs an adapter in parallel with an open_clip block's MLP. ``methods.rdb`` builds these
layers from its config and inserts them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def lambda_init_for_depth(depth: int) -> float:
    """Return DIFF Transformer's initial λ, 0.8 − 0.6·exp(−0.3·(depth − 1)), for 1-based block depth."""
    if depth < 1:
        raise ValueError(f"invalid block depth {depth}: depths count from 1")
    return 0.8 - 0.6 * math.exp(-0.3 * (depth - 1))


def differential_attention(
    q1: torch.Tensor,
    k1: torch.Tensor,
    q2: torch.Tensor,
    k2: torch.Tensor,
    v: torch.Tensor,
    lambda_: torch.Tensor | float,
    causal: bool = False,
) -> torch.Tensor:
    """Compute ``(softmax(q1 k1ᵀ/√d) − λ softmax(q2 k2ᵀ/√d)) v`` per head.

    Queries and keys are [batch, heads, length, d] and values [batch, heads, length, dv].
    The two attention maps multiply the same values, so the difference equals two
    scaled-dot-product attentions subtracted, which lets PyTorch pick its fused kernels.
    """
    first = F.scaled_dot_product_attention(q1, k1, v, is_causal=causal)
    second = F.scaled_dot_product_attention(q2, k2, v, is_causal=causal)
    return first - lambda_ * second


class HeadRMSNorm(nn.Module):
    """RMSNorm over the last dimension with a learnable gain (``nn.RMSNorm`` needs torch 2.4)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight.to(x.dtype)


class DifferentialAttention(nn.Module):
    """Multi-head differential attention (Ye et al., DIFF Transformer, arXiv 2410.05258).

    Each of ``heads`` heads has two query/key halves of size d = dim / (2·heads) and values of
    size 2d. λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init, with the four learnable vectors shared by
    the heads of one layer as in DIFF Transformer. Each head's output is RMS-normalised and
    scaled by (1 − λ_init) before the output projection.
    """

    def __init__(self, dim: int, heads: int, lambda_init: float, causal: bool = False):
        super().__init__()
        if heads < 1 or dim % (2 * heads) != 0:
            raise ValueError(
                f"invalid differential attention size: bottleneck width {dim} must be divisible by "
                f"2 × heads = {2 * heads}. Change bottleneck_dim or heads."
            )
        self.heads = heads
        self.head_dim = dim // (2 * heads)
        self.lambda_init = lambda_init
        self.causal = causal

        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.lambda_q1 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_k1 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_q2 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_k2 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.head_norm = HeadRMSNorm(2 * self.head_dim)

    def lambda_value(self) -> torch.Tensor:
        first = torch.exp(torch.dot(self.lambda_q1, self.lambda_k1))
        second = torch.exp(torch.dot(self.lambda_q2, self.lambda_k2))
        return first - second + self.lambda_init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        # Heads 2h and 2h + 1 of the projection are the two halves of differential head h.
        q = self.q_proj(x).view(batch, length, 2 * self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, 2 * self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.heads, 2 * self.head_dim).transpose(1, 2)

        lambda_ = self.lambda_value().to(q.dtype)
        out = differential_attention(q[:, 0::2], k[:, 0::2], q[:, 1::2], k[:, 1::2], v, lambda_, self.causal)
        out = self.head_norm(out) * (1.0 - self.lambda_init)

        out = out.transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(out)


class VisualEnhancementMixer(nn.Module):
    """Pre-norm residual differential attention: the token mixer of the VEA."""

    def __init__(self, dim: int, heads: int, lambda_init: float, causal: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = DifferentialAttention(dim, heads, lambda_init, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.norm(x))


class HierarchicalAttention(nn.Module):
    """Token-level self-attention, then attention from every token to phrase summaries: the TSA mixer.

    A phrase is a window of ``group_size`` consecutive tokens, summarised by its mean. Without
    ``causal`` every token attends to every phrase. With ``causal`` a token at position t
    attends to the phrases that end before its own phrase starts, plus the mean of its own
    phrase up to and including t. So no token reads a later token, as open_clip's causal text
    encoder requires.
    """

    def __init__(self, dim: int, heads: int, group_size: int, causal: bool):
        super().__init__()
        if heads < 1 or dim % heads != 0:
            raise ValueError(
                f"invalid hierarchical attention size: bottleneck width {dim} must be divisible by "
                f"heads = {heads}. Change bottleneck_dim or heads."
            )
        if group_size < 1:
            raise ValueError(f"invalid group_size {group_size}: expected an integer >= 1")
        self.heads = heads
        self.group_size = group_size
        self.causal = causal

        self.token_norm = nn.LayerNorm(dim)
        self.token_qkv = nn.Linear(dim, 3 * dim)
        self.token_out = nn.Linear(dim, dim)
        self.phrase_norm = nn.LayerNorm(dim)
        self.phrase_q = nn.Linear(dim, dim)
        self.phrase_kv = nn.Linear(dim, 2 * dim)
        self.phrase_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._token_attention(self.token_norm(x))
        return x + self._phrase_attention(self.phrase_norm(x))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)

    def _merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, heads, length, head_dim = x.shape
        return x.transpose(1, 2).reshape(batch, length, heads * head_dim)

    def _token_attention(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._split_heads(part) for part in self.token_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.token_out(self._merge_heads(out))

    def _phrase_attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        size = self.group_size
        windows = math.ceil(length / size)
        padded = F.pad(x, (0, 0, 0, windows * size - length)).view(batch, windows, size, dim)

        # Running mean inside each window, whose last entry is the window's full mean. Padding
        # rows are zero and come after every real token, so only the last window's full mean
        # needs the count of real tokens.
        counts = torch.arange(1, size + 1, device=x.device, dtype=x.dtype).view(1, 1, size, 1)
        prefix_means = padded.cumsum(dim=2) / counts
        summaries = prefix_means[:, :, -1]
        last_count = length - (windows - 1) * size
        summaries = torch.cat([summaries[:, :-1], padded[:, -1:].sum(dim=2) / last_count], dim=1)

        q = self._split_heads(self.phrase_q(x))
        k, v = (self._split_heads(part) for part in self.phrase_kv(summaries).chunk(2, dim=-1))
        if not self.causal:
            out = F.scaled_dot_product_attention(q, k, v)
            return self.phrase_out(self._merge_heads(out))

        own = prefix_means.reshape(batch, windows * size, dim)[:, :length]
        own_k, own_v = (self._split_heads(part) for part in self.phrase_kv(own).chunk(2, dim=-1))
        scale = q.shape[-1] ** -0.5
        window_scores = (q @ k.transpose(-2, -1)) * scale
        position_window = torch.arange(length, device=x.device) // size
        finished_before = torch.arange(windows, device=x.device).view(1, windows) < position_window.view(length, 1)
        window_scores = window_scores.masked_fill(~finished_before, float("-inf"))
        own_scores = (q * own_k).sum(dim=-1, keepdim=True) * scale

        weights = torch.softmax(torch.cat([window_scores, own_scores], dim=-1), dim=-1)
        out = weights[..., :windows] @ v + weights[..., windows:] * own_v
        return self.phrase_out(self._merge_heads(out))


class SharedInteraction(nn.Module):
    """Residual Linear + GELU in the bottleneck. One instance serves the adapters of both encoders."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation(self.linear(x))


class BottleneckAdapter(nn.Module):
    """Down-projection, GELU, optional token mixer, optional shared layer, dropout, zero-initialised up-projection.

    The shared layer is held outside the module tree (the model owns it), so that its
    parameters have one name and are not listed once per adapter.
    """

    def __init__(
        self,
        width: int,
        bottleneck_dim: int,
        mixer: nn.Module | None,
        shared: SharedInteraction | None,
        scale: float,
        dropout: float,
    ):
        super().__init__()
        self.down = nn.Linear(width, bottleneck_dim)
        self.activation = nn.GELU()
        self.mixer = mixer
        self._shared = (shared,)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck_dim, width)
        self.scale = scale
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    @property
    def shared(self) -> SharedInteraction | None:
        return self._shared[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.down(x))
        if self.mixer is not None:
            hidden = self.mixer(hidden)
        if self.shared is not None:
            hidden = self.shared(hidden)
        return self.up(self.dropout(hidden)) * self.scale


class AdaptedMLP(nn.Module):
    """An open_clip block MLP with an adapter in parallel: ``mlp(x) + adapter(x)``.

    The MLP's layers stay children under their own names (``c_fc``, ``gelu``, ``c_proj``), so
    the pretrained parameter names do not change, and run in their original order.
    """

    def __init__(self, mlp: nn.Sequential, adapter: BottleneckAdapter):
        super().__init__()
        self.mlp_layer_names = list(mlp._modules)
        for name, layer in mlp.named_children():
            self.add_module(name, layer)
        self.rdb_adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x
        for name in self.mlp_layer_names:
            hidden = self._modules[name](hidden)
        return hidden + self.rdb_adapter(x)


class CosineClassifier(nn.Module):
    """Scene classifier on embeddings: ``scale · cos(feature, class weight)``, like CLIP's zero-shot head."""

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * embed_dim**-0.5)

    def forward(self, features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return scale * F.normalize(features, dim=-1) @ F.normalize(self.weight, dim=-1).to(features.dtype).t()
