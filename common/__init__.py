"""The small pieces every package shares: errors a user can fix (``common.errors``) and files that are
never half-written (``common.files``).

It owns no training logic and imports only the standard library, so anything may import it:
common -> callbacks -> trainer -> tasks -> cli.
"""
