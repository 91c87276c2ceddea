"""A real HTTP service with its own OpenAPI 3.1 document (shelter.openapi.yaml), run as its
own process by the tests:

    python tests/tools_servers/openapi_service.py --port 8080 --token s3cret

It serves its document at /openapi.json (and /openapi.yaml; /docs/openapi redirects there),
without a credential, and the document's operations under /api, each checking the bearer
token (except /api/health).
Animals live in memory while the process runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

DOCUMENT_PATH = Path(__file__).with_name("shelter.openapi.yaml")
SPECIES = {"cat", "dog", "rabbit"}


def build_app(token: str) -> web.Application:
    document_text = DOCUMENT_PATH.read_text()
    document = yaml.safe_load(document_text)
    pets: dict[str, dict[str, Any]] = {}

    @web.middleware
    async def bearer(request: web.Request, handler: Any) -> web.StreamResponse:
        open_paths = {"/openapi.json", "/openapi.yaml", "/docs/openapi", "/api/health"}
        if request.path not in open_paths and request.headers.get("Authorization") != (
            f"Bearer {token}"
        ):
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def openapi_json(_: web.Request) -> web.Response:
        return web.json_response(document)

    async def openapi_yaml(_: web.Request) -> web.Response:
        return web.Response(text=document_text, content_type="application/yaml")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/openapi.yaml")

    async def list_pets(request: web.Request) -> web.Response:
        species = request.query.get("species")
        if species is not None and species not in SPECIES:
            return web.json_response({"error": f"unknown species {species}"}, status=400)
        limit = int(request.query.get("limit", "20"))
        found = [p for p in pets.values() if species is None or p["species"] == species]
        return web.json_response(found[:limit])

    async def create_pet(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not body.get("name") or body.get("species") not in SPECIES:
            return web.json_response({"error": "name and species are required"}, status=400)
        if body["name"] in pets:
            return web.json_response({"error": f"{body['name']} is here already"}, status=409)
        pet = {**body, "arrived": dt.datetime.now(dt.UTC).isoformat()}
        pets[body["name"]] = pet
        return web.json_response(pet, status=201)

    async def get_pet(request: web.Request) -> web.Response:
        pet = pets.get(request.match_info["petId"])
        if pet is None:
            return web.json_response({"error": "no such animal"}, status=404)
        request_id = request.headers.get("X-Request-Id")
        return web.json_response(pet if request_id is None else {**pet, "requestId": request_id})

    async def adopt_pet(request: web.Request) -> web.Response:
        if pets.pop(request.match_info["petId"], None) is None:
            return web.json_response({"error": "no such animal"}, status=404)
        return web.Response(status=204)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[bearer])
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/openapi.yaml", openapi_yaml)
    app.router.add_get("/docs/openapi", moved)
    app.router.add_get("/api/pets", list_pets)
    app.router.add_post("/api/pets", create_pet)
    app.router.add_get("/api/pets/{petId}", get_pet)
    app.router.add_delete("/api/pets/{petId}", adopt_pet)
    app.router.add_get("/api/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True, help="The bearer token calls must carry.")
    args = parser.parse_args()
    print(json.dumps({"listening": f"http://{args.host}:{args.port}"}), flush=True)
    web.run_app(build_app(args.token), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
