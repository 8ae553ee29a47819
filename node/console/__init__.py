"""The officer's console: the web face of a country node, on its officer listener at ``/``.

Server-rendered pages (jinja2) over the same service and mailbox as the officer API, readable with scripts
off; one small script of our own localises times and refreshes lists in place. Nothing is loaded from
anywhere but the node itself. Pages live in :mod:`node.console.views`, words in
:mod:`node.console.catalogue`, the form mapping in :mod:`node.console.forms`.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node.console import deconfliction, forms, views


def mount(app: web.Application) -> None:
    """Serve the console from ``app`` (a country node's officer application)."""
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("node.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals.update(t=views.t, size=views.size_text, lists=forms.LISTS)
    app.add_routes([*views.routes(), *deconfliction.routes()])
