-- The role the API and the workers connect as, without the right to rewrite history.
--
-- Run as the owner of the schema (the role that runs the migrations) after `erasure db upgrade`,
-- with psql: psql -v app_role=erasure_app -f docs/app-role.sql
-- The app role may read everything and write the business tables, but on the audit tables it
-- may only INSERT, plus the sequencer's one-time UPDATE of a leaf's position. The triggers
-- installed by the migrations refuse rewrites whatever the role; this removes the privilege too.

GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
REVOKE UPDATE, DELETE, TRUNCATE ON audit_leaves, audit_nodes, audit_tree_heads, audit_checkpoints FROM :"app_role";
GRANT UPDATE (leaf_index, sequenced_at) ON audit_leaves TO :"app_role";
