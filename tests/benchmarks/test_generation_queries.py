"""The generation suite's evaluation queries: written down (the committed file is what ``queries()``
makes), in several voices, and never among the texts the generators train on."""

from __future__ import annotations

from benchmarks.generation_data import USER_VOICE, load_queries, manifest, queries


def training_texts(zoo: str) -> set[str]:
    """What ``train_items`` gives the generators: canonical description + training paraphrases of training tasks."""
    out = set()
    for t in manifest(zoo)["tasks"]:
        if t["split"] == "train":
            out |= {t["canonical"]} | {p["text"] for p in t["paraphrases"] if p["split"] == "train"}
    return {s.strip().lower() for s in out}


def test_committed_queries_are_the_generated_ones() -> None:
    assert load_queries() == queries()


def test_queries_never_appear_in_training_texts() -> None:
    q = load_queries()
    for zoo in ("text", "image"):
        seen = training_texts(zoo)
        rows = q[zoo]
        assert rows
        leaked = [r["query"] for r in rows if r["query"].strip().lower() in seen]
        assert not leaked, leaked[:3]
        held = {t["id"] for t in manifest(zoo)["tasks"] if t["split"] == "heldout"}
        assert all(r["split"] == "heldout_task" for r in rows if r["task"] in held)


def test_image_user_voice_covers_every_held_out_task() -> None:
    rows = load_queries()["image"]
    held = {t["id"] for t in manifest("image")["tasks"] if t["split"] == "heldout"}
    user = {r["task"] for r in rows if r["voice"] == "user" and r["split"] == "heldout_task"}
    assert user == held and set(USER_VOICE["image"]) >= held
    assert {r["voice"] for r in rows if r["split"] == "heldout_task"} >= {"canonical", "everyday", "terse", "user"}
