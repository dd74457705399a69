"""The GA4GH refget v2 and sequence-collections HTTP service over a store (extra: ``server``)."""
