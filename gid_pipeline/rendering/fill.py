"""Filling holes (disocclusions) left by forward warping, with a pull-push pyramid.

Pull: average the known pixels down a pyramid, each level weighting by how much of it is known. Push: from the
coarsest level back up, every pixel keeps its own value in proportion to its confidence and takes the coarser
estimate for the rest. Holes get a smooth blend of their surroundings; known pixels are returned unchanged. It
is a stand-in for the learned renderer's synthesis network, good enough to look at.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pull_push_fill(image: torch.Tensor, valid: torch.Tensor, min_size: int = 2) -> torch.Tensor:
    """Fill the pixels of ``image`` where ``valid`` is False (or 0).

    Args:
        image: (B, C, H, W) float.
        valid: (B, 1, H, W) bool or float confidence in [0, 1].
        min_size: stop the pyramid when the shorter side falls below this.

    Returns:
        (B, C, H, W): image where valid is 1, filled where it is 0, blended in between. A batch item with no
        valid pixel at all comes back as zeros.
    """
    confidence = valid.to(image.dtype)
    levels: list[tuple[torch.Tensor, torch.Tensor]] = []
    color, weight = image * confidence, confidence
    # Pull: premultiplied colours and confidences, halved each level (ceil keeps odd borders).
    while min(color.shape[-2:]) >= 2 * min_size:
        levels.append((color, weight))
        color = F.avg_pool2d(color, 2, ceil_mode=True)
        weight = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = color / weight.clamp_min(1e-12)
    # Push: confidence of a level saturates at 1 once any quarter of its footprint was known at full weight.
    for color, weight in reversed(levels):
        upsampled = F.interpolate(coarse, size=color.shape[-2:], mode="bilinear", align_corners=False)
        alpha = (4.0 * weight).clamp(max=1.0)
        own = color / weight.clamp_min(1e-12)
        coarse = alpha * own + (1.0 - alpha) * upsampled
    # The finest level already blended partially known pixels; fully known ones are returned bit-exact.
    return torch.where(confidence >= 1.0, image, coarse)
