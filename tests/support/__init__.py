"""Helpers the tests (and bench/) share: servers, clients, fakes and builders that are not fixtures
of one directory. Test modules and conftests import from here, never from one another."""
