"""Every bound the loader enforces on hostile input, in one place.

A log object is attacker-influenced data: a 512 MB line of zeros, an integer with 23 digits, a
100 KB policy document or 6000 distinct keys must each cost bounded memory and end as an indexed
(flagged) event or a dead letter naming the limit, never a crash that loses a batch. Parse-side
limits can be changed per run through ParseOptions; sink-side ones are constructor arguments.
"""

from __future__ import annotations

# --- reading ------------------------------------------------------------------------------------
# One record (a line, or a line of a multi-line entry): longer ones are skipped in bounded memory
# and dead-lettered with their length.
MAX_RECORD_BYTES = 1 << 20
# One JSON document of a document stream (CloudWatch Logs envelopes, pretty-printed audit events).
MAX_DOCUMENT_BYTES = 32 << 20
# Inflated bytes of one compressed object, and the inflate ratio tolerated once past RATIO_FLOOR:
# real logs compress 5-30:1, a bomb of zeros ~1000:1. Beyond either, the object fails (dead letter).
MAX_INFLATED_BYTES = 8 << 30
MAX_INFLATE_RATIO = 200
RATIO_FLOOR = 512 << 20
# How much of a skipped record a dead letter keeps.
RAW_LIMIT = 16 * 1024

# --- documents ----------------------------------------------------------------------------------
# The range of an OpenSearch long (and of orjson's integers).
LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
# A leaf string of a flat_object field is indexed as one term ("value" and "path=value"); Lucene
# refuses terms over 32766 bytes and the whole document with them. Longer leaves are cut here.
FLAT_LEAF_MAX_BYTES = 16 * 1024

# --- writing ------------------------------------------------------------------------------------
# One bulk request body (OpenSearch refuses bodies over http.max_content_length, 100 MB by default).
MAX_BULK_BYTES = 10 << 20
# Dead letters held in memory by a run before they are written out.
MAX_PENDING_LETTERS = 1000
MAX_PENDING_LETTER_BYTES = 8 << 20
# A dead letter's reason is cut to this many characters.
MAX_REASON_CHARS = 4096
# DuckDB's buffer pool in the embedded store (config embedded.memory_limit); DuckDB's own default is 80%
# of RAM, kept once touched, so a load's RSS grew with the store. A load peaks near this + ~120 MB (128MB:
# 241 MB at 300k ALB events); detection raises it (below).
EMBEDDED_MEMORY_LIMIT = "128MB"
# A detection cycle on the embedded store (siem detect) works out every field its rules read for every
# event in its window at once: it raises the cap to this (config embedded.detect_memory_limit).
DETECT_MEMORY_LIMIT = "1GB"
