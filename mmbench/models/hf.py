"""``hf_text_fusion``: a Hugging Face text encoder that takes an attention mask, fused with the
zoo's encoders of the other modalities, as a plain ``nn.Module`` (not a FusionModel).

The text encoder is a small BERT built from a ``BertConfig`` with random weights (nothing is
downloaded); the modality's ``pad_id`` is its padding id. ``forward(*inputs, attention_mask)``
receives the modalities in the dataset's order and the mask the harness derives from the
padding of the ids it is given (:mod:`mmbench.models.calling`), as a model from the Hub would be
called. Mean-pooled over unmasked positions, projected, concatenated with the other modalities'
features and classified. Needs the ``text`` extra (``transformers``), imported only when built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.models.encoders import build_encoder
from mmbench.registry import MODELS


class HFTextFusion(nn.Module):
    """A BERT over the one tokens modality beside the zoo encoders of the others."""

    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, bert: nn.Module, dim: int) -> None:
        super().__init__()
        self.names = tuple(m.name for m in modalities)
        self.text = next(m.name for m in modalities if not m.is_continuous)
        self.bert = bert
        self.project = nn.Sequential(nn.Linear(bert.config.hidden_size, dim), nn.ReLU())
        self.others = nn.ModuleDict({m.name: build_encoder(m, dim, dim) for m in modalities if m.is_continuous})
        self.head = nn.Sequential(nn.Linear(dim * len(self.names), dim), nn.ReLU(), nn.Linear(dim, n_classes))

    def forward(self, *inputs: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        x = dict(zip(self.names, inputs, strict=True))
        ids = x[self.text].long()
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # [N, T, H]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        features = [self.project(pooled) if n == self.text else self.others[n](x[n]) for n in self.names]
        return self.head(torch.cat(features, dim=1))


def bert_encoder(spec: ModalitySpec, hidden: int, layers: int, heads: int) -> nn.Module:
    """A randomly initialised BertModel for token modality ``spec`` (no pooler, no download)."""
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        raise MMBenchError("model hf_text_fusion needs the transformers package: pip install 'mmbench[text]'") from None
    config = BertConfig(vocab_size=spec.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden,
                        max_position_embeddings=max(spec.shape[0], 2),
                        pad_token_id=spec.pad_id if spec.pad_id is not None else 0,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config._attn_implementation = "eager"  # an additive mask: rows that are all padding stay finite
    return BertModel(config, add_pooling_layer=False)


@MODELS.register("hf_text_fusion", family="hf",
                 description="a small randomly initialised Hugging Face BERT over the tokens modality "
                             "(attention mask from its padding) fused with zoo encoders; needs mmbench[text]")
def hf_text_fusion(modalities: Sequence[ModalitySpec], n_classes: int, hidden: PositiveInt = 32,
                   layers: PositiveInt = 2, heads: PositiveInt = 2, dim: PositiveInt = 64) -> Any:
    """The model for a dataset with exactly one tokens modality; ``hidden`` (BERT width, a
    multiple of ``heads``), ``layers``, ``heads`` and the fused feature size ``dim``."""
    tokens = [m for m in modalities if not m.is_continuous]
    if len(tokens) != 1:
        raise MMBenchError(f"hf_text_fusion reads one tokens modality and the dataset has {len(tokens)}; use "
                           "it on a dataset with one text modality")
    if hidden % heads:
        raise MMBenchError(f"hf_text_fusion: hidden ({hidden}) must be a multiple of heads ({heads})")
    return HFTextFusion(modalities, n_classes, bert_encoder(tokens[0], hidden, layers, heads), dim)
