"""The Lambda edges (one module per function or API).

Cold start: a handler module imports only what every request needs. pydantic (event models, Powertools'
parser, settings), requests, OpenAPI validation and the converter are imported where they are used, at
the first event that needs them (tests/unit/test_import_weight.py guards this; bench/cold_start.py
measures it).
"""
