"""``python -m benchmarks.zoo build {text,image} [--tiny] [--out DIR] [--device cpu|cuda] [--threads N] [--workers N]``
and ``python -m benchmarks.zoo texts {text,image} --out FILE`` (the ``loradex train-encoder --texts`` file)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks.zoo import BUILDERS, get_builder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description="Build the benchmark adapter zoos.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a zoo from nothing (fixed seeds)")
    b.add_argument("zoo", choices=sorted(BUILDERS), help="which zoo")
    b.add_argument("--tiny", action="store_true", help="smoke build: few tasks, tiny model, few steps")
    b.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/zoo/<zoo>/)")
    b.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    b.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="CPU threads for torch")
    b.add_argument("--workers", type=int, default=None, help="training processes, where the builder supports them")
    b.add_argument("--resume-base", action="store_true", help="reuse a finished pre-trained base in the output folder")
    b.add_argument(
        "--resume",
        action="store_true",
        help="--resume-base, and keep the adapters an interrupted build wrote (judged again, not retrained)",
    )
    t = sub.add_parser("texts", help="write the train-encoder texts file (training tasks and paraphrases only)")
    t.add_argument("zoo", choices=sorted(BUILDERS))
    t.add_argument("--zoo-dir", type=Path, default=None, help="zoo folder (default: benchmarks/zoo/<zoo>/)")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--examples", type=int, default=0,
                   help="text zoo: (input, output) examples per task, never evaluation inputs (for end-to-end training)")  # fmt: skip
    args = p.parse_args(argv)
    if args.command == "texts":
        import json

        from benchmarks.zoo import training_texts

        folder = args.zoo_dir or Path(__file__).resolve().parent / args.zoo
        doc = training_texts(json.loads((folder / "manifest.json").read_text()))
        if args.examples and args.zoo == "text":
            from benchmarks.generation_data import text_tasks, train_examples

            tasks = text_tasks()
            for rec in doc.values():
                rec["examples"] = [list(p) for p in train_examples(tasks[rec["task"]], args.examples)]
        args.out.write_text(json.dumps(doc, indent=1))
        print(f"wrote {len(doc)} adapters' texts to {args.out}")
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    try:
        build = get_builder(args.zoo)
    except NotImplementedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    extra: dict[str, object] = {"workers": args.workers} if args.workers is not None else {}
    if args.resume_base:
        extra["resume_base"] = True
    if args.resume:
        if args.zoo != "image":
            print(
                f"error: --resume is supported by the image zoo only; use --resume-base for {args.zoo}", file=sys.stderr
            )
            return 2
        extra["resume"] = True
    manifest = build(args.out, tiny=args.tiny, device=args.device, **extra)
    print(f"built {args.zoo} zoo: {manifest.get('counts', {})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
