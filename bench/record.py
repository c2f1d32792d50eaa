"""Recording benchmark: replies per second of `record_batch` in-process (no IMAP), in committed batches as the poller.

    .venv/bin/python bench/record.py [--count 1000] [--batch 100] [--parsed] [--database URL] [--profile [FILE]]

Builds a fresh app on a temporary instance directory (SQLite file unless --database names an empty PostgreSQL
database) with the shop and the replies of bench/ingest.py: customers with a repair thread each, and replies to
those threads (token address, our Message-ID, text and HTML quoting the shop, 2-50 KB, one in ten with a photo).
Only recording is timed: the replies go through record_batch in batches of --batch, each committed together as
the poller does; with --parsed they are parsed beforehand, as the parser process does for a backlog, and only
the poller's share is timed. Wall-clock and CPU rates are printed: on a shared machine the CPU rate is the
steadier one (SQLite works in-process, so it counts the database too). Every reply must end up threaded; the run fails otherwise.
--profile prints cProfile's top 20 (cumulative and own time), and writes the stats to FILE when given.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from flask_migrate import upgrade  # noqa: E402
from ingest import SEED, reply, set_up_shop  # noqa: E402 - the same shop and replies as the end-to-end run

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.inbound.parse import read_mails  # noqa: E402
from app.inbound.record import record_batch  # noqa: E402
from app.models import Mailbox  # noqa: E402


def record_all(mailbox_id: int, replies: list[bytes], batch: int, read: list | None = None) -> dict[str, int]:
    """Record the replies in batches committed one by one (`read`: what read_mails made of them, when parsed
    beforehand); returns how many ended with each outcome."""
    outcomes: dict[str, int] = {}
    mailbox = db.session.get(Mailbox, mailbox_id)
    for start in range(0, len(replies), batch):
        mails = list(enumerate(replies[start:start + batch], start=start + 1))
        parsed = read[start:start + batch] if read is not None else None
        for outcome in record_batch(mailbox, mails, 1, parsed):
            outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
        mailbox.last_uid = min(start + batch, len(replies))
        db.session.commit()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--parsed", action="store_true",
                        help="parse the replies before timing, as the parser process does for a backlog: time "
                             "the poller's share alone")
    parser.add_argument("--database", help="an empty PostgreSQL database URL; default a SQLite file")
    parser.add_argument("--profile", nargs="?", const="", metavar="FILE",
                        help="print cProfile's top 20 of the recording (and write the stats to FILE)")
    args = parser.parse_args()
    rng = random.Random(SEED)

    with tempfile.TemporaryDirectory(prefix="bench-record-") as workdir:
        database = args.database or f"sqlite:///{workdir}/bench.db"
        app = create_app({"SCHEDULER_ENABLED": False, "SECRET_KEY": "bench", "INSTANCE_PATH": workdir,
                          "DATABASE_URL": database, "PUBLIC_BASE_URL": "http://shop.example"})
        with app.app_context():
            upgrade()
            threads = set_up_shop(rng)
            mailbox_id = db.session.scalars(db.select(Mailbox.id)).one()
            replies = [reply(rng, number, rng.choice(threads)) for number in range(args.count)]
            read = read_mails(replies) if args.parsed else None
            db.session.expire_all()  # start as a pass does: nothing of the set-up cached in the session

            profiler = cProfile.Profile() if args.profile is not None else None
            began, began_cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            outcomes = record_all(mailbox_id, replies, args.batch, read)
            if profiler:
                profiler.disable()
            seconds, cpu = time.perf_counter() - began, time.process_time() - began_cpu

    print(f"{args.count} replies ({sum(map(len, replies)) / 2**20:.1f} MiB) in batches of {args.batch}, "
          f"{'SQLite' if not args.database else 'PostgreSQL'}: {seconds:.2f} s, {args.count / seconds:.0f} msg/s, "
          f"{seconds / args.count * 1000:.1f} ms per mail; CPU {cpu:.2f} s, {args.count / cpu:.0f} msg/s  {outcomes}")
    if profiler:
        if args.profile:
            profiler.dump_stats(args.profile)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(20)
        stats.sort_stats("tottime").print_stats(20)
    if outcomes != {"threaded": args.count}:
        sys.exit("not every reply was threaded")


if __name__ == "__main__":
    main()
