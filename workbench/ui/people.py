"""The hypothesis board's own parts for issue 17: a person's hypothesis, and "Show query".

- :func:`add_hypothesis`: an analyst adds a hypothesis (label, slice, window)
  from the board; the server authorizes it (``Action.HYPOTHESIZE``, analysts
  and up, :mod:`workbench.governance.policy`), audits it
  (``hypothesis.added``), and re-runs the investigation with it off the event
  loop, so it is tested and ranked with the change log
  (:mod:`workbench.events.people`).
- :func:`hypothesis_form`: the small form that calls it (shown to roles that
  may add one, built when first opened; the handler checks again).
- :func:`query_disclosure`: a "Show query" disclosure of a finding's ``sql``
  (text, never executed), only for roles that may see raw data
  (``Action.VIEW_UNMASKED``); it lives in :mod:`workbench.ui.showquery` with the
  other findings' disclosures.
"""
from __future__ import annotations

from .showquery import query_disclosure

__all__ = ["add_hypothesis", "hypothesis_form", "query_disclosure"]


def add_hypothesis(state, label: str, slice_text: str, start: str, end: str) -> bool:
    """Add a person's hypothesis to ``state``'s investigation and re-run it with it.

    Returns whether it was accepted (authorized and valid); a refusal or a
    mistake is shown in ``state.error`` and nothing runs.
    """
    from ..errors import WorkbenchError
    from ..events.people import check_dimensions, coerce_hypotheses, parse_slice
    from ..governance.audit import append_audit
    from ..governance.policy import Action
    from ..investigation.versions import audit_path

    if not state.authorize(Action.HYPOTHESIZE, f"hypothesis {label!r}"):
        return False
    live = state.live
    if live is None:
        state.error = "Wait for the investigation before adding a hypothesis."
        return False
    actor = state.identity.name
    try:
        hyp, = coerce_hypotheses([{"label": label, "slice": parse_slice(slice_text, where="Slice"),
                                   "start": start, "end": end, "author": actor}])
        check_dimensions([hyp], live.dimensions)
        people = list(getattr(state, "_people", ())) + [hyp]
        coerce_hypotheses(people)  # the same hypothesis twice is refused
    except WorkbenchError as exc:
        state.error = str(exc)
        return False
    state._people = people
    append_audit(audit_path(state.library), "hypothesis.added", actor=actor, subject=hyp.id,
                 details=hyp.to_dict())
    passport, db, metric = live.passport_dir, live.db, live.metric

    def work():
        return state._investigate(passport, db, metric, state._on_progress, hypotheses=people)

    def apply(new):
        state._set_live(new)
        state.busy = False
        rank = next((i for i, c in enumerate(new.causes, 1) if c["change_id"] == hyp.id), None)
        state.message = (f"Hypothesis {hyp.label!r} tested: ranked #{rank}" if rank else
                         f"Hypothesis {hyp.label!r} tested: not a candidate (its window is "
                         "too far from the onset)")

    state.busy, state.error = True, ""
    state.message = f"Testing the hypothesis {hyp.label!r}…"
    state._spawn("load", work, apply, failed=lambda exc: setattr(state, "busy", False))
    return True


def hypothesis_form(state):
    """"Add a hypothesis…", which opens the form (label, slice, start, end, Add and
    test) when first clicked; ``None`` for a role that may not add.

    Most sessions never add one: the form's dozen Bokeh models are built for the
    sessions that do, not sent with every first page.
    """
    import panel as pn

    from ..governance.policy import Action

    if not state.can(Action.HYPOTHESIZE):
        return None
    opener = pn.widgets.Button(label="Add a hypothesis…", color="light", width=160)
    box = pn.Column(opener, css_classes=["wb-add-hypothesis"], sizing_mode="stretch_width")

    def open_form(event) -> None:
        label = pn.widgets.TextInput(label="Your hypothesis", placeholder="CDN outage in APAC",
                                     width=200)
        where = pn.widgets.TextInput(label="Slice",
                                     placeholder="region=APAC (empty: everywhere)", width=210)
        start = pn.widgets.TextInput(label="From (UTC)", placeholder="2026-11-18T12:00Z",
                                     width=145)
        end = pn.widgets.TextInput(label="To (UTC)", placeholder="2026-11-18T14:00Z", width=145)
        add = pn.widgets.Button(label="Add and test", color="primary", width=100,
                                align="end", description="Test your hypothesis like the "
                                "changes of the log (alignment, effect against its siblings) "
                                "and rank it")
        add.on_click(lambda ev: add_hypothesis(state, label.value, where.value, start.value,
                                               end.value))
        # two rows, so the form fits the board's column
        box.objects = [pn.pane.Markdown("#### Add a hypothesis"), pn.Row(label, where),
                       pn.Row(start, end, add)]
    opener.on_click(open_form)
    return box
