"""sync: filled in by a later issue.

Present now so packaging, linting and typing cover it from the start.
"""
