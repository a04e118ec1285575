"""OpenSearch Dashboards saved objects for the SOC: written as a compact spec, generated as NDJSON.

``spec.py`` says what each panel shows (fields, filters, buckets) in a few lines a reviewer can read;
``build.py`` turns it into the saved-object JSON Dashboards 2.19 imports (visState strings, references,
layout) and writes ``dashboards/siem.ndjson``; ``client.py`` imports and exports through the
saved-objects API; ``cli.py`` is ``siem dashboards install|export``.
"""
