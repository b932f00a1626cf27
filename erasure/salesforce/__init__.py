"""Everything erasure knows about Salesforce: the client, and a sandbox org to run it against.

This package imports nothing from the rest of erasure: it takes plain values, returns plain data.
"""
