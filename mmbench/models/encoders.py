"""Encoders chosen by modality kind: 2D-CNN (image), 1D-CNN (sequence), MLP (vector), embedding
with mean pooling (tokens). Adaptive pooling fixes the flattened size, whatever the input shape."""

from __future__ import annotations

from torch import Tensor, nn

from mmbench.data.base import ModalityKind, ModalitySpec


class ImageEncoder(nn.Module):
    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        channels = spec.shape[0]
        width = max(8, hidden // 8)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten(),
            nn.Linear(2 * width * 16, out_dim), nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SequenceEncoder(nn.Module):
    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        channels = spec.shape[0]
        width = max(8, hidden // 8)
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 5, padding=2), nn.ReLU(),
            nn.Conv1d(width, 2 * width, 5, padding=2, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool1d(8), nn.Flatten(),
            nn.Linear(2 * width * 8, out_dim), nn.ReLU(),
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
    def __init__(self, spec: ModalitySpec, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(spec.vocab_size, hidden)
        self.out = nn.Sequential(nn.Linear(hidden, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.embed(x.long()).mean(dim=1))


ENCODERS: dict[ModalityKind, type[nn.Module]] = {
    ModalityKind.IMAGE: ImageEncoder,
    ModalityKind.SEQUENCE: SequenceEncoder,
    ModalityKind.VECTOR: VectorEncoder,
    ModalityKind.TOKENS: TokenEncoder,
}


def build_encoder(spec: ModalitySpec, out_dim: int, hidden: int = 128) -> nn.Module:
    """The encoder for ``spec``'s kind, mapping one modality to ``out_dim`` features."""
    return ENCODERS[spec.kind](spec, out_dim, hidden)
