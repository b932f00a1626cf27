"""The privacy officer's console: server-rendered pages under /ui for officers, approvers,
auditors and admins (sign-in with a password, CSRF-protected forms, role-checked actions).

An HTTP edge beside the JSON API (erasure.api), standing like it on the web layer (erasure.web);
it translates forms to workflow and pipeline calls and commits once per request.
"""
