"""Train and evaluate one :class:`~nas_width.MixerConfig` under a :class:`Recipe`.

The data sets are small, so the whole :class:`~nas_width.data.splits.Splits` is moved to the
device once and a batch is an index gather of those tensors: no DataLoader and no worker
processes, which keeps many concurrent Ray trials cheap. One seed fixes the weights, the batch
order and the augmentation; on CPU the same seed gives a bit-identical history.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_width.config import MixerConfig
from nas_width.data.splits import Splits
from nas_width.errors import ConfigError
from nas_width.models import build_model
from nas_width.train.optim import make_optimizer
from nas_width.train.recipe import Recipe

__all__ = [
    "EpochReport",
    "FitResult",
    "Training",
    "TrialFailed",
    "check_data",
    "evaluate",
    "fit",
    "resolve_device",
]

# On CUDA, reading the loss back forces a sync; check for non-finite values every few steps.
_CUDA_CHECK_EVERY = 16


class TrialFailed(RuntimeError):  # noqa: N818 (the public name Ray trial code catches)
    """The trial cannot produce a meaningful result (e.g. the loss diverged).

    ``reason`` (also the message) is one line, meant for Ray's and Optuna's failure records.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EpochReport:
    """Metrics after one epoch; ``val_*`` are NaN in ``final`` mode (validation was trained on).

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean label-smoothed training loss over the epoch's batches (per image).
        val_loss: validation cross-entropy without label smoothing.
        val_accuracy: validation top-1 accuracy in [0, 1].
        images_per_sec: training throughput of the epoch (evaluation excluded).
        seconds: wall time of the whole epoch, evaluation included.
        train_accuracy: top-1 accuracy on the epoch's training batches as they were trained
            (augmented, the weights moving): the cheap signal of under-training.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    images_per_sec: float
    seconds: float
    train_accuracy: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (eval mode, on ``device``) and its history."""

    model: nn.Module
    history: list[EpochReport] = field(default_factory=list)
    test_accuracy: float | None = None
    test_loss: float | None = None
    device: str = "cpu"

    def metrics(self) -> dict[str, Any]:
        """A JSON-ready summary for :func:`~nas_width.train.save_trained`."""
        return {
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "device": self.device,
            "history": [r.to_dict() for r in self.history],
        }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU.

    Raises:
        ConfigError: ``device`` is not ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, or is not
            available on this machine.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not one of cpu, cuda, cuda:N, mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise ConfigError(f"device {str(device)!r} is not available ({count} CUDA devices)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r} is not available on this machine")
    elif dev.type != "cpu":
        raise ConfigError(f"device {str(device)!r} is not one of cpu, cuda, cuda:N, mps")
    return dev


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 1024,
    label_smoothing: float = 0.0,
) -> tuple[float, float]:
    """Mean cross-entropy and top-1 accuracy (in [0, 1]) of ``model`` on ``x`` (N, ...), ``y`` (N,).

    Runs in eval mode on ``x``'s device (bf16 autocast on CUDA) and restores the model's
    previous mode. An empty split gives ``(nan, nan)``.
    """
    n = x.shape[0]
    if n == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        for start in range(0, n, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb).float()  # (B, classes)
            loss_sum += F.cross_entropy(
                logits, yb, reduction="sum", label_smoothing=label_smoothing
            )
            correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    return loss_sum.item() / n, correct.item() / n


def check_data(config: MixerConfig, data: Splits) -> None:
    """Refuse a config whose input shape or number of classes does not fit ``data``."""
    if tuple(config.input_shape) != tuple(data.input_shape):
        raise ConfigError(
            f"config input_shape {list(config.input_shape)} does not match data "
            f"{data.name!r} with input_shape {list(data.input_shape)}"
        )
    if config.num_classes < data.num_classes:
        raise ConfigError(
            f"config num_classes {config.num_classes} is less than the "
            f"{data.num_classes} classes of data {data.name!r}"
        )


def _first_bad(losses: torch.Tensor, start: int, stop: int, epoch: int) -> None:
    """Raise TrialFailed at the first non-finite loss among steps [start, stop) of an epoch."""
    window = losses[start:stop]
    bad = ~torch.isfinite(window)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        value = float(window[i])
        raise TrialFailed(f"non-finite loss ({value}) at epoch {epoch}, step {start + i + 1}")


