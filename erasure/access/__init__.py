"""Subject access requests (GDPR Art. 15, CCPA right to know): intake, retrieval of conversation
entries within the entries rate limit, the encrypted export and its expiring download link."""
