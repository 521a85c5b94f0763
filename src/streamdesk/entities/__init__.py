"""Entities and tickets: versioned business records and folded support tickets."""
