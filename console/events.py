"""Event search: the stored events, by free text, dataset, time and exact field
values — the same search the API's ``/api/v1/events`` offers, as a page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from werkzeug.datastructures import MultiDict

from console.app import get_store
from console.permissions import Permission, requires
from console.queries import FilterError, event_query, page_url
from govsoc.errors import QueryError
from govsoc.events import flatten

bp = Blueprint("events", __name__, url_prefix="/events")

PAGE_SIZE = 50


@bp.route("")
@requires(Permission.EVENTS_SEARCH)
def search() -> Any:
    args = MultiDict(request.args)
    # the form has one field/value pair; the query takes field.NAME=value
    name, value = args.get("field_name", "").strip(), args.get("field_value", "").strip()
    if name and value:
        args.setlist(f"field.{name}", [value])
    if not args.get("limit"):
        args["limit"] = str(PAGE_SIZE)
    if not any(args.get(key) for key in ("q", "dataset", "start", "end", "field_name")):
        return render_template("events.html", page=None, args=request.args, next_url=None,
                               total=None, flat=[])
    try:
        query = event_query(args)
        page = get_store().search_events(query)
    except (FilterError, QueryError) as exc:
        flash(str(exc), "error")
        return render_template("events.html", page=None, args=request.args, next_url=None,
                               total=None, flat=[]), 400
    return render_template("events.html", page=page, args=request.args,
                           next_url=page_url("events.search", request.args, page.next_cursor),
                           flat=[sorted(flatten(e).items()) for e in page.items])
