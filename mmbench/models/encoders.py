"""Encoders chosen by modality kind: 2D-CNN (image), 1D-CNN (sequence), MLP (vector), embedding
with mean pooling (tokens). Adaptive pooling fixes the flattened size, whatever the input shape."""

from __future__ import annotations

from torch import Tensor, nn

from mmbench.data.base import ModalityKind, ModalitySpec


class ConvEncoder(nn.Module):
    """Two convolutions (the second strided), adaptive average pooling to a fixed grid, a linear
    layer: 2-D for images ``[C, H, W]``, 1-D for sequences ``[C, T]``."""

    LAYERS = {2: (nn.Conv2d, 3, nn.AdaptiveAvgPool2d, (4, 4)), 1: (nn.Conv1d, 5, nn.AdaptiveAvgPool1d, (8,))}

    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        conv, kernel, pool, grid = self.LAYERS[len(spec.shape) - 1]
        channels, width = spec.shape[0], max(8, hidden // 8)
        cells = 1
        for g in grid:
            cells *= g
        self.net = nn.Sequential(
            conv(channels, width, kernel, padding=kernel // 2), nn.ReLU(),
            conv(width, 2 * width, kernel, padding=kernel // 2, stride=2), nn.ReLU(),
            pool(grid), nn.Flatten(),
            nn.Linear(2 * width * cells, out_dim), nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class VectorEncoder(nn.Module):
    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(spec.shape[0], hidden), nn.ReLU(), nn.Linear(hidden, out_dim), nn.ReLU()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TokenEncoder(nn.Module):
    """Embeddings mean-pooled over the positions, a linear layer. With the spec's ``pad_id``, the
    mean is over the other positions only (a row of padding alone pools to zeros), so padding
    never changes the encoding; without one, over all positions."""

    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.pad_id = spec.pad_id
        self.embed = nn.Embedding(spec.vocab_size, hidden)
        self.out = nn.Sequential(nn.Linear(hidden, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        ids = x.long()
        if self.pad_id is None:
            return self.out(self.embed(ids).mean(dim=1))
        keep = (ids != self.pad_id).unsqueeze(-1)
        vectors = self.embed(ids).masked_fill(~keep, 0.0)
        count = keep.sum(dim=1).clamp(min=1).to(vectors.dtype)
        return self.out(vectors.sum(dim=1) / count)


ENCODERS: dict[ModalityKind, type[nn.Module]] = {
    ModalityKind.IMAGE: ConvEncoder,
    ModalityKind.SEQUENCE: ConvEncoder,
    ModalityKind.VECTOR: VectorEncoder,
    ModalityKind.TOKENS: TokenEncoder,
}


def build_encoder(spec: ModalitySpec, out_dim: int, hidden: int = 128) -> nn.Module:
    """The encoder for ``spec``'s kind, mapping one modality to ``out_dim`` features."""
    return ENCODERS[spec.kind](spec, out_dim, hidden)
