"""Rendering: the Jinja2 templates, stylesheet and scripts shipped as package data beside this
module (`templates/`, `static/`), each page's Content-Security-Policy, and a digest of all of them
so that a changed template rebuilds every page."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib.resources import files

from jinja2 import Environment, FunctionLoader, StrictUndefined

from audit.present.report.charts import AXIS_HEIGHT, LABEL_WIDTH, LANE_GAP, LANE_HEIGHT, PANEL_HEIGHT, PLOT_HEIGHT, PLOT_TOP
from audit.present.report.views import clock

PACKAGE = files("audit.present.report")
CHART = {"label": LABEL_WIDTH, "lane": LANE_HEIGHT, "step": LANE_HEIGHT + LANE_GAP, "axis": AXIS_HEIGHT,
         "panel": PANEL_HEIGHT, "top": PLOT_TOP, "plot": PLOT_HEIGHT}


@lru_cache(maxsize=None)
def static(name: str) -> str:
    """A stylesheet or script of `static/`, inlined into the pages (a report opens from the file
    system, and the CSP allows exactly these texts by their hashes)."""
    return (PACKAGE / "static" / name).read_text(encoding="utf-8")


def _template(name: str) -> str:
    return (PACKAGE / "templates" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FunctionLoader(_template), autoescape=True, undefined=StrictUndefined)
    env.filters["clock"] = clock
    # JSON in the pages (the worklist's rows) with Chinese as is: a third of the size of \u escapes;
    # tojson still escapes < > & ' so it cannot close its <script> element
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return env


def _source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(script: str) -> str:
    """Nothing loads or runs but the page's own script and style and the report's own audio."""
    return (f"default-src 'none'; script-src {_source_hash(script)}; style-src {_source_hash(static('report.css'))}; "
            "media-src 'self'; base-uri 'none'; form-action 'none'")


def render(template: str, script: str, **values) -> str:
    """A page with its script and the stylesheet inlined."""
    code = static(script)
    return environment().get_template(template).render(
        csp=content_security_policy(code), style=static("report.css"), script=code, chart=CHART, **values)


@lru_cache(maxsize=1)
def sources_digest() -> str:
    """Of every template, stylesheet and script: a page built with others is built again."""
    digest = hashlib.sha256()
    for folder in ("templates", "static"):
        for item in sorted((PACKAGE / folder).iterdir(), key=lambda p: p.name):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()
