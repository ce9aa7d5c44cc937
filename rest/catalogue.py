"""The catalogue's endpoints: search as you type, and one track. The catalogue is one per
deployment (shared by every room), so these answer at the root only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared import validation
from shared.catalogue import Catalogue, CatalogueTrack

from .http import JSONResponse, dumps, query_params, rest_id


def catalogue_of(request: Request) -> Catalogue:
    catalogue: Catalogue = request.state.catalogue
    return catalogue


def track_json(track: CatalogueTrack) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rest_id(track.id), "title": track.title,
                           "artist": track.artist, "album": track.album or None,
                           "duration": track.duration, "plays": track.plays}
    if track.extra:
        out["extra"] = track.extra
    return out


def track_bytes(track: CatalogueTrack) -> bytes:
    """Rendered once per decoded track (decoded tracks are shared, see shared.catalogue)."""
    rendered: bytes | None = track.rendered.get("rest")
    if rendered is None:
        rendered = track.rendered["rest"] = bytes(memoryview(dumps(track_json(track))))
    return rendered


async def search(request: Request) -> Response:
    params = query_params(request)
    limit = validation.query_int("limit", params.get("limit"), validation.DEFAULT_RESULTS, 1,
                                 validation.MAX_RESULTS)
    assert limit is not None
    query = validation.search_query(params.get("q"))
    found = await catalogue_of(request).search(query, limit)
    tracks = found.rendered("rest", lambda f: b",".join([track_bytes(t) for t in f.tracks]))
    return JSONResponse(b'{"query":%s,"tracks":[%s]}' % (dumps(query), tracks))


async def track(request: Request) -> Response:
    track_id = validation.track_id(request.path_params["track_id"])
    return JSONResponse(track_bytes(await catalogue_of(request).track(track_id)))
