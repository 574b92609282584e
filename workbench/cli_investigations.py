"""``workbench investigations ...`` and ``workbench audit ...``: the library from a terminal.

:func:`register` adds the two commands to the main parser; every subcommand
sets ``handler`` (a function of the parsed arguments returning the exit
status), so ``cli.main`` dispatches with ``args.handler(args)``.

``investigations``
    ``list`` (with ``--metric/--slice/--kind/--target/--text/--status`` it
    searches the memory index), ``show``, ``diff``, ``reopen`` (re-run and
    save a new version; ``--execute`` runs the notebook headless instead),
    ``stats`` (time to diagnose), ``decide``, ``note``, ``action``,
    ``similar``, ``verify`` (every saved file against the hash recorded at
    save, and the index against the audit log; exit 1 on any problem).
``audit``
    ``verify`` (exit 1 when the log was tampered with) and ``log``.
"""
from __future__ import annotations

import argparse
import json
import sys

ENV_HELP = "library folder (default $WORKBENCH_INVESTIGATIONS or ./investigations)"


def register(subparsers) -> None:
    """Add ``investigations`` and ``audit`` to ``subparsers`` (from ``add_subparsers``)."""
    inv = subparsers.add_parser("investigations", help="the library of saved investigations")
    isub = inv.add_subparsers(dest="investigations_command", metavar="SUBCOMMAND")
    inv.set_defaults(handler=_usage(inv))

    def add(name: str, help_: str, handler):
        p = isub.add_parser(name, help=help_)
        p.add_argument("--root", help=ENV_HELP)
        p.set_defaults(handler=handler)
        return p

    p = add("list", "list investigations, or search them", cmd_list)
    p.add_argument("--metric")
    p.add_argument("--slice", action="append", metavar="DIM=VALUE",
                   help="a slice pair (repeatable, or comma-separated)")
    p.add_argument("--kind", help="change kind among its causes: deploy, flag, config...")
    p.add_argument("--target", help="change target among its causes (or a word of it)")
    p.add_argument("--text", help="free text (messages, notes, evidence)")
    p.add_argument("--status", choices=("open", "resolved"))
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = add("show", "show a version and its saved answer", cmd_show)
    p.add_argument("ref", help="inv-ID (latest), inv-ID@vNNNN, or a content-hash prefix")
    p.add_argument("--json", action="store_true", help="print the saved answer as JSON")
    p.add_argument("--text", action="store_true", help="print the notebook as text")
    p.add_argument("--versions", action="store_true", help="list all versions")
    p.add_argument("--no-verify", action="store_true",
                   help="show a version even if its files differ from what was saved")

    p = add("diff", "what changed between two versions", cmd_diff)
    p.add_argument("a", help="a version (alone: compared with its parent)")
    p.add_argument("b", nargs="?", help="another version")
    p.add_argument("--text", action="store_true", help="add a diff of the notebook text")

    p = add("reopen", "re-run a saved version from its parameters", cmd_reopen)
    p.add_argument("ref")
    p.add_argument("-m", "--message", help="message of the new version")
    p.add_argument("--author")
    p.add_argument("--no-save", action="store_true", help="only compare, save nothing")
    p.add_argument("--execute", action="store_true",
                   help="execute the saved notebook headless (nbclient) instead")
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--json", action="store_true")

    p = add("stats", "time to diagnose: loaded -> top cause shown -> decision", cmd_stats)
    p.add_argument("--json", action="store_true")

    p = add("decide", "confirm or refute a hypothesis", cmd_decide)
    p.add_argument("ref", help="the investigation")
    p.add_argument("--hypothesis", required=True, help="a candidate change id, or external")
    p.add_argument("--status", required=True, choices=("confirmed", "refuted"))
    p.add_argument("--note")
    p.add_argument("--author")

    p = add("note", "add a note", cmd_note)
    p.add_argument("ref")
    p.add_argument("text")
    p.add_argument("--hypothesis")
    p.add_argument("--author")

    p = add("action", "record an action launched (revert, rollback, hold rollout)", cmd_action)
    p.add_argument("ref")
    p.add_argument("action")
    p.add_argument("--target", help="the change acted on")
    p.add_argument("--note")
    p.add_argument("--author")

    p = add("similar", "past investigations similar to one", cmd_similar)
    p.add_argument("ref")
    p.add_argument("--json", action="store_true")

    p = add("verify", "check every saved file against its recorded hash; exit 1 if any "
                      "differs", cmd_verify)
    p.add_argument("--json", action="store_true")

    aud = subparsers.add_parser("audit", help="the tamper-evident audit log")
    asub = aud.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    aud.set_defaults(handler=_usage(aud))
    for name, help_, handler in (("verify", "check the hash chain; exit 1 if tampered",
                                  cmd_audit_verify),
                                 ("log", "print the records", cmd_audit_log)):
        p = asub.add_parser(name, help=help_)
        p.add_argument("--root", help=ENV_HELP)
        p.add_argument("--log", help="the audit log file (default ROOT/audit.jsonl)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
        if name == "verify":
            p.add_argument("--expected-head", help="a head hash recorded earlier")
        else:
            p.add_argument("--subject", help="an investigation id")
            p.add_argument("--actor")
            p.add_argument("--action", help="an action or its prefix (hypothesis.)")
            p.add_argument("--limit", type=int, default=50, help="last N records (0: all)")


def _usage(parser: argparse.ArgumentParser):
    def handler(_a) -> int:
        parser.print_help(sys.stderr)
        return 2
    return handler


def _out(obj) -> None:
    print(json.dumps(obj, indent=1, default=str))


# --------------------------------------------------------------------------- investigations
def cmd_list(a) -> int:
    from .investigation import library as lib
    from .investigation.library import memory

    root = lib.library_root(a.root)
    if any((a.metric, a.slice, a.kind, a.target, a.text, a.status)):
        res = memory.search_investigations(memory.memory_path(root), a.text, metric=a.metric,
                                           slice=a.slice, kind=a.kind, target=a.target,
                                           status=a.status, limit=a.limit)
        if a.json:
            _out(res.to_dict())
        else:
            print(res.summary())
        return 0
    entries = lib.list_investigations(root)[: a.limit]
    if a.json:
        _out([e.to_dict() for e in entries])
    elif not entries:
        print(f"no investigations in {root}")
    else:
        print("\n".join(e.line() for e in entries))
    return 0


def cmd_show(a) -> int:
    from pathlib import Path

    from .investigation import library as lib

    root = lib.library_root(a.root)
    if a.versions:
        vs = lib.list_versions(root, a.ref)
        if a.json:
            _out([v.to_dict() for v in vs])
        else:
            print("\n".join(v.line() for v in vs))
        return 0
    d = lib.show_version(root, a.ref, verify=not a.no_verify)
    log = [e for e in lib.journal(root, d.info.investigation_id)
           if e.kind in ("decision", "note", "action")]
    if a.json:
        _out({**d.to_dict(), "journal": [e.to_dict() for e in log]})
    elif a.text:
        print(Path(d.info.text_path).read_text(encoding="utf-8"), end="")
    else:
        print(d.summary() + journal_text(log))
    return 0


def journal_text(entries) -> str:
    """The decisions, notes and actions of an investigation, oldest first, as lines."""
    if not entries:
        return "\n\nDecisions, notes and actions: none yet"
    out = ["", "", "Decisions, notes and actions:"]
    for e in entries:
        d = e.details
        if e.kind == "decision":
            what = f"decision: {d.get('hypothesis')} {d.get('status')}"
        elif e.kind == "action":
            what = f"action: {d.get('action')}" + (f" {d['target']}" if d.get("target") else "")
        else:
            what = f"note: {d.get('text')}" + (f" (on {d['hypothesis']})"
                                               if d.get("hypothesis") else "")
        note = f' "{d["note"]}"' if e.kind != "note" and d.get("note") else ""
        out.append(f"  {e.ts}  {e.author}: {what}{note}")
    return "\n".join(out)


def cmd_diff(a) -> int:
    from .investigation import library as lib

    print(lib.diff_versions(lib.library_root(a.root), a.a, a.b, text=a.text))
    return 0


def cmd_reopen(a) -> int:
    from .investigation import library as lib
    from .investigation.library.notebook import reproduction_check, saved_digest
    from .investigation.run import reopen

    root = lib.library_root(a.root)
    if a.execute:
        rep = lib.reproduce_version(root, a.ref, timeout=a.timeout)
        if a.json:
            _out(rep.to_dict())
        else:
            print(rep.summary())
        return 0 if rep.reproduced else 1
    detail = lib.show_version(root, a.ref)
    inv = reopen(root, a.ref)
    check = reproduction_check(inv, saved_digest(detail.answer))
    info = None
    if not a.no_save:
        info = lib.save_investigation(
            inv, message=a.message or f"reopened {detail.info.version_id}: re-run", author=a.author,
            root=root)
    if a.json:
        _out({"check": check.to_dict(), "version": info.to_dict() if info else None,
              "answer": inv.to_dict()})
    else:
        print(inv.summary())
        print()
        print(f"compared with {detail.info.version_id}: {check.text()}")
        if info:
            print(f"saved {info.version_id} ({info.path})")
    return 0


def cmd_stats(a) -> int:
    from .investigation import library as lib

    rep = lib.investigation_stats(lib.library_root(a.root))
    if a.json:
        _out(rep.to_dict())
    else:
        print(rep.summary())
    return 0


def cmd_decide(a) -> int:
    from .investigation import library as lib

    e = lib.record_decision(lib.library_root(a.root), a.ref, hypothesis=a.hypothesis,
                                 status=a.status, note=a.note, author=a.author)
    print(f"{e.investigation_id}: {a.hypothesis} {a.status} by {e.author} at {e.ts}")
    return 0


def cmd_note(a) -> int:
    from .investigation import library as lib

    e = lib.add_note(lib.library_root(a.root), a.ref, a.text, author=a.author,
                          hypothesis=a.hypothesis)
    print(f"{e.investigation_id}: note added by {e.author} at {e.ts}")
    return 0


def cmd_action(a) -> int:
    from .investigation import library as lib

    e = lib.record_action(lib.library_root(a.root), a.ref, action=a.action,
                               target=a.target, note=a.note, author=a.author)
    print(f"{e.investigation_id}: action {a.action} {a.target or ''} by {e.author} at {e.ts}")
    return 0


def cmd_similar(a) -> int:
    from .investigation import library as lib
    from .investigation.library import memory

    root = lib.library_root(a.root)
    d = lib.show_version(root, a.ref)
    sims = memory.similar_investigations(memory.memory_path(root), d.answer,
                                         exclude=d.info.investigation_id, limit=5)
    if a.json:
        _out([s.to_dict() for s in sims])
    elif not sims:
        print("no similar past investigation")
    else:
        print("\n".join(s.line() for s in sims))
    return 0


def cmd_verify(a) -> int:
    """One line per problem (the file, the version, what is wrong), then a summary."""
    from .investigation import library as lib

    rep = lib.verify_library(lib.library_root(a.root))
    if a.json:
        _out(rep.to_dict())
    else:
        for line in rep.problems:
            print(line)
        for line in rep.warnings:
            print(f"warning: {line}")
        print(rep.summary())
    return 0 if rep.ok else 1


# --------------------------------------------------------------------------- audit
def _audit_file(a):
    from pathlib import Path

    from .investigation import library as lib

    return Path(a.log) if a.log else lib.audit_path(a.root)


def cmd_audit_verify(a) -> int:
    from .governance import verify_audit

    rep = verify_audit(_audit_file(a), expected_head=a.expected_head)
    if a.json:
        _out(rep.to_dict())
    else:
        print(rep.summary())
    return 0 if rep.ok else 1


def cmd_audit_log(a) -> int:
    from .governance import read_audit

    recs = read_audit(_audit_file(a), subject=a.subject, actor=a.actor, action=a.action)
    if a.limit:
        recs = recs[-a.limit:]
    if a.json:
        _out([r.to_dict() for r in recs])
    elif not recs:
        print("no audit records")
    else:
        print("\n".join(r.line() for r in recs))
    return 0
