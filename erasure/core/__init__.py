"""The core every domain shares: the tables of orgs, credentials, erasure requests, subject
identifiers, targets and delete calls (erasure.core.models). Nothing here imports a domain."""
