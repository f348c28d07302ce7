"""Suite ``api_replicas``: the load generator spreads requests round-robin over the replicas."""

from __future__ import annotations

from collections import Counter


def test_load_takes_the_servers_in_turn() -> None:
    from fastapi import FastAPI

    from benchmarks.api_load import load
    from ui.server import BackgroundServer

    seen: Counter[str] = Counter()

    def app(name: str) -> FastAPI:
        a = FastAPI()

        @a.post("/search")
        def search(body: dict) -> dict:  # type: ignore[type-arg]
            seen[name] += 1
            return {"hits": []}

        return a

    with_a, with_b = BackgroundServer(app("a")).start(), BackgroundServer(app("b")).start()
    try:
        run = load([with_a.url, with_b.url], "unique", seconds=0.5, concurrency=2, warmup=0.0)
    finally:
        with_a.stop()
        with_b.stop()
    assert run["errors"] == {} and run["requests"] > 10
    assert abs(seen["a"] - seen["b"]) <= 2  # request n goes to server n % 2
    assert seen["a"] + seen["b"] >= run["requests"]
