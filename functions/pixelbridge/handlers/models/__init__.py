"""Parser models for the events the non-HTTP functions receive (validated by Powertools ``parse``)."""
