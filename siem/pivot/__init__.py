"""`siem pivot`: everything one IP / network, user or trace id did, across every dataset.

query.py says what is asked (entity, window, page) and dispatches to the store-side halves in
siem/sinks/{embedded,opensearch}_pivot.py; summary.py writes the one-line "what" of each event;
render_table.py and render_html.py present the result. See docs/pivot.md.
"""
