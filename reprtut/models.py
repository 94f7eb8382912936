"""Classifiers whose representation R(x) and linear head are separate modules.

Every classifier in the book is a :class:`Classifier`: ``features`` maps images in [0, 1] to
the representation R(x) (the activations before the last linear layer), and ``head`` is that
last linear layer, so chapters can attack, invert or probe R without surgery. Input
normalisation is the first layer of ``features``: attacks and plots only ever see [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from . import validate
from .data import INFO


class _ChannelsLast(torch.autograd.Function):
    """x (B, C, H, W) in channels-last layout; its gradient goes back in x's own layout."""

    @staticmethod
    def forward(ctx, x):
        ctx.layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous(memory_format=ctx.layout)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) as a channels-last tensor for the layers after it, differentiably; the
    gradient with respect to x keeps x's layout, so attacks and losses see plain tensors."""
    return _ChannelsLast.apply(x)


class Normalize(nn.Module):
    """(x - mean) / std per channel; x (B, C, H, W) in [0, 1].

    The result is channels-last (:func:`_channels_last`): every convolution, pooling and
    batch norm after it runs in that layout, which on a CPU trains the book's CNNs 1.3-1.5x
    and attacks them 1.4-1.5x faster than the default layout (oneDNN's kernels are written
    for it; PyTorch's own max-pool over the default layout is a scalar loop).
    """

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _channels_last((x - self.mean) / self.std)


class Classifier(nn.Module):
    """logits = head(R(x)) with R = ``features``; x (B, C, H, W) in [0, 1] -> (B, K).

    Convolution weights are stored channels-last, the layout :class:`Normalize` gives the
    activations (a one-channel MNIST input is in both layouts, and the weights decide).
    """

    def __init__(self, features: nn.Module, head: nn.Linear):
        super().__init__()
        self.features = features
        self.head = head
        self.to(memory_format=torch.channels_last)

    @property
    def dim(self) -> int:
        """Size d of the representation R(x) in R^d."""
        return self.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _info(dataset):
    if not isinstance(dataset, str) or dataset not in INFO:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of {', '.join(INFO)}")
    return INFO[dataset]


def mnist_cnn(dataset: str = "mnist", width: int = 32, hidden: int = 1024) -> Classifier:
    """The MNIST network of Madry et al. (2018): two 5x5 convs (width, 2*width), max-pools, FC.

    ``width=32, hidden=1024`` is the paper's network (3.3M parameters); the quick profile
    uses a narrower one. Input (B, 1, 28, 28); R(x) has ``hidden`` dimensions.
    """
    info = _info(dataset)
    validate.count(width, "width", min=1)
    validate.count(hidden, "hidden", min=1)
    c = info.shape[0]
    features = nn.Sequential(
        Normalize(info.mean, info.std),
        nn.Conv2d(c, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),          # (B, w, 14, 14)
        nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
        nn.Flatten(),
        nn.Linear(2 * width * (info.shape[1] // 4) * (info.shape[2] // 4), hidden), nn.ReLU(),
    )
    return Classifier(features, nn.Linear(hidden, len(info.classes)))


def resnet18(dataset: str = "cifar10") -> Classifier:
    """torchvision's ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool).

    11M parameters; input (B, 3, 32, 32); R(x) is the 512-d output of the global average pool.
    """
    info = _info(dataset)
    net = torchvision.models.resnet18(num_classes=len(info.classes))
    net.conv1 = nn.Conv2d(info.shape[0], 64, 3, 1, 1, bias=False)
    features = nn.Sequential(
        Normalize(info.mean, info.std),
        net.conv1, net.bn1, net.relu,                     # (B, 64, 32, 32)
        net.layer1, net.layer2, net.layer3, net.layer4,  # (B, 512, 4, 4)
        net.avgpool, nn.Flatten(),                        # (B, 512)
    )
    return Classifier(features, net.fc)


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def small_cnn(dataset: str = "cifar10", width: int = 32) -> Classifier:
    """A five-layer VGG-style CNN, the CPU-sized stand-in for ResNet-18 in the quick profile.

    Stages of (width, 2*width, 4*width) channels with max-pools; R(x) is the 4*width-d global
    average of the last stage. Input (B, C, H, W) with H, W divisible by 8.
    """
    info = _info(dataset)
    w = validate.count(width, "width", min=1)
    features = nn.Sequential(
        Normalize(info.mean, info.std),
        *_conv_bn(info.shape[0], w), *_conv_bn(w, w), nn.MaxPool2d(2),  # (B, w, H/2, W/2)
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # (B, 2w, H/4, W/4)
        *_conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),                        # (B, 4w, H/8, W/8)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                           # (B, 4w)
    )
    return Classifier(features, nn.Linear(4 * w, len(info.classes)))


ARCHS = {"mnist_cnn": mnist_cnn, "small_cnn": small_cnn, "resnet18": resnet18}

# How prose names several models of an architecture ("we train five-layer CNNs ..."), so that a
# page's text follows the profile's recipe.
PLURAL_NAMES = {"mnist_cnn": "Madry et al.'s MNIST CNNs", "small_cnn": "five-layer CNNs",
                "resnet18": "ResNet-18s"}


def build(arch: str, dataset: str, **kwargs) -> Classifier:
    """Build architecture ``arch`` (a key of :data:`ARCHS`) for ``dataset``."""
    if not isinstance(arch, str) or arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch](dataset=dataset, **kwargs)


def register(name: str):
    """Decorator: make an architecture constructor available to :func:`build` and the model cache."""
    def wrap(fn):
        ARCHS[name] = fn
        return fn
    return wrap
