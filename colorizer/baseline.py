"""The "gray" baseline: a colorizer like any other, whose colorization is the black-and-white original itself.

Every metric needs this floor: a model is only worth something where it beats doing nothing. The
colorize step gives it every post as it gives every other model, and stores a link to the original's
own image as its colorization (``unchanged_input``) rather than a re-encoded copy.
"""

from __future__ import annotations

import numpy as np

from colorizer.identity import ModelIdentity

GRAY_MODEL_NAME = "gray"
GRAY_MODEL_VERSION = "1"


class GrayBaseline:
    identity = ModelIdentity(
        name=GRAY_MODEL_NAME,
        version=GRAY_MODEL_VERSION,
        backbone="none",
        config={"description": "baseline: the black-and-white original, unchanged"},
    )
    unchanged_input = True

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return list(images)
