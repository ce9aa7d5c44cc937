"""The catalogue's endpoints: search as you type, and one track. The catalogue is one per
deployment (shared by every room), so these answer at the root only."""

from __future__ import annotations

from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response

from shared import validation
from shared.catalogue import Catalogue, Found
from shared.model import SEP

from .http import JSONResponse, dumps, query_params, rest_id


def catalogue_of(request: Request) -> Catalogue:
    catalogue: Catalogue = request.state.catalogue
    return catalogue


@lru_cache(maxsize=8192)
def row_bytes(track_id: str, record: str, plays: int) -> bytes:
    """A catalogue track as JSON, straight from its stored record (``shared.catalogue.Row``):
    id, title, artist, album (or null), duration, plays, then its extra columns, if any,
    as they are stored (JSON the importer wrote). Kept per row, so a track that comes back
    in another answer costs a lookup: 2 us a new track instead of 5 us decoded first."""
    title, artist, album, duration, _, _, extra = record.split(SEP)
    return b'{"id":%s,"title":%s,"artist":%s,"album":%s,"duration":%d,"plays":%d%s}' % (
        dumps(rest_id(track_id)), dumps(title), dumps(artist), dumps(album or None),
        int(duration), plays, b',"extra":%s' % extra.encode() if extra else b"")


def found_bytes(found: Found) -> bytes:
    flat = found.flat
    return b",".join([row_bytes(flat[i], flat[i + 1], flat[i + 2])
                      for i in range(0, len(flat), 3)])


async def search(request: Request) -> Response:
    params = query_params(request)
    limit = validation.query_int("limit", params.get("limit"), validation.DEFAULT_RESULTS, 1,
                                 validation.MAX_RESULTS)
    assert limit is not None
    query = validation.search_query(params.get("q"))
    found = await catalogue_of(request).search(query, limit)
    return JSONResponse(b'{"query":%s,"tracks":[%s]}' % (dumps(query),
                                                         found.rendered("rest", found_bytes)))


async def track(request: Request) -> Response:
    track_id = validation.track_id(request.path_params["track_id"])
    return JSONResponse(row_bytes(*await catalogue_of(request).row(track_id)))
