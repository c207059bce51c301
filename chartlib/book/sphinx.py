"""A tiny Sphinx extension (listed in ``_config.yml``).

sphinx_thebe registers its inline configuration script from a read-phase event, which Sphinx may fire
more than once, so every page carried two copies of ``const THEBE_JS_URL = ...`` and the second one
threw a SyntaxError in the browser.  Keep the first copy of each script.
"""
from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files") or []
    seen, unique = set(), []
    for script in scripts:
        name = getattr(script, "filename", None) or ""
        key = ("src", name) if name else ("inline", getattr(script, "attributes", {}).get("body", ""))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    if len(unique) != len(scripts):
        context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
