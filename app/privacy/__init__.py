"""The shop's GDPR (RODO) duties: consents, exporting and erasing a customer's data, masking what must not be kept."""