class Training:
    """One model in training under a recipe, advanced an epoch at a time.

    :func:`fit` steps one to the end; successive halving (:mod:`nas_width.train.tuning`)
    steps several recipes of one shape side by side and keeps the best. The arguments are
    :func:`fit`'s; the model, optimizer, schedule and generator are built once, here, so that
    stepping is the same whoever drives it.
    """

    def __init__(
        self,
        config: MixerConfig,
        recipe: Recipe,
        data: Splits,
        *,
        device: str | torch.device | None = None,
        final: bool = False,
    ) -> None:
        check_data(config, data)
        dev = resolve_device(device)
        torch.manual_seed(recipe.seed)
        self.gen = torch.Generator(device=dev).manual_seed(recipe.seed)
        self.model = build_model(config).to(dev)
        self.data = data.to(dev)
        self.recipe, self.final, self.device = recipe, final, dev
        d = self.data
        self.x, self.y = d.train_and_val() if final else (d.x_train, d.y_train)
        self.n = n = self.x.shape[0]
        if n == 0:
            raise ConfigError(f"data {data.name!r} has no training examples")
        bs = recipe.batch_size
        self.steps = steps = math.ceil(n / bs)
        total = recipe.epochs * steps
        self.optimizer, self.schedule = make_optimizer(
            self.model,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            total_steps=total,
            warmup_steps=min(total, round(recipe.warmup_epochs * steps)),
        )
        self.augment = _augmenter(recipe, self.data, self.gen)
        self.sizes = torch.full((steps,), float(bs), device=dev)  # images per step
        self.sizes[-1] = n - bs * (steps - 1)  # the last one partial
        self.history: list[EpochReport] = []

    @property
    def done(self) -> bool:
        return len(self.history) >= self.recipe.epochs

    def epoch(self) -> EpochReport:
        """Train one more epoch, evaluate on validation (NaN in ``final`` mode) and return it."""
        dev, bs, steps, n = self.device, self.recipe.batch_size, self.steps, self.n
        epoch = len(self.history) + 1
        started = time.perf_counter()
        check_every = 1 if dev.type == "cpu" else _CUDA_CHECK_EVERY
        cuda = dev.type == "cuda"
        model = self.model
        model.train()
        losses = torch.empty(steps, device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        order = torch.randperm(n, device=dev, generator=self.gen)
        checked = 0
        for step in range(steps):
            idx = order[step * bs : (step + 1) * bs]
            xb, yb = self.augment(self.x[idx]), self.y[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(xb)
                loss = F.cross_entropy(
                    logits.float(), yb, label_smoothing=self.recipe.label_smoothing
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            self.schedule.step()
            losses[step] = loss.detach()
            correct += (logits.detach().argmax(dim=1) == yb).sum()
            if step + 1 - checked >= check_every or step + 1 == steps:
                _first_bad(losses, checked, step + 1, epoch)
                checked = step + 1
        train_loss = float((losses * self.sizes).sum()) / n  # syncs CUDA before the clock
        train_seconds = time.perf_counter() - started

        if self.final:
            val_loss, val_acc = math.nan, math.nan
        else:
            val_loss, val_acc = evaluate(model, self.data.x_val, self.data.y_val)
        report = EpochReport(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_acc,
            images_per_sec=n / train_seconds if train_seconds > 0 else math.inf,
            seconds=time.perf_counter() - started,
            train_accuracy=int(correct) / n,
        )
        self.history.append(report)
        return report

    def test(self) -> tuple[float, float]:
        """Loss and accuracy on the held-out test split (leaves the model in eval mode)."""
        self.model.eval()
        return evaluate(self.model, self.data.x_test, self.data.y_test)


def fit(
    config: MixerConfig,
    recipe: Recipe,
    data: Splits,
    *,
    device: str | torch.device | None = None,
    report: Callable[[EpochReport], None] | None = None,
    final: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train ``build_model(config)`` on ``data`` with ``recipe``; evaluate after every epoch.

    Args:
        config: the architecture; its input_shape must match the data.
        recipe: optimizer, schedule, augmentation and seed.
        data: train / validation / test tensors (moved to ``device`` once).
        device: ``None`` = CUDA if available, else CPU. CUDA runs forward and loss under bf16
            autocast; CPU runs plain fp32 and is bit-reproducible for a given seed.
        report: called with each :class:`EpochReport`; whatever it raises (e.g. Ray stopping
            the trial) propagates unchanged.
        final: train on train + validation and evaluate once on test at the end
            (``test_accuracy``/``test_loss`` set; per-epoch ``val_*`` are NaN).
        progress: print one line per epoch to stderr.

    Raises:
        TrialFailed: the training loss became NaN or infinite.
        ConfigError: the config does not fit the data.
    """
    run = Training(config, recipe, data, device=device, final=final)
    result = FitResult(model=run.model, device=str(run.device))
    while not run.done:
        epoch_report = run.epoch()
        result.history.append(epoch_report)
        if progress:
            _print_progress(epoch_report, recipe.epochs)
        if report is not None:
            report(epoch_report)

    run.model.eval()
    if final:
        result.test_loss, result.test_accuracy = run.test()
        if progress:
            print(
                f"test loss {result.test_loss:.4f}  test acc {result.test_accuracy:.2%}",
                file=sys.stderr,
                flush=True,
            )
    return result


def _augmenter(
    recipe: Recipe, data: Splits, gen: torch.Generator
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-batch augmentation (B, C, H, W) -> (B, C, H, W); identity without one."""
    if recipe.augment == "none" or not data.is_image:
        return lambda x: x
    # Imported only when used: keeps fit() free of the data loaders' dependencies.
    from nas_width.data import random_crop_flip

    pad = max(1, data.input_shape[1] // 8)
    flip = recipe.augment == "crop-flip"
    return lambda x: random_crop_flip(x, pad=pad, flip=flip, generator=gen)


def epoch_line(r: EpochReport, epochs: int) -> str:
    """``epoch  3/25  train_loss 0.4120  val_loss ..  val_acc ..  9,120 img/s  1.2s``."""
    width = len(str(epochs))
    val = "" if math.isnan(r.val_loss) else f"  val_loss {r.val_loss:.4f}"
    acc = "" if math.isnan(r.val_accuracy) else f"  val_acc {r.val_accuracy:.2%}"
    return (
        f"epoch {r.epoch:>{width}}/{epochs}  train_loss {r.train_loss:.4f}{val}{acc}"
        f"  {r.images_per_sec:,.0f} img/s  {r.seconds:.1f}s"
    )


def _print_progress(r: EpochReport, epochs: int) -> None:
    print(epoch_line(r, epochs), file=sys.stderr, flush=True)
