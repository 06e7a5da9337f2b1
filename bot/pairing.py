"""Find a post's black-and-white original and its human colorization.

:mod:`bot.layout` reads what the post's JSON promises; this module fetches the images and
measures them, because the JSON never says which image is which: a gallery may put the
colorization first, a single image may be a before/after composite, and the original may only
be linked in a comment. Which image is the original is decided by the grayscale/tinted test of
:mod:`eval.grayscale`, never by position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.download import Downloaded, DownloadError, Fetcher, RefusedError
from bot.layout import ImageRef, PostPlan, find_original_link
from colorizer.images import EncodedImage, png_image
from db.models import ImageRole, Layout
from eval.grayscale import Tone, classify_tone
from eval.split import NotACompositeError, split_composite

log = logging.getLogger(__name__)

CommentLoader = Callable[[], Iterable[Mapping[str, Any]]]
"""Returns the post's comments as ``{"author": name, "body": text}`` mappings (fetched lazily; an
iterator may fetch more of them, "load more" expansions, only as far as it is read)."""


@dataclass(frozen=True)
class FoundImage:
    role: ImageRole
    image: EncodedImage | Downloaded
    """The bytes to store, with their format and upright size."""
    source_url: str

    @property
    def data(self) -> bytes:
        return self.image.data


@dataclass
class Pair:
    """What was found for a post: its final layout, the images by role, or why it is skipped."""

    layout: Layout
    images: list[FoundImage] = field(default_factory=list)
    skip_reason: str | None = None


def fetch_first(fetcher: Fetcher, ref: ImageRef) -> Downloaded:
    """The first of the reference's URLs that downloads; the last error if none does.

    A refusal (policy) of the preferred copy does not stop the fallback from being tried, but
    if every URL fails the most serious error wins: a refusal over a transient failure.
    """
    errors: list[DownloadError] = []
    for url in ref.urls:
        try:
            return fetcher.fetch(url)
        except DownloadError as exc:
            log.debug("image %s failed: %s", url, exc)
            errors.append(exc)
    refused = [exc for exc in errors if isinstance(exc, RefusedError)]
    if refused and len(refused) == len(errors):
        raise refused[0]
    transient = [exc for exc in errors if not isinstance(exc, RefusedError)]
    raise (transient or errors)[-1]


def is_monochrome(tone: Tone) -> bool:
    return tone in (Tone.GRAY, Tone.TINTED)


def find_pair(
    plan: PostPlan,
    fetcher: Fetcher,
    comments: CommentLoader,
    *,
    author: str | None,
    has_comments: bool = True,
) -> Pair:
    """Fetch and measure the plan's images. Raises DownloadError if a needed image cannot be had.

    A deferred plan has nothing to fetch yet: the caller looks at the post again later.
    """
    if plan.deferred:
        raise ValueError(f"a deferred plan has no images to fetch yet: {plan.defer_reason}")
    if plan.skip_reason is not None:
        return Pair(plan.layout, skip_reason=plan.skip_reason)
    if plan.layout is Layout.GALLERY:
        return _gallery(plan.images, fetcher)
    return _single(plan.images[0], fetcher, comments, author, has_comments)


def _gallery(refs: tuple[ImageRef, ...], fetcher: Fetcher) -> Pair:
    original: FoundImage | None = None
    colorization: FoundImage | None = None
    tones: list[str] = []
    for ref in refs:
        image = fetch_first(fetcher, ref)
        tone = classify_tone(image.pixels)
        tones.append(tone.value)
        if is_monochrome(tone) and original is None:
            original = FoundImage(ImageRole.ORIGINAL, image, image.url)
        elif tone is Tone.COLOR and colorization is None:
            colorization = FoundImage(ImageRole.COLORIZATION, image, image.url)
        if original and colorization:
            return Pair(Layout.GALLERY, [original, colorization])
    found = [image for image in (original, colorization) if image is not None]
    missing = "black-and-white original" if original is None else "colorization"
    return Pair(
        Layout.GALLERY,
        found,
        skip_reason=f"gallery has no {missing} among {len(refs)} images ({', '.join(tones)})",
    )


def _single(
    ref: ImageRef, fetcher: Fetcher, comments: CommentLoader, author: str | None, has_comments: bool
) -> Pair:
    image = fetch_first(fetcher, ref)
    rgb = image.pixels
    tone = classify_tone(rgb)
    if is_monochrome(tone):
        return Pair(
            Layout.SINGLE,
            [FoundImage(ImageRole.ORIGINAL, image, image.url)],
            skip_reason=f"only a {tone.value} image, no colorization",
        )
    try:
        split = split_composite(rgb)
    except NotACompositeError as exc:
        log.debug("not a composite: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a splitter bug must not lose the post
        log.warning("composite split failed (%s: %s); treating the image as single", type(exc).__name__, exc)
    else:
        return Pair(
            Layout.COMPOSITE,
            [
                FoundImage(ImageRole.COMPOSITE, image, image.url),
                FoundImage(ImageRole.ORIGINAL, png_image(split.original), image.url),
                FoundImage(ImageRole.COLORIZATION, png_image(split.colorization), image.url),
            ],
        )
    colorization = FoundImage(ImageRole.COLORIZATION, image, image.url)
    link = find_original_link(comments(), author) if author and has_comments else None
    if link is None:
        return Pair(
            Layout.SINGLE,
            [colorization],
            skip_reason="only the colorization is findable (no original in the post or its author's comments)",
        )
    linked = fetch_first(fetcher, ImageRef(urls=(link,)))
    linked_tone = classify_tone(linked.pixels)
    if not is_monochrome(linked_tone):
        return Pair(
            Layout.SINGLE,
            [colorization],
            skip_reason=f"the original linked in a comment is {linked_tone.value}, not black and white",
        )
    return Pair(
        Layout.COMMENT_LINK,
        [FoundImage(ImageRole.ORIGINAL, linked, linked.url), colorization],
    )
