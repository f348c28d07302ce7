"""Search by example picture: an image family's candidates are run on the family's base pipeline and
ranked by how much what they render looks like the user's example pictures.

Candidates: every adapter of the family when it has at most ``EXHAUSTIVE`` of them (in the order of
the ordinary search for the prompt, when one is given), else the top ``POOL`` of that search. Each
candidate's renders are its preview's bottom row (``loradex.previews``: the family's content
prompts through the base with the adapter loaded; those not cached yet are rendered several
adapters per pipeline call, ``Previewer.render_many``, then read from the preview cache), the bare
base's are its top row. A picture's features come from the family's
judge (``loradex.judges.image_judge``: a registered one, else a descriptor of colours and texture);
a candidate's score is, averaged over the examples, the cosine of the example with the closest of
its renders. Nothing fits when no candidate's renders are closer to the examples than the bare
base's renders of the same prompts by ``MARGIN``: the base already draws like that, or no adapter
here moves its pictures that way. Otherwise something fits, where the judge can tell
(``ImageJudge.says_fits``); with one that cannot, the verdict is None (cannot be told).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loradex.errors import SearchError
from loradex.search import HIT_FIELDS
from loradex.types import Filters, SearchHit, SearchResults

if TYPE_CHECKING:  # pragma: no cover
    from loradex.service import LocalService

EXHAUSTIVE = 256  # render every adapter of a family this small (once: previews are cached)
POOL = 32  # else the top of the ordinary search for the prompt
MAX_IMAGES = 8
MAX_BYTES = 20 * 2**20  # one example picture's file
MAX_PIXELS = 4096 * 4096
MARGIN = 0.01  # how much closer than the bare base the best candidate must be for something to fit

ImageInput = bytes | str | Path


def _label(item: ImageInput, n: int) -> str:
    return f"example picture {n}" + (f" ({item})" if isinstance(item, str | Path) else "")


def read_bytes(item: ImageInput, n: int) -> bytes:
    """Example picture ``n``'s bytes (given, or read from its path), at most ``MAX_BYTES``."""
    try:
        data = Path(item).read_bytes() if isinstance(item, str | Path) else bytes(item)
    except OSError as e:
        raise SearchError(f"{_label(item, n)}: cannot be read ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise SearchError(f"{_label(item, n)}: {len(data)} bytes; at most {MAX_BYTES} are accepted")
    return data


def read_images(images: Sequence[ImageInput]) -> list[Any]:
    """The example pictures as PIL images; a ``SearchError`` naming the picture and the problem."""
    from PIL import Image, UnidentifiedImageError

    if not 1 <= len(images) <= MAX_IMAGES:
        raise SearchError(f"give 1 … {MAX_IMAGES} example pictures, got {len(images)}")
    out = []
    for n, item in enumerate(images, start=1):
        label = _label(item, n)
        data = read_bytes(item, n)
        if not data:
            raise SearchError(f"{label}: empty (0 bytes)")
        try:
            im = Image.open(io.BytesIO(data))
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise SearchError(f"{label}: {im.size[0]}×{im.size[1]} pixels; at most {MAX_PIXELS:,} (4096×4096) "
                                  "are accepted")  # fmt: skip
            im.load()
        except UnidentifiedImageError:
            raise SearchError(f"{label}: not a picture (PNG, JPEG, WebP …) that can be read") from None
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise SearchError(f"{label}: not a picture (PNG, JPEG, WebP …) that can be read: {e}") from None
        out.append(im.convert("RGB"))
    return out


def image_family(svc: LocalService, filters: Filters) -> str:
    """The family to search: ``filters.family``, else the one family with a preview pipeline that has
    adapters among ``filters``; a ``SearchError`` saying which families could be searched."""
    from loradex.previews import preview_families
    from loradex.verify import one_family

    return one_family(svc, filters, preview_families(), "search by example picture renders adapters on their base "
                      "pipeline", ("an ", "image pipeline", "render examples on"))  # fmt: skip


def _candidates(svc: LocalService, prompt: str, scoped: Filters) -> list[dict[str, Any]]:
    rows = svc.registry.list(scoped)
    every = len(rows) <= EXHAUSTIVE
    if not prompt.strip():
        if every:
            return rows
        raise SearchError(f"{len(rows)} adapters of family {scoped.family!r} to render: add words to the search "
                          f"(its top {POOL} are rendered), or narrow it with tags")  # fmt: skip
    found = svc.searcher.search(prompt, len(rows) if every else POOL, "hybrid", scoped)
    place = {h.adapter["id"]: n for n, h in enumerate(found)}
    kept = rows if every else [r for r in rows if r["id"] in place]
    return sorted(kept, key=lambda r: (place.get(r["id"], len(place)), r["id"]))


def search_by_image(svc: LocalService, prompt: str, images: Sequence[ImageInput], k: int, filters: Filters,
                    progress: Callable[[int, int], None] | None = None) -> SearchResults:  # fmt: skip
    """Top ``k`` candidates by how much their renders look like ``images`` (see the module doc);
    ``progress(done, total)`` as candidates are rendered or read from the preview cache."""
    from loradex.judges import image_judge, pictures
    from loradex.previews import grid_cells, preview_pipeline

    examples = read_images(images)
    family = image_family(svc, filters)
    scoped = Filters.of(filters, family=family)
    rows = _candidates(svc, prompt or "", scoped)
    if not rows:
        return SearchResults([], nothing_fits=True, threshold=None)
    judge, cell = image_judge(family), preview_pipeline(family).cell
    wanted = judge.features(pictures(examples))  # (m, d)
    t0 = time.perf_counter()
    svc.previews.render_many(svc.registry, rows, progress=progress)  # those not cached, several per call
    score: dict[int, float] = {}
    gain: dict[int, float] = {}  # how much closer the adapter's renders are than the base's, same prompts
    plain: dict[bytes, float] = {}  # the bare base's rows are shared (the same prompts): judged once each
    for row in rows:
        base, styled = grid_cells(svc.previews.png(svc.registry, row), cell)
        seen = b"".join(im.tobytes() for im in base)
        if seen not in plain:
            plain[seen] = float((wanted @ judge.features(pictures(base)).T).max(axis=1).mean())
        score[row["id"]] = float((wanted @ judge.features(pictures(styled)).T).max(axis=1).mean())  # (m, c) → 1
        gain[row["id"]] = score[row["id"]] - plain[seen]
    seconds = time.perf_counter() - t0
    place = {r["id"]: n for n, r in enumerate(rows)}
    top = sorted(score, key=lambda i: (-score[i], place[i]))[:k]
    found = svc.registry.hits(top)
    hits = []
    for i in top:
        info = found.get(i)
        if info is None:
            continue
        why = (f"its renders on the {family} base look like the example{'s' if len(examples) > 1 else ''}: "
               f"{score[i]:.3f} ({gain[i]:+.3f} on the bare base's; judge: {judge.name}; {len(rows)} candidates, "
               f"{seconds:.2f} s)")  # fmt: skip
        hits.append(SearchHit({key: info[key] for key in HIT_FIELDS}, score[i],
                              {"example_pictures": score[i], "over_base": gain[i]}, why))  # fmt: skip
    closer = max(gain.values(), default=0.0) >= MARGIN  # some adapter moves the base's pictures that way
    verdict = True if not closer else False if judge.says_fits else None
    return SearchResults(hits, nothing_fits=verdict, threshold=None)
