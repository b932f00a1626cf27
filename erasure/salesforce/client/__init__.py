"""The production Salesforce client: the only package that imports requests / requests_oauthlib."""

from erasure.salesforce.client.api import SalesforceClient

__all__ = ["SalesforceClient"]
