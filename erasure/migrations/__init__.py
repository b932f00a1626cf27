"""The Alembic migrations, shipped inside the package so an installed wheel can migrate its database
with no source tree (`erasure db upgrade`). Alembic finds them as `erasure:migrations`; the
revisions are in `versions/`, which is data (files Alembic loads by path), not a package."""
