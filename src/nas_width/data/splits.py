"""The in-memory form of every data set: tensors for train, validation and test.

Small data sets live whole on the trial's device (no per-batch worker processes); a batch is an
index gather. The validation split is carved deterministically from the training data and is
what a search optimizes; the test split is never seen by a search, only by ``nas-width train``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

__all__ = ["Splits"]


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors of one data set.

    Attributes:
        name: the data set's name as given to :func:`nas_width.data.load_dataset`.
        x_*: float32 inputs, shape (N, *input_shape), normalized with train statistics.
        y_*: int64 labels in [0, num_classes), shape (N,).
        input_shape: (C_in, H, W) for images, (C_in, L) for 1-D signals.
        num_classes: number of classes.
        mean, std: per input channel, the affine map that normalized every split (x - mean)
            / std, from the train split's statistics: a trained model's input contract (empty
            when the tensors were made by hand).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        """Image data (C, H, W): crop/flip augmentation applies."""
        return len(self.input_shape) == 3

    def to(self, device: torch.device | str) -> Splits:
        """All tensors moved to ``device`` (done once per trial, not per batch)."""
        moved = {
            k: getattr(self, k).to(device)
            for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        return replace(self, **moved)

    def train_and_val(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Train plus validation, for the final model that is then evaluated on test."""
        return torch.cat([self.x_train, self.x_val]), torch.cat([self.y_train, self.y_val])
